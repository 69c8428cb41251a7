package fanout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// benchServer is the local @connections endpoint of the benchmarks: it
// reads the body and answers 200, so what is measured is the client.
func benchServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/dev"
}

// barePoster is the floor the SDK client is measured against: a keep-alive
// net/http POST of the same body to the same URL, signed with the SDK's own
// SigV4 signer, and nothing else (no middleware, no error decoding).
type barePoster struct {
	endpoint string
	creds    aws.Credentials
	region   string
	signer   *v4.Signer
	client   *http.Client
}

func newBarePoster(b *testing.B, endpoint string, concurrency int) *barePoster {
	creds, err := testAWSConfig().Credentials.Retrieve(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = concurrency*2, concurrency
	return &barePoster{endpoint: endpoint, creds: creds, region: "us-east-1", signer: v4.NewSigner(), client: &http.Client{Transport: tr}}
}

func (p *barePoster) PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint+"/@connections/"+url.PathEscape(aws.ToString(in.ConnectionId)), bytes.NewReader(in.Data))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(in.Data)
	if err := p.signer.SignHTTP(ctx, p.creds, req, hex.EncodeToString(sum[:]), "execute-api", p.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

// benchPosters are the clients every benchmark below runs side by side:
// the floor (bare), the one the fan-out ships (sdk) and the SDK's full
// middleware stack on every call.
var benchPosters = []struct {
	name string
	new  func(b *testing.B, endpoint string, concurrency int) Poster
}{
	{"client=bare-signed-post", func(b *testing.B, endpoint string, concurrency int) Poster {
		return newBarePoster(b, endpoint, concurrency)
	}},
	{"client=sdk", func(b *testing.B, endpoint string, concurrency int) Poster {
		return NewManagementClient(testAWSConfig(), endpoint, concurrency)
	}},
	// The SDK client alone, every call through its middleware stack: what
	// the fan-out used before ManagementClient's fast path.
	{"client=sdk-middleware-stack", func(b *testing.B, endpoint string, concurrency int) Poster {
		return NewManagementClient(testAWSConfig(), endpoint, concurrency).sdk
	}},
}

// BenchmarkPostToConnection is one PostToConnection at a time over a
// keep-alive connection: the cost of the call path itself, SDK against the
// bare signed POST. The body is a post-created envelope's size.
func BenchmarkPostToConnection(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 400)
	for _, bp := range benchPosters {
		b.Run(bp.name, func(b *testing.B) {
			p := bp.new(b, benchServer(b), 1)
			in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("conn-1"), Data: payload}
			ctx := context.Background()
			for b.Loop() {
				if _, err := p.PostToConnection(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPushPost delivers one post to 100, 1,000 and 10,000 subscribed
// connections through a local @connections server, with the SDK client and
// with the bare signed POST. Subscribers come from the in-memory store
// (pages of 1,000, like a Query page of small items), so the benchmark
// measures the push path: worker pool, SDK serialisation and HTTP, not
// DynamoDB.
func BenchmarkPushPost(b *testing.B) {
	records := loadRecords(b)
	post := batch(records, "post-created")
	for _, n := range []int{100, 1_000, 10_000} {
		for _, bp := range benchPosters {
			b.Run(fmt.Sprintf("connections=%d/%s", n, bp.name), func(b *testing.B) {
				store := newMemStore()
				store.pageSize = 1000
				store.groups["g1"] = groupcast.Group{ID: "g1", Visibility: groupcast.Public}
				for i := range n {
					store.subscribe("g1", fmt.Sprintf("user-%d", i), fmt.Sprintf("conn-%d", i))
				}
				// The direct path for every size: this measures the push itself.
				f, err := New(store, bp.new(b, benchServer(b), DefaultConcurrency), newMemQueue(),
					slog.New(slog.NewJSONHandler(io.Discard, nil)), applog.NewEMF(io.Discard, "bench", nil),
					Config{DirectPushLimit: n, PushQueueURL: pushQueue, InboxQueueURL: inboxQueue, Now: func() time.Time { return fixtureAt }})
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					resp, err := f.Handle(context.Background(), post)
					if err != nil || len(resp.BatchItemFailures) != 0 {
						b.Fatalf("Handle = %+v, %v", resp, err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(n*b.N), "µs/delivery")
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}
