package wsgw

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/groupcast/groupcast/internal/devstack/iam"
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

// authorizeManagement lets a @connections call through only when it is signed with
// credentials the stack issued and the caller's policies allow
// execute-api:ManageConnections on
// arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/{connectionId}.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html
//
// Every refusal is 403, with AWS's messages. The error type is
// ForbiddenException, the 403 error the management API's SDK model
// declares for each operation, which is what the Go SDK reports for
// API Gateway's 403s (https://csdcorp.com/blog/coding/aws-websocket-403-using-posttoconnect/).
func (g *Gateway) authorizeManagement(w http.ResponseWriter, r *http.Request, body []byte) bool {
	p, err := g.cfg.Auth.Authenticate(r.Context(), r, body, "execute-api")
	if err != nil {
		var ae *iam.AuthError
		switch {
		case !errors.As(err, &ae):
			g.log.Error("wsgw: authenticate @connections call", "err", err)
			writeAPIError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
		case ae.Kind == iam.MissingToken:
			writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Missing Authentication Token")
		default:
			writeAPIError(w, http.StatusForbidden, "ForbiddenException", ae.Message)
		}
		return false
	}
	resource := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s/@connections/%s",
		g.cfg.Region, g.cfg.AccountID, g.cfg.APIID, g.cfg.Stage, r.Method, r.PathValue("connectionId"))
	if err := p.Authorize("execute-api:ManageConnections", resource); err != nil {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", err.Error())
		return false
	}
	return true
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
	if !g.authorizeManagement(w, r, body) {
		return
	}
	c, ok := g.connectionFor(w, r)
	if !ok {
		return
	}
	if c.hs.pushFault != 0 {
		g.faulted.Add(1)
		writePushFault(w, c.hs.pushFault)
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
	if !g.authorizeManagement(w, r, nil) {
		return
	}
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
	if !g.authorizeManagement(w, r, nil) {
		return
	}
	c, ok := g.connectionFor(w, r)
	if !ok {
		return
	}
	c.close(closeInfo{code: int(websocket.StatusNormalClosure), reason: "Connection closed by the server", byServer: true})
	w.WriteHeader(http.StatusNoContent)
}
