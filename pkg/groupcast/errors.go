// Package groupcast holds the domain of Groupcast: groups, members, posts,
// invitations, notifications and the events pushed to live connections.
// It knows nothing about AWS, HTTP or JSON wire formats; adapters in sibling
// packages translate to and from it.
package groupcast

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. Adapters map codes to transport statuses
// in exactly one table per transport (pkg/httpapi, pkg/wsapi), so internal errors never leak.
type Code string

const (
	CodeInvalid      Code = "invalid"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeTooLarge     Code = "too_large"
	CodeRateLimited  Code = "rate_limited"
	CodeInternal     Code = "internal"
)

// Codes lists every Code, so each transport can check its table covers them.
var Codes = []Code{
	CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound,
	CodeConflict, CodeTooLarge, CodeRateLimited, CodeInternal,
}

// Error is a domain error whose Message is safe to show to a client.
type Error struct {
	Code    Code
	Message string
	// RetryAfterSeconds is set on CodeRateLimited errors.
	RetryAfterSeconds int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain,
// CodeInternal for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err: the domain error's
// message, or a generic text for internal errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
