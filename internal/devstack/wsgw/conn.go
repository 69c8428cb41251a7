package wsgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/groupcast/groupcast/internal/devstack/apigwid"
)

// connection is one open WebSocket client.
type connection struct {
	g       *Gateway
	ws      *websocket.Conn
	hs      *handshake
	id      string
	watcher *frameWatcher
	ready   chan struct{} // closed once ws is set (nil if the upgrade failed)

	lastActive atomic.Int64 // unix nanoseconds
	send       chan []byte  // bounded: a slow client never blocks posters
	ctx        context.Context
	cancel     context.CancelFunc // ends the writer and supervisor
	closeOnce  sync.Once
}

// closeInfo says why a connection ends; it becomes the $disconnect event's
// disconnectStatusCode and disconnectReason.
type closeInfo struct {
	code     int
	reason   string
	byServer bool // the gateway closes the socket (else the client did)
}

func newConnection(g *Gateway, hs *handshake, watcher *frameWatcher) *connection {
	c := &connection{
		g:       g,
		ready:   make(chan struct{}),
		hs:      hs,
		id:      hs.id,
		watcher: watcher,
		send:    make(chan []byte, g.limits.SendQueueLength),
	}
	c.ctx, c.cancel = context.WithCancel(g.baseCtx)
	c.touch()
	return c
}

// attach sets the upgraded socket; a connection registered before its
// upgrade may already be closing (DELETE, Shutdown) and waits for this.
func (c *connection) attach(ws *websocket.Conn) {
	c.ws = ws
	close(c.ready)
}

func (c *connection) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// run serves the connection until it closes.
func (c *connection) run() {
	go c.writeLoop()
	go c.supervise()
	c.readLoop()
}

func (c *connection) readLoop() {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.close(readCloseInfo(err))
			return
		}
		if c.watcher.Oversized() {
			c.close(closeInfo{code: int(websocket.StatusMessageTooBig), reason: "Frame too big", byServer: true})
			return
		}
		if typ != websocket.MessageText {
			c.close(closeInfo{code: int(websocket.StatusUnsupportedData), reason: "Binary frames are not supported", byServer: true})
			return
		}
		c.touch()
		c.handleMessage(data)
	}
}

// readCloseInfo turns the error ending a read into the disconnect status.
func readCloseInfo(err error) closeInfo {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		reason := ce.Reason
		if ce.Code == websocket.StatusNoStatusRcvd {
			reason = "Client-side close frame status not set"
		}
		return closeInfo{code: int(ce.Code), reason: reason}
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has already closed the socket with 1009.
		return closeInfo{code: int(websocket.StatusMessageTooBig), reason: "Message too big"}
	default:
		return closeInfo{code: int(websocket.StatusAbnormalClosure), reason: "Connection was closed abnormally"}
	}
}

// handleMessage routes one message and, for a two-way route, sends the
// function's response body back. Messages of one client are handled in
// order.
func (c *connection) handleMessage(data []byte) {
	routeKey := c.g.selectRoute(data)
	requestID := apigwid.New()
	if routeKey == "" {
		// No matching route and no $default: API Gateway answers Forbidden.
		c.enqueueJSON(map[string]string{"message": "Forbidden", "connectionId": c.id, "requestId": requestID})
		return
	}
	route := c.g.cfg.Routes[routeKey]
	rc := c.g.requestContext(c.hs, routeKey, "MESSAGE")
	rc.RequestID = requestID
	rc.MessageID = apigwid.New()
	ev := events.APIGatewayWebsocketProxyRequest{
		Body:           string(data),
		RequestContext: rc,
	}
	out, err := c.g.invoke(c.ctx, route.Function, ev)
	if err != nil {
		if c.ctx.Err() == nil {
			c.g.log.Error("message integration failed", "connectionId", c.id, "route", routeKey, "function", route.Function, "err", err)
			c.enqueueJSON(map[string]string{"message": "Internal server error", "connectionId": c.id, "requestId": requestID})
		}
		return
	}
	if !route.TwoWay {
		return
	}
	_, body, err := parseProxyResponse(out)
	if err != nil {
		c.g.log.Error("malformed route response", "connectionId", c.id, "route", routeKey, "err", err)
		return
	}
	if body != "" {
		c.enqueue([]byte(body))
	}
}

// selectRoute evaluates the route selection expression on a message: the
// route named by the value at the body path, else $default, else "".
func (g *Gateway) selectRoute(data []byte) string {
	var v any
	if json.Unmarshal(data, &v) == nil {
		for _, key := range g.bodyPath {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[key]
		}
		if s, ok := v.(string); ok && s != RouteConnect && s != RouteDisconnect {
			if _, found := g.cfg.Routes[s]; found {
				return s
			}
		}
	}
	if _, found := g.cfg.Routes[RouteDefault]; found {
		return RouteDefault
	}
	return ""
}

func (c *connection) enqueueJSON(v any) {
	b, _ := json.Marshal(v)
	c.enqueue(b)
}

// enqueue queues a message for the client without blocking; it reports
// false when the client's queue is full.
func (c *connection) enqueue(msg []byte) bool {
	select {
	case c.send <- msg:
		return true
	default:
		return false
	}
}

// writeLoop is the only writer of the socket, so frames never interleave.
func (c *connection) writeLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case msg := <-c.send:
			if err := c.ws.Write(c.ctx, websocket.MessageText, msg); err != nil {
				c.close(closeInfo{code: int(websocket.StatusAbnormalClosure), reason: "Connection was closed abnormally"})
				return
			}
		}
	}
}

// supervise enforces the idle timeout and the maximum connection age.
func (c *connection) supervise() {
	lim := c.g.limits
	age := time.NewTimer(lim.MaxConnectionAge - time.Since(c.hs.connectedAt))
	defer age.Stop()
	idle := time.NewTimer(lim.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-age.C:
			c.close(closeInfo{code: int(websocket.StatusGoingAway), reason: "Going away", byServer: true})
			return
		case <-idle.C:
			quiet := time.Since(time.Unix(0, c.lastActive.Load()))
			if quiet >= lim.IdleTimeout {
				c.close(closeInfo{code: int(websocket.StatusGoingAway), reason: "Going away", byServer: true})
				return
			}
			idle.Reset(lim.IdleTimeout - quiet)
		}
	}
}

// close ends the connection once: it stops being postable at once, the
// socket is closed (with a close handshake when the gateway initiates), and
// $disconnect is invoked asynchronously.
func (c *connection) close(info closeInfo) {
	c.closeOnce.Do(func() {
		c.g.unregister(c.id)
		go func() {
			defer c.g.wg.Done()
			<-c.ready
			switch {
			case c.ws == nil:
			case info.byServer:
				_ = c.ws.Close(websocket.StatusCode(info.code), info.reason)
			default:
				_ = c.ws.CloseNow()
			}
			c.cancel()
			c.disconnect(info)
		}()
	})
}

func (c *connection) disconnect(info closeInfo) {
	route, ok := c.g.cfg.Routes[RouteDisconnect]
	if !ok {
		return
	}
	rc := c.g.requestContext(c.hs, RouteDisconnect, "DISCONNECT")
	rc.DisconnectStatusCode = int64(info.code)
	reason := info.reason
	rc.DisconnectReason = &reason
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:           c.hs.headers,
		MultiValueHeaders: c.hs.multiHeader,
		RequestContext:    rc,
	}
	if _, err := c.g.invoke(c.g.baseCtx, route.Function, ev); err != nil {
		c.g.log.Error("$disconnect failed", "connectionId", c.id, "function", route.Function, "err", err)
	}
}

// readBody reads a management request body up to limit bytes; ok is false
// when it is larger.
func readBody(r *http.Request, limit int64) (body []byte, ok bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	return body, int64(len(body)) <= limit, nil
}
