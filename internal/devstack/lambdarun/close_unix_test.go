//go:build unix

package lambdarun

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall"
	"testing"
)

func TestCloseStopsEveryProcess(t *testing.T) {
	const instances = 3
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "EchoFunction", MaxConcurrency: instances + 1}, "echo")
	ctx := testContext(t)

	// Start three instances (held together at the gate so none is reused),
	// and learn their pids.
	warm := newGate(t)
	var wg sync.WaitGroup
	pids := make(chan int, instances)
	for range instances {
		wg.Go(func() {
			out, err := rt.Invoke(ctx, "EchoFunction", []byte(warm.payload()))
			var r echoReply
			if err == nil {
				err = json.Unmarshal(out, &r)
			}
			if err != nil {
				t.Errorf("invoke: %v", err)
				return
			}
			pids <- r.PID
		})
	}
	warm.waitArrivals(t, ctx, instances)
	warm.open()
	wg.Wait()
	close(pids)

	// One more invocation is still running when Close starts.
	busy := newGate(t)
	inFlight := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(ctx, "EchoFunction", []byte(busy.payload()))
		inFlight <- err
	}()
	busy.waitArrivals(t, ctx, 1)

	if err := rt.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	var fe *FunctionError
	if err := <-inFlight; !errors.As(err, &fe) || fe.Type != ErrorTypeExit {
		t.Errorf("in-flight invocation: err = %v, want %s", err, ErrorTypeExit)
	}
	for pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if st, _ := rt.Stats("EchoFunction"); st.Instances != 0 {
		t.Errorf("after Close: %d instances", st.Instances)
	}
	if _, err := rt.Invoke(context.Background(), "EchoFunction", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("invoke after Close: err = %v, want ErrClosed", err)
	}
}
