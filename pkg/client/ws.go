package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Event is the envelope of every event the service pushes.
type Event struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	GroupID  string          `json:"groupId"`
	Stream   string          `json:"stream"`
	Position string          `json:"position"`
	At       time.Time       `json:"at"`
	Data     json.RawMessage `json:"data"`
}

// Reply is the answer to a message the client sent (subscribed, pong, error...).
type Reply struct {
	Type      string   `json:"type"`
	RequestID string   `json:"requestId,omitempty"`
	GroupIDs  []string `json:"groupIds,omitempty"`
	// Recovered (subscribe and resume with positions) tells per stream
	// whether the missed events were replayed; Positions gives streams
	// without one a position to resume from.
	Recovered map[string]bool   `json:"recovered,omitempty"`
	Positions map[string]string `json:"positions,omitempty"`
	Rejected  []struct {
		GroupID string `json:"groupId"`
		Reason  string `json:"reason"`
	} `json:"rejected,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Conn is one live WebSocket connection. Pushed events arrive on Events;
// replies to Send are returned by Request in the order they come back.
type Conn struct {
	ws      *websocket.Conn
	events  chan Received
	replies chan Reply
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// Received is an event together with the local time it was read.
type Received struct {
	Event Event
	At    time.Time
}

// eventBuffer bounds how many unread events a Conn holds before its reader
// blocks (and so stops reading the socket, like a slow browser would).
const eventBuffer = 1024

// Dial connects to wsURL (ws://host/stage or wss://...) with the token in
// the query string, as browsers must.
func Dial(ctx context.Context, wsURL, token string) (*Conn, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	ws, resp, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: handshake status %d: %w", resp.StatusCode, &HandshakeError{Status: resp.StatusCode})
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	// API Gateway allows 128 KiB messages; accept as much.
	ws.SetReadLimit(128 << 10)
	c := &Conn{
		ws:      ws,
		events:  make(chan Received, eventBuffer),
		replies: make(chan Reply, 16),
		done:    make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// HandshakeError is a refused WebSocket handshake.
type HandshakeError struct{ Status int }

func (e *HandshakeError) Error() string { return fmt.Sprintf("handshake refused with %d", e.Status) }

// HandshakeStatus returns the HTTP status of a refused handshake, or 0.
func HandshakeStatus(err error) int {
	var h *HandshakeError
	if errors.As(err, &h) {
		return h.Status
	}
	return 0
}

func (c *Conn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		now := time.Now()
		// One decode for both kinds: the load tool reads tens of thousands
		// of messages a second on the machine it measures, so a second
		// pass per message would show up in the latencies it reports.
		var m message
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.ID != "" {
			c.events <- Received{Event: m.Event, At: now}
		} else {
			c.replies <- m.reply()
		}
	}
}

// message is any server message: events carry an id, replies do not.
type message struct {
	Event
	RequestID string            `json:"requestId"`
	Recovered map[string]bool   `json:"recovered"`
	Positions map[string]string `json:"positions"`
	GroupIDs  []string          `json:"groupIds"`
	Rejected  []struct {
		GroupID string `json:"groupId"`
		Reason  string `json:"reason"`
	} `json:"rejected"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (m message) reply() Reply {
	return Reply{Type: m.Type, RequestID: m.RequestID, GroupIDs: m.GroupIDs, Rejected: m.Rejected, Code: m.Code, Message: m.Message,
		Recovered: m.Recovered, Positions: m.Positions}
}

// Events delivers pushed events until the connection closes.
func (c *Conn) Events() <-chan Received { return c.events }

// Done is closed when the connection's reader stops.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the reader stopped (after Done is closed).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Request sends msg and waits for the next reply.
func (c *Conn) Request(ctx context.Context, msg any) (Reply, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return Reply{}, fmt.Errorf("encode message: %w", err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		return Reply{}, fmt.Errorf("send: %w", err)
	}
	select {
	case r := <-c.replies:
		return r, nil
	case <-c.done:
		return Reply{}, fmt.Errorf("connection closed: %w", c.Err())
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
}

// Subscribe subscribes the connection to groupIDs.
func (c *Conn) Subscribe(ctx context.Context, groupIDs ...string) (Reply, error) {
	return c.Request(ctx, map[string]any{"action": "subscribe", "groupIds": groupIDs})
}

// Close closes the connection normally.
func (c *Conn) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// Status is the close status the server sent, or -1.
func (c *Conn) Status() websocket.StatusCode { return websocket.CloseStatus(c.Err()) }

// TokenSource mints or fetches a JWT for a user.
type TokenSource interface {
	Token(ctx context.Context, userID, name string) (string, error)
}

// TokenEndpoint fetches tokens from an issuer that speaks the local stack's
// POST /token protocol.
type TokenEndpoint struct {
	URL    string // e.g. http://127.0.0.1:4000/token
	Client *http.Client
}

func (t TokenEndpoint) Token(ctx context.Context, userID, name string) (string, error) {
	h := &HTTP{BaseURL: t.URL, Client: t.Client}
	var out struct {
		Token string `json:"token"`
	}
	if err := h.Do(ctx, http.MethodPost, "", map[string]string{"sub": userID, "name": name}, &out); err != nil {
		return "", fmt.Errorf("token for %s: %w", userID, err)
	}
	return out.Token, nil
}
