package stack

import (
	"context"
	"time"
)

const (
	// killPoll is how often KillBusyRepeatedly looks for a busy instance: a
	// fast-path delivery lasts tens of ms, so 5 ms catches one mid-way.
	killPoll = 5 * time.Millisecond
	// killGap spaces the kills so each one hits a different event's
	// delivery, and the stack restarts the instance in between.
	killGap = 300 * time.Millisecond
)

// KillBusyRepeatedly kills (kill -9) a busy instance of function up to n
// times, killGap apart, until ctx ends; it returns how many it killed. The
// fault tests and loadgen --kill-fast-path use it.
func KillBusyRepeatedly(ctx context.Context, s *Stack, function string, n int) int {
	killed := 0
	t := time.NewTicker(killPoll)
	defer t.Stop()
	for killed < n {
		select {
		case <-ctx.Done():
			return killed
		case <-t.C:
		}
		if _, ok := s.Runtime().KillBusy(function); !ok {
			continue
		}
		killed++
		select {
		case <-ctx.Done():
			return killed
		case <-time.After(killGap):
		}
	}
	return killed
}
