package responses

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure the engine chose an HTTP status for: bad input, a
// missing resource, a switched-off feature. Message is safe to show.
type Error struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	Err     error
}

// Error returns the message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrStorageOff reports a stateful operation while storage is switched
// off.
var ErrStorageOff = errors.New("storage is switched off")

// invalid is a 400 naming the offending field.
func invalid(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// unsupported is a 400 for a feature this server does not serve.
func unsupported(param, format string, args ...any) *Error {
	e := invalid(param, format, args...)
	e.Code = "unsupported_parameter"
	return e
}

// notFound is a 404 for a missing response, conversation or item.
func notFound(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Param: param, Message: fmt.Sprintf(format, args...)}
}

// storageOff is the error of a stateful operation without storage.
func storageOff(what string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "storage_disabled",
		Message: what + " needs storage, and storage is switched off in this server's configuration", Err: ErrStorageOff}
}
