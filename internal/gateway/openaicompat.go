package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
)

// newOpenAICompat builds the shared OpenAI-compatible adapter for one of
// the starter distribution's providers: the type only decides the base
// URL, the auth header and the quirks, which the config already resolved.
// A nil hc gets a client of its own: the provider's TLS settings on a
// fresh transport, wrapped by wrap (nil: used as is).
func newOpenAICompat(id, typ string, oc config.OpenAICompat, hc *http.Client, wrap func(*http.Transport) http.RoundTripper) (*openaicompat.Client, error) {
	if hc == nil {
		tr := openaicompat.NewTransport()
		if oc.TLSVerify != nil && !*oc.TLSVerify || oc.CAFile != "" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if oc.TLSVerify != nil && !*oc.TLSVerify {
				tc.InsecureSkipVerify = true // the operator asked for it with tls_verify: false
			}
			if oc.CAFile != "" {
				pem, err := os.ReadFile(oc.CAFile)
				if err != nil {
					return nil, fmt.Errorf("read CA file: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("CA file %s holds no PEM certificate", oc.CAFile)
				}
				tc.RootCAs = pool
			}
			tr.TLSClientConfig = tc
		}
		var rt http.RoundTripper = tr
		if wrap != nil {
			rt = wrap(tr)
		}
		hc = &http.Client{Transport: rt}
	}
	hint := "check the provider's api_key in the run config"
	if oc.ProviderDataKey != "" {
		hint += " or send one in the " + oc.ProviderDataKey + " field of the X-LlamaStack-Provider-Data header"
	}
	query := url.Values{}
	for k, v := range oc.Query {
		query.Set(k, v)
	}
	header := http.Header{}
	for k, v := range oc.Headers {
		header.Set(k, v)
	}
	authorize := func(r *http.Request, d provider.Data) error {
		key := oc.APIKey
		if caller := d[oc.ProviderDataKey]; oc.ProviderDataKey != "" && caller != "" && (key == "" || !oc.StaticKeyFirst) {
			key = caller
		}
		if key == "" {
			if oc.KeyRequired {
				return &provider.Error{Provider: id, StatusCode: http.StatusUnauthorized, Type: "authentication_error", Code: "missing_api_key",
					Message: fmt.Sprintf("provider %s (%s) has no API key: %s", id, typ, hint)}
			}
			return nil // keyless upstreams (Ollama, a local vLLM)
		}
		if oc.AuthScheme != "" {
			key = oc.AuthScheme + " " + key
		}
		r.Header.Set(oc.AuthHeader, key)
		return nil
	}
	return openaicompat.New(openaicompat.Options{
		ProviderID: id,
		BaseURL:    oc.BaseURL,
		Query:      query,
		HTTPClient: hc,
		Authorize:  authorize,
		TranslateError: func(e *provider.Error) {
			if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
				e.Message = fmt.Sprintf("%s (%s) rejected the request's credentials: %s; %s", id, typ, e.Message, hint)
			}
		},
		Completions:      oc.SupportsCompletions,
		Embeddings:       oc.SupportsEmbeddings,
		ListModels:       oc.ListsModels,
		Header:           header,
		DefaultMaxTokens: oc.MaxTokens,
	}), nil
}
