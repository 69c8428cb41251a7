package wsgw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

// benchGateway is a gateway with one open WebSocket client whose messages
// arrive on the returned channel, and a signed POST to that connection
// (signed once with a function's credentials and a ManageConnections
// policy, as the fan-out's are; the signature stays valid for 15 minutes).
func benchGateway(b *testing.B) (*Gateway, *httptest.Server, *http.Request, []byte, <-chan []byte) {
	b.Helper()
	inv := &fakeInvoker{calls: make(chan invocation, 100), handle: standardHandler}
	cfg := Config{
		Stage: "dev", APIID: "localws1", Region: "us-east-1", AccountID: "123456789012",
		Routes: map[string]Route{RouteConnect: {Function: "Connect"}},
		// Room for every message a handler-only run can queue before the
		// client drains them.
		Limits: Limits{SendQueueLength: 1 << 20},
	}
	reg := iam.NewRegistry(cfg.Region, cfg.AccountID, "test")
	creds, err := reg.AddFunction("FanoutFunction", []iam.Statement{{Effect: "Allow", Action: []string{"execute-api:ManageConnections"},
		Resource: []string{"arn:aws:execute-api:us-east-1:123456789012:localws1/*/POST/@connections/*"}}})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Auth = reg
	gw, err := New(cfg, inv)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/dev", nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetReadLimit(-1)
	var id string
	select {
	case c := <-inv.calls:
		id = c.event.RequestContext.ConnectionID
	case <-ctx.Done():
		b.Fatal("no $connect")
	}
	got := make(chan []byte, 1<<16)
	go func() {
		for {
			_, msg, err := ws.Read(context.Background())
			if err != nil {
				close(got)
				return
			}
			got <- msg
		}
	}()
	b.Cleanup(func() {
		_ = ws.CloseNow()
		_ = gw.Shutdown(ctx)
		srv.Close()
		cancel()
	})
	body := bytes.Repeat([]byte("x"), 400)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/dev/@connections/"+id, nil)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	return gw, srv, req, body, got
}

func receive(b *testing.B, got <-chan []byte) {
	select {
	case _, ok := <-got:
		if !ok {
			b.Fatal("client closed")
		}
	case <-time.After(10 * time.Second): // a lost message fails instead of hanging
		b.Fatal("message not delivered")
	}
}

// BenchmarkManagementPost is one @connections POST to an open connection:
// through real HTTP until the WebSocket client has the message
// (end-to-end), and the handler alone (ServeHTTP with a recorder; the
// client drains its queue meanwhile).
func BenchmarkManagementPost(b *testing.B) {
	b.Run("end-to-end", func(b *testing.B) {
		_, _, signed, body, got := benchGateway(b)
		client := &http.Client{}
		for b.Loop() {
			req := signed.Clone(context.Background())
			req.Body = io.NopCloser(bytes.NewReader(body))
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			receive(b, got)
		}
	})
	b.Run("handler", func(b *testing.B) {
		gw, _, signed, body, got := benchGateway(b)
		n := 0
		for b.Loop() {
			req := signed.Clone(context.Background())
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.RequestURI = req.URL.RequestURI()
			w := httptest.NewRecorder()
			gw.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			n++
		}
		b.StopTimer()
		for range n {
			receive(b, got)
		}
	})
}
