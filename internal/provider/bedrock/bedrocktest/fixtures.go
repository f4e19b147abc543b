package bedrocktest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// FixturesEnv names the environment variable that, when set, gives the
// directory of the Bedrock fixtures to [Fixtures].
const FixturesEnv = "LLAMA_BEDROCK_FIXTURES"

// Names of the fixture files the double serves from.
const (
	fxBearerInvalid = "error-bearer-invalid-key-403.http"
	fxBearerExpired = "error-bearer-expired-403.http"
	fxSigV4Invalid  = "error-sigv4-unrecognized-client-403.http"
	fxThrottling    = "error-throttling-429.http"
	fxImageError    = "runtime-chat-completion-error-400-image-modality.response.json"
)

// Fixtures returns the directory holding the Bedrock fixtures
// (…/shared/fixtures/bedrock). It uses $LLAMA_BEDROCK_FIXTURES when set;
// otherwise it walks up from the working directory, and then from the
// directory of this source file, looking in each directory d for
// d/shared/fixtures/bedrock and d/../shared/fixtures/bedrock (the repository
// is cloned with ../shared beside it).
func Fixtures() (string, error) {
	if dir := os.Getenv(FixturesEnv); dir != "" {
		if !isDir(dir) {
			return "", fmt.Errorf("bedrocktest: $%s=%q is not a directory", FixturesEnv, dir)
		}
		return dir, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for d := start; ; {
			for _, c := range []string{
				filepath.Join(d, "shared", "fixtures", "bedrock"),
				filepath.Join(d, "..", "shared", "fixtures", "bedrock"),
			} {
				if isDir(c) {
					return filepath.Clean(c), nil
				}
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", fmt.Errorf("bedrocktest: shared/fixtures/bedrock not found above %q; set $%s", starts, FixturesEnv)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// LoadHTTP parses a raw HTTP response fixture (*.http: status line, header
// lines, a blank line, then the body; CRLF or LF line ends). The header keys
// are canonicalised as by [http.Header.Add]; the body is returned byte for
// byte.
func LoadHTTP(path string) (status int, header http.Header, body []byte, err error) {
	r, err := loadRawHTTP(path)
	if err != nil {
		return 0, nil, nil, err
	}
	header = make(http.Header, len(r.headers))
	for _, h := range r.headers {
		header.Add(h.name, h.value)
	}
	return r.status, header, r.body, nil
}

// rawHTTP is a parsed .http fixture that keeps the header names as spelled.
type rawHTTP struct {
	status  int
	headers []headerLine
	body    []byte
}

type headerLine struct{ name, value string }

func loadRawHTTP(path string) (*rawHTTP, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := parseRawHTTP(data)
	if err != nil {
		return nil, fmt.Errorf("bedrocktest: %s: %w", path, err)
	}
	return r, nil
}

func parseRawHTTP(data []byte) (*rawHTTP, error) {
	head, body, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok {
		head, body, ok = bytes.Cut(data, []byte("\n\n"))
		if !ok {
			return nil, errors.New("no blank line between headers and body")
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	proto, rest, _ := strings.Cut(lines[0], " ")
	if !strings.HasPrefix(proto, "HTTP/") {
		return nil, fmt.Errorf("bad status line %q", lines[0])
	}
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if err != nil || status < 100 || status > 999 {
		return nil, fmt.Errorf("bad status line %q", lines[0])
	}
	r := &rawHTTP{status: status, body: body}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || textproto.TrimString(name) != name || name == "" {
			return nil, fmt.Errorf("bad header line %q", l)
		}
		r.headers = append(r.headers, headerLine{name, textproto.TrimString(value)})
	}
	return r, nil
}

// write sends r with its header names spelled as in the fixture, then the
// extra headers (canonical names), then the body.
func (r *rawHTTP) write(w http.ResponseWriter, extra ...headerLine) {
	h := w.Header()
	for _, l := range r.headers {
		h[l.name] = append(h[l.name], l.value)
	}
	for _, l := range extra {
		h.Set(l.name, l.value)
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// fixtureSet holds the fixture files the double serves.
type fixtureSet struct {
	bearerInvalid, bearerExpired, sigv4Invalid, throttling *rawHTTP
	imageError                                             []byte
}

func loadFixtureSet(dir string) (*fixtureSet, error) {
	var fs fixtureSet
	var err error
	for _, f := range []struct {
		name string
		dst  **rawHTTP
	}{
		{fxBearerInvalid, &fs.bearerInvalid},
		{fxBearerExpired, &fs.bearerExpired},
		{fxSigV4Invalid, &fs.sigv4Invalid},
		{fxThrottling, &fs.throttling},
	} {
		if *f.dst, err = loadRawHTTP(filepath.Join(dir, f.name)); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, fxImageError))
	if err != nil {
		return nil, err
	}
	fs.imageError = b
	return &fs, nil
}
