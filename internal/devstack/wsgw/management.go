package wsgw

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// The @connections API answers errors like API Gateway: the error type in
// the x-amzn-ErrorType header and {"message": ...} in the body, which is
// what the AWS SDKs decode into GoneException and friends.
func writeAPIError(w http.ResponseWriter, status int, errorType, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", errorType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (g *Gateway) connectionFor(w http.ResponseWriter, r *http.Request) (*connection, bool) {
	c, ok := g.lookup(r.PathValue("connectionId"))
	if !ok {
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return nil, false
	}
	return c, true
}

// handlePost sends the body to the client as a text message.
func (g *Gateway) handlePost(w http.ResponseWriter, r *http.Request) {
	body, ok, err := readBody(r, g.limits.MaxMessageBytes)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "BadRequestException", "could not read the request body")
		return
	}
	if !ok {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
		return
	}
	c, ok := g.connectionFor(w, r)
	if !ok {
		return
	}
	if !c.enqueue(body) {
		// The client is not reading fast enough and its queue is full.
		writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
		return
	}
	c.touch()
	w.WriteHeader(http.StatusOK)
}

type connectionInfo struct {
	ConnectedAt  time.Time `json:"connectedAt"`
	Identity     identity  `json:"identity"`
	LastActiveAt time.Time `json:"lastActiveAt"`
}

type identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// handleGet describes a connection; times are ISO 8601 in UTC.
func (g *Gateway) handleGet(w http.ResponseWriter, r *http.Request) {
	c, ok := g.connectionFor(w, r)
	if !ok {
		return
	}
	info := connectionInfo{
		ConnectedAt:  c.hs.connectedAt.UTC().Truncate(time.Millisecond),
		Identity:     identity{SourceIP: c.hs.sourceIP, UserAgent: c.hs.userAgent},
		LastActiveAt: time.Unix(0, c.lastActive.Load()).UTC().Truncate(time.Millisecond),
	}
	b, _ := json.Marshal(info)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// handleDelete closes the connection; $disconnect follows asynchronously.
func (g *Gateway) handleDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := g.connectionFor(w, r)
	if !ok {
		return
	}
	c.close(closeInfo{code: int(websocket.StatusNormalClosure), reason: "Connection closed by the server", byServer: true})
	w.WriteHeader(http.StatusNoContent)
}
