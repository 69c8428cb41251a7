package fanout

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestLanes(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		keys     []string
		failAt   int // index whose run fails; -1 none
		wantRun  map[string][]int
		wantErrs []error
	}{
		{"one key runs in batch order", []string{"a", "a", "a"}, -1,
			map[string][]int{"a": {0, 1, 2}}, []error{nil, nil, nil}},
		{"keys interleaved keep their own order", []string{"a", "b", "a", "b"}, -1,
			map[string][]int{"a": {0, 2}, "b": {1, 3}}, []error{nil, nil, nil, nil}},
		{"a failure stops its lane only", []string{"a", "b", "a", "b"}, 0,
			map[string][]int{"a": {0}, "b": {1, 3}}, []error{boom, nil, ErrNotRun, nil}},
		{"an empty batch", nil, -1, map[string][]int{}, []error{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			ran := map[string][]int{}
			errs := Lanes(context.Background(), len(tt.keys), func(i int) string { return tt.keys[i] }, func(_ context.Context, i int) error {
				mu.Lock()
				ran[tt.keys[i]] = append(ran[tt.keys[i]], i)
				mu.Unlock()
				if i == tt.failAt {
					return boom
				}
				return nil
			})
			for k, want := range tt.wantRun {
				if !slices.Equal(ran[k], want) {
					t.Errorf("lane %s ran %v, want %v", k, ran[k], want)
				}
			}
			if len(ran) != len(tt.wantRun) {
				t.Errorf("lanes run %v, want %v", ran, tt.wantRun)
			}
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errs %v, want %v", errs, tt.wantErrs)
			}
			for i := range errs {
				if !errors.Is(errs[i], tt.wantErrs[i]) || (errs[i] == nil) != (tt.wantErrs[i] == nil) {
					t.Errorf("errs[%d] = %v, want %v", i, errs[i], tt.wantErrs[i])
				}
			}
		})
	}
}

// A slow key does not hold up another key of the same batch.
func TestLanesRunKeysAtOnce(t *testing.T) {
	other := make(chan struct{})
	errs := Lanes(context.Background(), 2, func(i int) string { return []string{"big", "small"}[i] }, func(_ context.Context, i int) error {
		if i == 1 {
			close(other)
			return nil
		}
		select {
		case <-other:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the small key waited behind the big one")
		}
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
}
