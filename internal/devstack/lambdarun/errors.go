package lambdarun

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned by Invoke and Register once Close has begun.
var ErrClosed = errors.New("lambdarun: runtime closed")

// Error types the platform itself reports (as opposed to ones the function's
// runtime library posts). The names are the ones AWS Lambda uses, so code that
// branches on them behaves the same locally.
const (
	// ErrorTypeExit: the process exited or crashed (during init or an invocation).
	ErrorTypeExit = "Runtime.ExitError"
	// ErrorTypeTimeout: the invocation ran past the function's Timeout, or init past InitTimeout.
	ErrorTypeTimeout = "Sandbox.Timedout"
	// ErrorTypeResponseTooLarge: the response exceeded the 6 MB synchronous payload limit.
	ErrorTypeResponseTooLarge = "Function.ResponseSizeTooLarge"
)

// FunctionError is the error of a function invocation, in the shape Lambda returns
// to a synchronous caller: either what the function's runtime posted to
// /invocation/{id}/error (or /init/error), or a platform error such as a timeout
// or a crash (see the ErrorType* constants).
type FunctionError struct {
	Type       string   `json:"errorType"`
	Message    string   `json:"errorMessage"`
	StackTrace []string `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// JSON renders the error as Lambda's invoke API does in its response payload.
func (e *FunctionError) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: the struct holds only strings
		return []byte(`{"errorType":"Runtime.SerializationError"}`)
	}
	return b
}

// parseErrorBody decodes an error posted by a runtime. aws-lambda-go sends
// {"errorMessage","errorType","stackTrace":[{path,line,label}]}; other runtimes
// (Node, Python) send stackTrace as strings. A body that is not JSON is kept
// verbatim as the message so nothing the runtime said is lost.
func parseErrorBody(body []byte, headerType string) *FunctionError {
	var raw struct {
		Type       string            `json:"errorType"`
		Message    string            `json:"errorMessage"`
		StackTrace []json.RawMessage `json:"stackTrace"`
	}
	fe := &FunctionError{}
	if err := json.Unmarshal(body, &raw); err != nil {
		fe.Message = strings.TrimSpace(string(body))
	} else {
		fe.Type, fe.Message = raw.Type, raw.Message
		for _, frame := range raw.StackTrace {
			fe.StackTrace = append(fe.StackTrace, formatFrame(frame))
		}
	}
	if fe.Type == "" {
		fe.Type = headerType
	}
	if fe.Type == "" {
		fe.Type = "Runtime.Unknown"
	}
	return fe
}

func formatFrame(frame json.RawMessage) string {
	var s string
	if json.Unmarshal(frame, &s) == nil {
		return s
	}
	var f struct {
		Path  string `json:"path"`
		Line  int    `json:"line"`
		Label string `json:"label"`
	}
	if json.Unmarshal(frame, &f) == nil && f.Path != "" {
		return fmt.Sprintf("%s (%s:%d)", f.Label, f.Path, f.Line)
	}
	return string(frame)
}
