package openaicompat

import (
	"net/http"
	"testing"
	"time"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		name                  string
		status                int
		header                http.Header
		body                  string
		msg, typ, code, param string
		retry                 time.Duration
	}{
		{"openai", 400, nil, `{"error":{"message":"bad","type":"invalid_request_error","param":"temperature","code":"x"}}`, "bad", "invalid_request_error", "x", "temperature", 0},
		{"double encoded", 400, nil, `{"error":{"message":"{\"error\":{\"code\":\"validation_error\",\"message\":\"Model does not support image modality\",\"param\":null,\"type\":\"invalid_request_error\"}}","type":"invalid_request_error","param":null,"code":"validation_error"}}`, "Model does not support image modality", "invalid_request_error", "validation_error", "", 0},
		{"aws lower", 429, http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}, "Retry-After": {"2"}}, `{"message":"Too many requests"}`, "Too many requests", "rate_limit_error", "ThrottlingException", "", 2 * time.Second},
		{"aws upper", 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/#AccessDeniedException"}}, `{"Message":"Bearer Token has expired"}`, "Bearer Token has expired", "permission_error", "AccessDeniedException", "", 0},
		{"mantle code message", 400, nil, `{"code":"validation_error","message":"Failed to deserialize"}`, "Failed to deserialize", "invalid_request_error", "validation_error", "", 0},
		{"error string", 500, nil, `{"error":"boom"}`, "boom", "api_error", "", "", 0},
		{"numeric code", 400, nil, `{"error":{"message":"m","code":400}}`, "m", "invalid_request_error", "400", "", 0},
		{"html", 502, nil, `<html>bad gateway</html>`, "upstream returned 502: <html>bad gateway</html>", "api_error", "", "", 0},
		{"empty", 503, nil, ``, "upstream returned 503: upstream error", "api_error", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ParseError(tt.status, tt.header, []byte(tt.body))
			if e.Message != tt.msg || e.Type != tt.typ || e.Code != tt.code || e.Param != tt.param || e.RetryAfter != tt.retry {
				t.Errorf("got msg=%q type=%q code=%q param=%q retry=%v", e.Message, e.Type, e.Code, e.Param, e.RetryAfter)
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := retryAfter(now.Add(5*time.Second).Format(http.TimeFormat), now); got != 5*time.Second {
		t.Errorf("got %v", got)
	}
	if got := retryAfter("soon", now); got != 0 {
		t.Errorf("got %v", got)
	}
}

// FuzzParseError: any upstream body or header parses without panic into an
// error with a message.
func FuzzParseError(f *testing.F) {
	f.Add(400, `{"error":{"message":"{\"error\":{\"message\":\"x\"}}"}}`, "ThrottlingException:x")
	f.Add(403, `{"Message":"Bearer Token has expired"}`, "")
	f.Add(0, `{"error":"x"}`, "a#b")
	f.Fuzz(func(t *testing.T, status int, body, errType string) {
		e := ParseError(status, http.Header{"X-Amzn-Errortype": {errType}, "Retry-After": {errType}}, []byte(body))
		if e.Message == "" || e.Type == "" {
			t.Fatalf("empty message or type for %q", body)
		}
	})
}
