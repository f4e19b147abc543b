package e2e

import (
	"encoding/base64"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// TestIAMCredentials runs the binary with IAM credentials and no bearer
// key, both in the config (the Python server's fields) and in the
// environment: the server mints short-term Bedrock API keys itself.
func TestIAMCredentials(t *testing.T) {
	const keyID = "AKIAIOSFODNN7EXAMPLE"
	tests := []struct {
		name   string
		config string
		env    []string
		sigv4  bool
	}{
		{"config fields", "aws_access_key_id: " + keyID + "\n        aws_secret_access_key: ${env.TEST_SECRET}\n        region_name: us-west-2", []string{"TEST_SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, false},
		{"environment", "region_name: us-west-2", []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, false},
		{"sigv4", "auth_mode: sigv4\n        region_name: us-west-2", []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			double := bedrocktest.New(t, bedrocktest.Options{Keys: []string{}, IAMKeyIDs: []string{keyID}})
			cfg := writeFile(t, "config.yaml", strings.Replace(strings.Replace(notebookConfig,
				"api_key: ${env.AWS_BEARER_TOKEN_BEDROCK:=}\n        region_name: ${env.AWS_DEFAULT_REGION:=us-west-2}", tt.config, 1), "\n\n", "\n", 1))
			srv := startServer(t, append([]string{"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, tt.env...), cfg)
			c := newClient(srv.URL)
			for range 2 {
				resp, err := c.Chat.Completions.New(t.Context(), oai.ChatCompletionNewParams{
					Model: modelID, Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("What is 2 + 2?")},
				})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(resp.Choices[0].Message.Content, "4") {
					t.Errorf("content %q", resp.Choices[0].Message.Content)
				}
			}
			reqs := double.Requests()
			auth := reqs[0].Header.Get("Authorization")
			if tt.sigv4 {
				if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+keyID+"/") {
					t.Errorf("Authorization = %q", auth)
				}
			} else {
				tok, ok := strings.CutPrefix(auth, "Bearer bedrock-api-key-")
				raw, err := base64.StdEncoding.DecodeString(tok)
				if !ok || err != nil || !strings.Contains(string(raw), "X-Amz-Credential="+keyID) {
					t.Errorf("Authorization = %q", auth)
				}
				if reqs[1].Header.Get("Authorization") != auth {
					t.Errorf("the minted key was not reused for the second request")
				}
			}
			for _, line := range srv.Logs() {
				if strings.Contains(line, "wJalrXUtnFEMI") || strings.Contains(line, "bedrock-api-key-") {
					t.Errorf("secret in the log: %s", line)
				}
			}
		})
	}
}
