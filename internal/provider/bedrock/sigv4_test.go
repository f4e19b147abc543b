package bedrock

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Documentation example credentials (not real).
const (
	exampleAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	exampleSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleSessionToken    = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN/+=="
)

var signTime = time.Date(2025, 8, 14, 1, 13, 23, 0, time.UTC)

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID, scope, signedHeaders, signature string
}

func parseAuthorization(h string) (authorization, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return authorization{}, fmt.Errorf("not SigV4: %q", h)
	}
	var a authorization
	for part := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			a.accessKeyID, a.scope, _ = strings.Cut(v, "/")
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKeyID == "" || a.scope == "" || a.signedHeaders == "" || a.signature == "" {
		return authorization{}, fmt.Errorf("incomplete Authorization %q", h)
	}
	return a, nil
}

// verifySigV4 recomputes the signature of a received request with the
// SDK's signer, signing only the headers the client signed.
func verifySigV4(r *http.Request, body []byte, creds aws.Credentials, region string) error {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %w", err)
	}
	if want := date.Format("20060102") + "/" + region + "/bedrock/aws4_request"; a.scope != want {
		return fmt.Errorf("credential scope %q, want %q", a.scope, want)
	}
	if a.accessKeyID != creds.AccessKeyID {
		return fmt.Errorf("access key %q, want %q", a.accessKeyID, creds.AccessKeyID)
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.ContentLength = r.ContentLength
	for _, h := range strings.Split(a.signedHeaders, ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		vs := r.Header.Values(h)
		if len(vs) == 0 {
			return fmt.Errorf("signed header %s is missing", h)
		}
		req.Header[http.CanonicalHeaderKey(h)] = vs
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, date); err != nil {
		return err
	}
	if got, want := r.Header.Get("Authorization"), req.Header.Get("Authorization"); got != want {
		return fmt.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	return nil
}

func TestSigV4VerifiedByServer(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: exampleAccessKeyID, SecretAccessKey: exampleSecretAccessKey, SessionToken: exampleSessionToken}
	const region = "us-west-2"
	type seen struct {
		err   error
		token string
		date  string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = verifySigV4(r, body, creds, region)
		}
		got <- seen{err, r.Header.Get("X-Amz-Security-Token"), r.Header.Get("X-Amz-Date")}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	s := &SigV4{
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		Region:      region,
		Now:         func() time.Time { return signTime },
	}
	for _, tt := range []struct {
		name, method, path string
		body               []byte
	}{
		{"chat", http.MethodPost, "/openai/v1/chat/completions", []byte(`{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}]}`)},
		{"escaped model id", http.MethodPost, "/model/us.amazon.nova-micro-v1%3A0/converse", []byte(`{"messages":[]}`)},
		{"no body", http.MethodGet, "/v1/models?limit=2&a=b%20c", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			if err := s.Sign(t.Context(), req, tt.body); err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sn := <-got
			if resp.StatusCode != http.StatusOK || sn.err != nil {
				t.Fatalf("server: %d %s (%v)", resp.StatusCode, msg, sn.err)
			}
			if sn.token != exampleSessionToken {
				t.Errorf("X-Amz-Security-Token = %q, want the session token", sn.token)
			}
			if sn.date != "20250814T011323Z" {
				t.Errorf("X-Amz-Date = %q, want the pinned clock", sn.date)
			}
		})
	}
}

// TestSigV4KnownSignature checks Sign against SigV4 computed here from the
// specification, independently of the SDK, with a pinned clock.
func TestSigV4KnownSignature(t *testing.T) {
	body := []byte(`{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}]}`)
	req, err := http.NewRequest(http.MethodPost, "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llama-stack-go") // not signed
	s := &SigV4{
		Credentials: credentials.NewStaticCredentialsProvider(exampleAccessKeyID, exampleSecretAccessKey, exampleSessionToken),
		Region:      "us-west-2",
		Now:         func() time.Time { return signTime },
	}
	if err := s.Sign(t.Context(), req, body); err != nil {
		t.Fatal(err)
	}
	a, err := parseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "20250814/us-west-2/bedrock/aws4_request"; a.scope != want {
		t.Errorf("credential scope %q, want %q", a.scope, want)
	}
	if want := "content-length;content-type;host;x-amz-date;x-amz-security-token"; a.signedHeaders != want {
		t.Errorf("signed headers %q, want %q", a.signedHeaders, want)
	}
	if req.Header.Get("X-Amz-Content-Sha256") != "" {
		t.Error("X-Amz-Content-Sha256 set; the AWS SDKs do not send it to Bedrock")
	}

	sum := sha256.Sum256(body)
	headers := map[string]string{
		"content-length":       fmt.Sprint(len(body)),
		"content-type":         "application/json",
		"host":                 "bedrock-runtime.us-west-2.amazonaws.com",
		"x-amz-date":           "20250814T011323Z",
		"x-amz-security-token": exampleSessionToken,
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonical strings.Builder
	canonical.WriteString("POST\n/openai/v1/chat/completions\n\n")
	for _, k := range names {
		canonical.WriteString(k + ":" + headers[k] + "\n")
	}
	canonical.WriteString("\n" + strings.Join(names, ";") + "\n" + hex.EncodeToString(sum[:]))
	creq := sha256.Sum256([]byte(canonical.String()))
	scope := "20250814/us-west-2/bedrock/aws4_request"
	stringToSign := "AWS4-HMAC-SHA256\n20250814T011323Z\n" + scope + "\n" + hex.EncodeToString(creq[:])
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+exampleSecretAccessKey), "20250814"), "us-west-2"), "bedrock"), "aws4_request")
	if want := hex.EncodeToString(mac(key, stringToSign)); a.signature != want {
		t.Errorf("signature %s, want %s", a.signature, want)
	}
}

func TestSigV4Resign(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	withToken := &SigV4{Credentials: credentials.NewStaticCredentialsProvider("AKIDA", "secretA", "tokenA"), Region: "us-west-2"}
	if err := withToken.Sign(t.Context(), req, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("{}"))
	if got := req.Header.Get("X-Amz-Content-Sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("X-Amz-Content-Sha256 = %q, want the body's hash", got)
	}
	// Signing again with long-term keys drops the old session token.
	plain := &SigV4{Credentials: credentials.NewStaticCredentialsProvider("AKIDB", "secretB", ""), Region: "us-west-2"}
	if err := plain.Sign(t.Context(), req, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Values("X-Amz-Security-Token"); len(got) != 0 {
		t.Errorf("X-Amz-Security-Token = %q after re-signing without a token", got)
	}
	if got := req.Header.Values("Authorization"); len(got) != 1 || !strings.Contains(got[0], "Credential=AKIDB/") || strings.Contains(got[0], "x-amz-security-token") {
		t.Errorf("Authorization = %q", got)
	}
}

func TestSigV4Errors(t *testing.T) {
	const secret = "very-secret-access-key"
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, errCredsBroken })
	for _, tt := range []struct {
		name string
		s    *SigV4
		want string
	}{
		{"no credentials provider", &SigV4{Region: "us-west-2"}, "no AWS credentials provider"},
		{"no region", &SigV4{Credentials: credentials.NewStaticCredentialsProvider("AKID", secret, "")}, "no AWS region"},
		{"credentials fail", &SigV4{Credentials: failing, Region: "us-west-2"}, errCredsBroken.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "https://bedrock-runtime.us-west-2.amazonaws.com/x", nil)
			err := tt.s.Sign(t.Context(), req, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "sign Bedrock request: ") {
				t.Fatalf("Sign error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("Authorization set despite the error")
			}
			if tt.name == "credentials fail" && !errors.Is(err, errCredsBroken) {
				t.Errorf("error does not wrap the cause: %v", err)
			}
		})
	}
}
