package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingName is the SigV4 service name of Bedrock and Bedrock Runtime,
// including its OpenAI-compatible /openai/v1 path: botocore's signingName
// "bedrock", not the endpoint prefix "bedrock-runtime" (bedrock-wire.md §1.3,
// §4.1). Short-term API keys are presigned with it too.
const signingName = "bedrock"

// signer is shared so that its cache of derived signing keys (one per
// credentials, day, region and service) is reused; it is safe for concurrent
// use.
var signer = v4.NewSigner()

// Header names set by SigV4 signing.
const (
	headerAmzContentSHA256 = "X-Amz-Content-Sha256"
	headerAmzSecurityToken = "X-Amz-Security-Token"
)

// SigV4 signs requests for Bedrock Runtime with service name "bedrock" (not "bedrock-runtime").
// It signs exactly as the AWS SDK for Go signs its bedrockruntime client's
// requests. A SigV4 is safe for concurrent use; Credentials should cache
// (those of [NewCredentialsProvider] do).
type SigV4 struct {
	// Credentials are retrieved for every request.
	Credentials aws.CredentialsProvider
	// Region is the region in the credential scope, that of the endpoint.
	Region string
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// Sign signs r, whose body is body (nil for none), in place: sets X-Amz-Date, X-Amz-Content-Sha256 if needed,
// X-Amz-Security-Token for session credentials, and Authorization.
//
// The payload hash is the SHA-256 of body, so r's body must be exactly
// body. X-Amz-Content-Sha256 is needed by S3, not by Bedrock, and the AWS
// SDKs do not send it to Bedrock; Sign therefore sets it only when r already
// has it (then to the hash of body). Sign must run after every other change
// to r's headers, host, path and query, since all of them are signed (except
// User-Agent and the headers the transport adds itself); a request signed
// before, such as a retry, may be signed again. Errors never contain a
// secret.
func (s *SigV4) Sign(ctx context.Context, r *http.Request, body []byte) error {
	if s.Credentials == nil {
		return errors.New("sign Bedrock request: no AWS credentials provider")
	}
	if s.Region == "" {
		return errors.New("sign Bedrock request: no AWS region")
	}
	creds, err := s.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("sign Bedrock request: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	// Leftovers of an earlier signing: a token from other credentials
	// would otherwise be sent (and signed) again.
	r.Header.Del("Authorization")
	r.Header.Del(headerAmzSecurityToken)
	if r.Header.Get(headerAmzContentSHA256) != "" {
		r.Header.Set(headerAmzContentSHA256, hash)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if err := signer.SignHTTP(ctx, creds, r, hash, signingName, s.Region, now()); err != nil {
		return fmt.Errorf("sign Bedrock request: %w", err)
	}
	return nil
}
