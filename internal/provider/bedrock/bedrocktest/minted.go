package bedrocktest

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mintedKeyFailure checks a short-term Bedrock API key the way the front
// door would, short of the signature: a presigned CallWithBearerToken URL
// for service bedrock, from an accepted key id, not yet expired.
func (s *Server) mintedKeyFailure(key string) *rawHTTP {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "bedrock-api-key-"))
	if err != nil {
		return s.fx.bearerInvalid
	}
	rest, ok := strings.CutPrefix(string(raw), "bedrock.amazonaws.com/?")
	if !ok {
		return s.fx.bearerInvalid
	}
	q, err := url.ParseQuery(rest)
	if err != nil || q.Get("Action") != "CallWithBearerToken" || q.Get("Version") != "1" || q.Get("X-Amz-Signature") == "" {
		return s.fx.bearerInvalid
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[3] != "bedrock" || scope[4] != "aws4_request" || !slices.Contains(s.opts.IAMKeyIDs, scope[0]) {
		return s.fx.bearerInvalid
	}
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	expires, err2 := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || err2 != nil || expires <= 0 || expires > 43200 {
		return s.fx.bearerInvalid
	}
	if time.Now().After(signed.Add(time.Duration(expires) * time.Second)) {
		return s.fx.bearerExpired
	}
	return nil
}
