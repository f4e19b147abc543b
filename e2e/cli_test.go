package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantOut  string // substring of stdout
		wantErr  []string
	}{
		{"help", []string{"--help"}, nil, 0, "llama stack run", nil},
		{"version", []string{"version"}, nil, 0, "llama ", nil},
		{"list-providers", []string{"stack", "list-providers"}, nil, 0, "remote::bedrock", nil},
		{"no args", nil, nil, 2, "", []string{"Usage:"}},
		{"unknown command", []string{"serve"}, nil, 2, "", []string{`unknown command "serve"`, "Usage:"}},
		{"unknown subcommand", []string{"stack", "build"}, nil, 2, "", []string{`unknown stack subcommand "build"`}},
		{"unknown flag", []string{"stack", "run", "--bogus"}, nil, 2, "", []string{"flag provided but not defined: -bogus", "Usage:"}},
		{"bad port", []string{"stack", "run", "--port", "x"}, nil, 2, "", []string{"invalid value"}},
		{"missing config file", []string{"stack", "run", "/nonexistent/config.yaml"}, nil, 1, "", []string{"/nonexistent/config.yaml"}},
		{"every config problem listed", []string{"stack", "run", "BADCONFIG"}, nil, 1, "", []string{
			"providers.inference[0].provider_type", "remote::nope",
			"providers.inference[1].config", "region_nam",
			"registered_resources.models[0].provider_id", "ghost",
			"server.port",
		}},
		{"unset env var", []string{"stack", "run", "ENVCONFIG"}, nil, 1, "", []string{"MY_UNSET_KEY"}},
	}
	bad := writeFile(t, "bad.yaml", `version: 2
providers:
  inference:
    - provider_id: one
      provider_type: remote::nope
    - provider_id: two
      provider_type: remote::bedrock
      config:
        region_nam: us-west-2
registered_resources:
  models:
    - model_id: m
      provider_id: ghost
server:
  port: not-a-port
`)
	envCfg := writeFile(t, "env.yaml", `version: 2
providers:
  inference:
    - provider_id: bedrock
      provider_type: remote::bedrock
      config:
        api_key: ${env.MY_UNSET_KEY}
`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				switch a {
				case "BADCONFIG":
					args[i] = bad
				case "ENVCONFIG":
					args[i] = envCfg
				}
			}
			code, out, errOut := runLlama(t, tt.env, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestStarterConfig: with no config the built-in starter runs; Bedrock is
// on exactly when AWS_BEARER_TOKEN_BEDROCK is set.
func TestStarterConfig(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	for _, withKey := range []bool{true, false} {
		env := []string{"AWS_ENDPOINT_URL=" + double.URL()}
		if withKey {
			env = append(env, "AWS_BEARER_TOKEN_BEDROCK="+bedrocktest.DefaultKey)
		}
		srv := startServer(t, env)
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		getJSON(t, srv.URL+"/v1/models", &list)
		if withKey != (len(list.Data) > 0) {
			t.Fatalf("key set %v: models %+v", withKey, list.Data)
		}
		for _, line := range srv.Logs() {
			if strings.Contains(line, bedrocktest.DefaultKey) {
				t.Errorf("the key appears in the log: %s", line)
			}
		}
		if withKey {
			resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"bedrock/openai.gpt-oss-120b-1:0","messages":[{"role":"user","content":"What is 2 + 2?"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("starter chat: %d", resp.StatusCode)
			}
		}
	}
}

// TestSIGTERMDrainsStreams: SIGTERM during an open stream lets it finish,
// then the server exits 0.
func TestSIGTERMDrainsStreams(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{ChunkDelay: 20 * time.Millisecond})
	cfg := writeFile(t, "config.yaml", notebookConfig)
	srv := startServer(t, []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, cfg)
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"Explain quantum computing"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatal("no first event")
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	last := ""
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = d
			if d != "[DONE]" && strings.Contains(d, `"error"`) {
				var e map[string]any
				_ = json.Unmarshal([]byte(d), &e)
				if e["error"] != nil {
					t.Fatalf("stream cut by shutdown: %s", d)
				}
			}
		}
	}
	if last != "[DONE]" {
		t.Fatalf("stream did not finish during the drain: last event %q", last)
	}
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("exit: %v", srv.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit after the drain")
	}
}
