package openaicompat

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// ParseError builds a *provider.Error from an upstream error response. It
// reads every shape OpenAI-compatible upstreams are known to send:
// {"error":{"message","type","param","code"}} (with an error message that
// may itself be a JSON-encoded error, as Bedrock double-encodes them),
// {"error":"text"}, {"message"}, {"Message"} and {"code","message"}, plus
// AWS's x-amzn-ErrorType header and Retry-After. status 0 means an error
// event inside a stream.
func ParseError(status int, h http.Header, body []byte) *provider.Error {
	e := &provider.Error{StatusCode: status}
	parseErrorBody(e, body, 0)
	if h != nil {
		if t := awsErrorType(h.Get("X-Amzn-Errortype")); t != "" && e.Code == "" {
			e.Code = t
		}
		e.RetryAfter = retryAfter(h.Get("Retry-After"), time.Now())
	}
	if e.Message == "" {
		e.Message = "upstream error"
		if s := strings.TrimSpace(string(body)); s != "" && utf8.ValidString(s) {
			if len(s) > 200 {
				s = s[:200] + "…"
			}
			e.Message = s
		}
		if status != 0 {
			e.Message = "upstream returned " + strconv.Itoa(status) + ": " + e.Message
		}
	}
	if e.Type == "" {
		e.Type = typeForStatus(status)
	}
	return e
}

// wireError is the union of the error shapes upstreams send.
type wireError struct {
	Error     json.RawMessage `json:"error"`
	Message   string          `json:"message"`
	MessageUC string          `json:"Message"`
	Code      json.RawMessage `json:"code"`
	Type      string          `json:"type"`
	Param     json.RawMessage `json:"param"`
}

func parseErrorBody(e *provider.Error, body []byte, depth int) {
	var w wireError
	if depth > 3 || json.Unmarshal(body, &w) != nil {
		return
	}
	if len(w.Error) > 0 && w.Error[0] == '"' {
		var s string
		_ = json.Unmarshal(w.Error, &s)
		e.Message = s
		return
	}
	if len(w.Error) > 0 && w.Error[0] == '{' {
		parseErrorBody(e, w.Error, depth+1)
		return
	}
	// encoding/json matches names case-insensitively, so "Message" may
	// have landed in Message; either way one of them holds the text.
	msg := w.Message
	if msg == "" {
		msg = w.MessageUC
	}
	if w.Type != "" {
		e.Type = w.Type
	}
	if c := scalarText(w.Code); c != "" {
		e.Code = c
	}
	if p := scalarText(w.Param); p != "" {
		e.Param = p
	}
	e.Message = msg
	// Bedrock's OpenAI path double-encodes: the message is a JSON error.
	if t := bytes.TrimSpace([]byte(msg)); len(t) > 0 && t[0] == '{' {
		inner := &provider.Error{}
		parseErrorBody(inner, t, depth+1)
		if inner.Message != "" {
			e.Message = inner.Message
			if inner.Type != "" {
				e.Type = inner.Type
			}
			if inner.Code != "" {
				e.Code = inner.Code
			}
			if inner.Param != "" {
				e.Param = inner.Param
			}
		}
	}
}

// scalarText returns a JSON string's or number's text, "" for null/absent.
func scalarText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// awsErrorType extracts "ThrottlingException" from
// "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
// and from "...#AccessDeniedException" forms.
func awsErrorType(v string) string {
	if v == "" {
		return ""
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[:i]
	}
	if i := strings.LastIndexByte(v, '#'); i >= 0 {
		v = v[i+1:]
	}
	return v
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// typeForStatus gives OpenAI's error type for an HTTP status.
func typeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	default:
		return "api_error"
	}
}
