package stack

import (
	"time"

	"github.com/groupcast/groupcast/internal/devstack/esm"
	"github.com/groupcast/groupcast/internal/devstack/wsgw"
)

// AWS timing profile defaults.
const (
	// DefaultConnectionsLatency is the round trip of one @connections call
	// from a function in the same Region. AWS publishes no figure; 25 ms is
	// the per-call time issue 9's review used (64 concurrent calls of about
	// 25 ms each), in line with an in-region HTTPS round trip to API Gateway
	// on a kept-alive connection. Override with --connections-latency once
	// measured on an account.
	DefaultConnectionsLatency = 25 * time.Millisecond
	// DefaultConnectionsRPS and DefaultConnectionsBurst are API Gateway's
	// account-level throttle per Region (10,000 requests a second, bursts of
	// 5,000), which @connections calls share with the HTTP and REST APIs.
	// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
	DefaultConnectionsRPS   = 10000
	DefaultConnectionsBurst = 5000
)

// Timing is the AWS timing profile. Without AWS the stack is as fast as it
// can be: the stream mapping wakes on each write and @connections answers
// at once, unthrottled.
type Timing struct {
	// AWS turns the profile on:
	//   - the DynamoDB stream mapping polls each shard every 250 ms, as
	//     Lambda does, and is no longer woken by writes;
	//   - each @connections call takes ConnectionsLatency;
	//   - @connections calls across the stack share a token bucket of
	//     ConnectionsRPS with ConnectionsBurst, answering 429
	//     LimitExceededException beyond it.
	// SQS mappings long-poll (WaitTimeSeconds 20) and honour the batching
	// window with or without the profile: that is Lambda's behaviour, and
	// a long poll returns as soon as a message arrives.
	AWS                bool
	ConnectionsLatency time.Duration // 0: DefaultConnectionsLatency
	ConnectionsRPS     float64       // 0: DefaultConnectionsRPS
	ConnectionsBurst   int           // 0: DefaultConnectionsBurst
	// StreamPollInterval overrides Lambda's 250 ms poll under the profile.
	// Tests that must tell which delivery path won use a long one, so the
	// outcome does not depend on how loaded the machine is.
	StreamPollInterval time.Duration
}

func (t Timing) streamPollInterval() time.Duration {
	if !t.AWS {
		return 0
	}
	if t.StreamPollInterval > 0 {
		return t.StreamPollInterval
	}
	return esm.LambdaPollInterval
}

// management is the @connections timing, with one limiter for the account.
func (t Timing) management() wsgw.Timing {
	if !t.AWS {
		return wsgw.Timing{}
	}
	lat, rps, burst := t.ConnectionsLatency, t.ConnectionsRPS, t.ConnectionsBurst
	if lat == 0 {
		lat = DefaultConnectionsLatency
	}
	if rps == 0 {
		rps = DefaultConnectionsRPS
	}
	if burst == 0 {
		burst = DefaultConnectionsBurst
	}
	return wsgw.Timing{Latency: lat, Limiter: wsgw.NewAccountLimiter(rps, burst, nil)}
}
