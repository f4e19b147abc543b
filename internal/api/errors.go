package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/resilient"
	"github.com/llama-stack-go/llama-stack-go/internal/ratelimit"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// statusClientClosed is the status logged when the client went away
// before the answer was complete (nginx's 499); it is never sent.
const statusClientClosed = 499

// Error is a failure the handler chose a status for: bad input, a missing
// resource, an unsupported request. Message is shown to the client.
type Error struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	Err     error
}

// Error returns the client-facing message.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// badRequest is a 400 naming the offending field.
func badRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// problem is the outcome of mapping an error: the status, the body and the
// back-off to advertise.
type problem struct {
	status       int
	detail       openai.ErrorDetail
	retryAfter   int  // seconds; 0 means none
	authenticate bool // send WWW-Authenticate: Bearer
}

// toProblem is the one mapping from error to HTTP status and OpenAI error
// body. The body never holds more than the error's safe message; the
// wrapped chain goes to the log.
func toProblem(err error) problem {
	var (
		ae  *Error
		pe  *provider.Error
		nf  *registry.NotFoundError
		ie  *registry.InvalidError
		mbe *http.MaxBytesError
		le  *ratelimit.Error
		aue *auth.Error
	)
	switch {
	case errors.As(err, &ae):
		return mk(ae.Status, ae.Type, ae.Code, ae.Param, ae.Message)
	case errors.As(err, &nf):
		return mk(http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("Model '%s' not found. Use 'GET /v1/models' (client.models.list()) to list available models.", nf.ID))
	case errors.As(err, &le):
		p := mk(http.StatusTooManyRequests, "rate_limit_exceeded", "rate_limit_exceeded", "", le.Error())
		p.retryAfter = le.RetryAfterSeconds()
		return p
	case errors.As(err, &aue):
		switch aue.StatusCode() {
		case http.StatusUnauthorized:
			p := mk(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "", aue.Message)
			p.authenticate = true
			return p
		case http.StatusForbidden:
			return mk(http.StatusForbidden, "invalid_request_error", "permission_denied", "", aue.Message)
		default:
			return mk(http.StatusServiceUnavailable, "api_error", "auth_unavailable", "", aue.Message)
		}
	case errors.As(err, &ie):
		return mk(http.StatusBadRequest, "invalid_request_error", "", ie.Field, ie.Message)
	case errors.Is(err, registry.ErrModelExists):
		return mk(http.StatusConflict, "invalid_request_error", "model_exists", "model_id",
			"a model with this id is already registered; unregister it first (DELETE /v1/models/{model_id}) or choose another id")
	case errors.Is(err, registry.ErrNotRegistered):
		return mk(http.StatusBadRequest, "invalid_request_error", "model_not_registered", "model_id",
			"this model comes from the run config or from its provider's model list, not from POST /v1/models; remove it from the run config instead")
	case errors.Is(err, store.ErrInvalid):
		return mk(http.StatusBadRequest, "invalid_request_error", "", "", "the request holds text the store cannot keep (empty ids, NUL bytes or invalid UTF-8)")
	case errors.Is(err, store.ErrUnavailable):
		return mk(http.StatusServiceUnavailable, "api_error", "storage_unavailable", "", "the server's storage is unavailable right now; try again shortly")
	case errors.As(err, &mbe):
		return mk(http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
			fmt.Sprintf("request body is larger than the server's limit of %d bytes", mbe.Limit))
	case errors.As(err, &pe):
		p := mk(upstreamStatus(pe), pe.Type, pe.Code, pe.Param, pe.Message)
		if p.status == http.StatusTooManyRequests || p.status == http.StatusServiceUnavailable {
			p.retryAfter = max(1, int(math.Ceil(pe.RetryAfter.Seconds())))
		}
		return p
	case errors.Is(err, context.Canceled):
		return mk(statusClientClosed, "api_error", "client_closed_request", "", "the client closed the request")
	case errors.Is(err, context.DeadlineExceeded):
		return mk(http.StatusGatewayTimeout, "api_error", "timeout", "", "the request timed out")
	default:
		return mk(http.StatusInternalServerError, "api_error", "internal_error", "", "internal server error")
	}
}

// upstreamStatus maps an upstream failure to the status the client gets:
// the upstream's own for client errors, 502 for its server errors, 504 for
// its timeouts.
func upstreamStatus(e *provider.Error) int {
	s := e.StatusCode
	switch {
	case errors.Is(e, resilient.ErrOverloaded), errors.Is(e, resilient.ErrCircuitOpen):
		// This server refuses to send: the upstream is failing or full.
		return http.StatusServiceUnavailable
	case s == 0:
		return http.StatusBadGateway
	case s == http.StatusRequestTimeout || s == http.StatusGatewayTimeout:
		return http.StatusGatewayTimeout
	case s >= 500:
		return http.StatusBadGateway
	case s == 424: // Bedrock ModelErrorException: the model failed
		return http.StatusBadGateway
	case s >= 400:
		return s
	default:
		return http.StatusBadGateway
	}
}

func mk(status int, typ, code, param, msg string) problem {
	d := openai.ErrorDetail{Message: msg, Type: typ}
	if code != "" {
		d.Code = &code
	}
	if param != "" {
		d.Param = &param
	}
	return problem{status: status, detail: d}
}

// writeError answers with the error's status and OpenAI error body and
// logs it: 5xx at error level, client-gone at debug, the rest at info.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := toProblem(err)
	logProblem(r, log, p, err)
	if p.status == statusClientClosed {
		if sw, ok := w.(*statusWriter); ok && sw.status == 0 {
			sw.status = statusClientClosed
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.authenticate {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(p.status)
	_ = writeJSONBody(w, openai.ErrorBody{Error: p.detail})
}

func logProblem(r *http.Request, log *slog.Logger, p problem, err error) {
	level := slog.LevelInfo
	switch {
	case p.status == statusClientClosed:
		level = slog.LevelDebug
	case p.status >= 500:
		level = slog.LevelError
	}
	log.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", requestID(r.Context())),
		slog.Int("status", p.status),
		slog.String("error", err.Error()))
}
