package bedrocktest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultKey is the bearer key a [Server] accepts when [Options.Keys] is empty.
const DefaultKey = "bedrock-api-key-test"

// Model ids the double knows by default.
const (
	ModelGptOss20B  = "openai.gpt-oss-20b-1:0"
	ModelGptOss120B = "openai.gpt-oss-120b-1:0"
)

// ChatPath is the OpenAI-compatible chat path the double serves (POST); it
// also serves InvokeModel for embedding models (POST /model/{id}/invoke).
const ChatPath = "/openai/v1/chat/completions"

// Options configure a [Server]. The zero value is usable.
type Options struct {
	// Keys are the valid bearer keys; empty means []string{DefaultKey}.
	Keys []string
	// ExpiredKeys are keys answered with error-bearer-expired-403.http.
	ExpiredKeys []string
	// IAMKeyIDs are the AWS access key ids whose short-term keys
	// ("bedrock-api-key-…" minted from them, unexpired, for service
	// bedrock) and SigV4 signatures the double accepts. It checks the
	// structure, the key id, the scope and the expiry, not the signature:
	// it has no secret.
	IAMKeyIDs []string
	// Models are the known model ids; empty means ModelGptOss20B and
	// ModelGptOss120B. Other ids get 404 model_not_found.
	Models []string
	// NoAccess are model ids answered with 403 AccessDeniedException
	// (checked before Models, so they need not be listed there).
	NoAccess []string
	// Responder scripts the answers; nil means DefaultResponder. It may be
	// called concurrently and must not keep the request.
	Responder func(*ChatRequest) Reply
	// ChunkDelay is slept between stream chunks (not before the first).
	ChunkDelay time.Duration
	// FixturesDir is the directory of the Bedrock fixtures; empty means the
	// one Fixtures() finds.
	FixturesDir string
}

// Recorded is one request the server received.
type Recorded struct {
	// Method and Path are the request method and URL path.
	Method, Path string
	// Header is a copy of the request header.
	Header http.Header
	// Body is the request body.
	Body []byte
	// Chat is Body decoded as a ChatRequest, nil when that failed.
	Chat *ChatRequest
}

// Server is a running Bedrock Runtime double. Its methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	fx       *fixtureSet
	srv      *httptest.Server
	done     chan struct{} // closed by Close
	once     sync.Once
	canceled chan struct{}

	mu       sync.Mutex
	requests []Recorded
	throttle int
	fail     int
	failCode int
	drop     int
	dropAt   int
	stall    int
	stallAt  int
	replay   int
	replayFx string
	gate     *Gate
}

// New starts a Server on 127.0.0.1 for a test; tb.Cleanup closes it. It
// fails the test when the fixtures cannot be loaded.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("bedrocktest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server on 127.0.0.1 outside tests (e.g. in a standalone
// process for end-to-end tests); the caller must call Close.
func Start(opts Options) (*Server, error) {
	if len(opts.Keys) == 0 {
		opts.Keys = []string{DefaultKey}
	}
	if len(opts.Models) == 0 {
		opts.Models = []string{ModelGptOss20B, ModelGptOss120B}
	}
	if opts.Responder == nil {
		opts.Responder = DefaultResponder
	}
	if opts.FixturesDir == "" {
		dir, err := Fixtures()
		if err != nil {
			return nil, err
		}
		opts.FixturesDir = dir
	}
	fx, err := loadFixtureSet(opts.FixturesDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     opts,
		fx:       fx,
		done:     make(chan struct{}),
		canceled: make(chan struct{}, 64),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s, nil
}

// URL returns the base URL, e.g. http://127.0.0.1:port, without a trailing
// slash; the chat endpoint is URL()+"/openai/v1/chat/completions".
func (s *Server) URL() string { return s.srv.URL }

// Close ends all streams still open (stalled and gated ones included),
// closes the client connections and stops the server. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Throttle makes the next n chat requests (n < 0: all until Throttle(0))
// get the bytes of error-throttling-429.http plus "Retry-After: 1".
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// FailWith makes the next n chat requests (n < 0: all until FailWith(0, …))
// fail with the given status and an AWS-style body {"message":"…"} and
// x-amzn-ErrorType header: 503 ServiceUnavailableException, 500 and other
// 5xx InternalServerException (also 408 ModelTimeoutException, 424
// ModelErrorException, 429 ThrottlingException, 400 ValidationException,
// 403 AccessDeniedException, 404 ResourceNotFoundException).
func (s *Server) FailWith(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failCode = n, status
}

// DropStreamAfter makes the next n streaming requests (n < 0: all until
// DropStreamAfter(0, …)) abort the connection after `chunks` data events,
// without data: [DONE]. The client sees the body end early (unexpected EOF).
func (s *Server) DropStreamAfter(n, chunks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop, s.dropAt = n, max(chunks, 0)
}

// StallStreamAfter makes the next n streaming requests (n < 0: all until
// StallStreamAfter(0, …)) stop after `chunks` data events and block, with
// the connection open, until the client goes away or the server closes.
func (s *Server) StallStreamAfter(n, chunks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall, s.stallAt = n, max(chunks, 0)
}

// Replay makes the next n streaming requests (n < 0: all until Replay(0, …))
// answer with a recorded *.chunks.jsonl fixture instead of the responder:
// each non-empty line verbatim as "data: <line>\n\n", then data: [DONE].
// A relative chunksFile is taken from the fixtures directory. Stream faults,
// the gate and ChunkDelay still apply; a file that cannot be read gives 500.
func (s *Server) Replay(n int, chunksFile string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replay, s.replayFx = n, chunksFile
}

// Gate installs (on first call) and returns the server's Gate. While it is
// installed, every stream sends its first data event at once and then waits
// for the gate before each later event, data: [DONE] included. The gate is
// shared by all streams; call Open on it to let everything through.
func (s *Server) Gate() *Gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = &Gate{}
	}
	return s.gate
}

// Canceled returns a channel that receives one value (sent without blocking,
// buffer 64) each time a streaming request's context is canceled because the
// client went away before the stream ended. Server-side aborts
// (DropStreamAfter, Close) are not reported. An unhindered stream ends in
// microseconds, so tests of client disconnects should hold the stream open
// with Gate, StallStreamAfter or ChunkDelay.
func (s *Server) Canceled() <-chan struct{} { return s.canceled }

// take consumes one use of a fault counter.
func take(c *int) bool {
	switch {
	case *c == 0:
		return false
	case *c > 0:
		*c--
	}
	return true
}

func (s *Server) record(r Recorded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var parsed ChatRequest
	if json.Unmarshal(body, &parsed) == nil {
		rec.Chat = &parsed
	}
	s.record(rec)

	if r.Method == http.MethodGet && r.URL.Path == "/foundation-models" {
		s.serveFoundationModels(w, r)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/inference-profiles" {
		s.serveInferenceProfiles(w, r)
		return
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/model/") && strings.HasSuffix(r.URL.Path, "/invoke") {
		s.serveInvoke(w, r, body)
		return
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/model/") && (strings.HasSuffix(r.URL.Path, "/converse") || strings.HasSuffix(r.URL.Path, "/converse-stream")) {
		s.serveConverse(w, r, body)
		return
	}
	if r.URL.Path != ChatPath || r.Method != http.MethodPost {
		writeAWSError(w, http.StatusNotFound, "UnknownOperationException:http://internal.amazon.com/coral/com.amazon.coral.service/", "message", "Unknown operation")
		return
	}
	if fx := s.authFailure(r.Header.Get("Authorization")); fx != nil {
		fx.write(w)
		return
	}
	var req ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeValidation(w, "Failed to deserialize the JSON body into the target type: "+err.Error())
		return
	}
	if slices.Contains(s.opts.NoAccess, req.Model) {
		writeAWSError(w, http.StatusForbidden, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/#AccessDeniedException", "Message", "You don't have access to the model with the specified model ID.")
		return
	}
	if !slices.Contains(s.opts.Models, req.Model) {
		writeOpenAIError(w, http.StatusNotFound, "model_not_found", "The model `"+req.Model+"` does not exist.", nil)
		return
	}
	for _, k := range topLevelKeys(body) {
		if !acceptedFields[k] {
			writeOpenAIError(w, http.StatusBadRequest, "unknown_parameter", "Unknown parameter: '"+k+"'.", &k)
			return
		}
	}
	if msg := validate(&req); msg != "" {
		writeValidation(w, msg)
		return
	}
	for _, m := range req.Messages {
		if m.Role == "user" && hasImage(m.Content) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Requestid", newUUID())
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(s.fx.imageError)
			return
		}
	}

	plan, faulted := s.faults(w, req.Stream, true)
	if faulted {
		return
	}

	if !req.Stream {
		s.complete(w, &req)
		return
	}
	var events [][]byte
	if plan.replay != "" {
		var err error
		if events, err = s.replayEvents(plan.replay); err != nil {
			writeAWSError(w, http.StatusInternalServerError, "InternalServerException:http://internal.amazon.com/coral/com.amazon.bedrock/", "message", "bedrocktest: replay: "+err.Error())
			return
		}
	} else {
		events = s.chunks(&req)
	}
	events = append(events, []byte("[DONE]"))
	s.stream(w, r, events, plan)
}

// authFailure returns the fixture answering a bad Authorization header, or
// nil when the key is valid.
func (s *Server) authFailure(auth string) *rawHTTP {
	scheme, key, _ := strings.Cut(strings.TrimSpace(auth), " ")
	key = strings.TrimSpace(key)
	switch {
	case strings.EqualFold(scheme, "Bearer") && slices.Contains(s.opts.Keys, key):
		return nil
	case strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(key, "bedrock-api-key-") && len(s.opts.IAMKeyIDs) > 0:
		return s.mintedKeyFailure(key)
	case scheme == "AWS4-HMAC-SHA256" && slices.ContainsFunc(s.opts.IAMKeyIDs, func(id string) bool { return strings.HasPrefix(key, "Credential="+id+"/") }):
		return nil
	case strings.EqualFold(scheme, "Bearer") && slices.Contains(s.opts.ExpiredKeys, key):
		return s.fx.bearerExpired
	case scheme == "AWS4-HMAC-SHA256":
		return s.fx.sigv4Invalid
	}
	return s.fx.bearerInvalid
}

// validate returns a validation message for a bad request, or "".
func validate(req *ChatRequest) string {
	switch {
	case len(req.Messages) == 0:
		return "messages: must contain at least one message"
	case req.N != nil && (*req.N < 1 || *req.N > 128):
		return "n: must be between 1 and 128"
	case req.MaxTokens != nil && *req.MaxTokens < 1:
		return "max_tokens: must be at least 1"
	case req.MaxCompletionTokens != nil && *req.MaxCompletionTokens < 1:
		return "max_completion_tokens: must be at least 1"
	}
	return ""
}

func (s *Server) replayEvents(name string) ([][]byte, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(s.opts.FixturesDir, name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var events [][]byte
	for line := range strings.SplitSeq(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if line != "" {
			events = append(events, []byte(line))
		}
	}
	return events, nil
}

// faults consumes the armed faults for one request. A throttle or failure
// is answered here (faulted is true); otherwise, for a stream, it returns
// the drop, stall, gate and (with replay) recorded-transcript plan.
func (s *Server) faults(w http.ResponseWriter, stream, replay bool) (plan streamPlan, faulted bool) {
	plan = streamPlan{dropAt: -1, stallAt: -1}
	s.mu.Lock()
	throttle := take(&s.throttle)
	fail := !throttle && take(&s.fail)
	failCode := s.failCode
	if stream && !throttle && !fail {
		plan.gate = s.gate
		if replay && take(&s.replay) {
			plan.replay = s.replayFx
		}
		if take(&s.drop) {
			plan.dropAt = s.dropAt
		}
		if take(&s.stall) {
			plan.stallAt = s.stallAt
		}
	}
	s.mu.Unlock()
	switch {
	case throttle:
		s.fx.throttling.write(w, headerLine{"Retry-After", "1"})
		return plan, true
	case fail:
		writeFailure(w, failCode)
		return plan, true
	}
	return plan, false
}

// streamPlan is what faults apply to one stream.
type streamPlan struct {
	replay          string
	dropAt, stallAt int // event index, -1 for none
	gate            *Gate
}

var errClosed = errors.New("bedrocktest: server closed")

// stream writes events as SSE, applying delay, gate and faults.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, events [][]byte, plan streamPlan) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.noteCanceled(ctx)
		return
	}
	last := len(events) - 1 // data: [DONE]
	if plan.dropAt > last {
		plan.dropAt = last
	}
	if plan.stallAt > last {
		plan.stallAt = last
	}
	framed := make([][]byte, len(events))
	for i, ev := range events {
		buf := make([]byte, 0, len(ev)+8)
		buf = append(buf, "data: "...)
		buf = append(buf, ev...)
		framed[i] = append(buf, "\n\n"...)
	}
	s.play(ctx, w, rc, framed, plan)
}

// play writes pieces (SSE events or event-stream frames), each flushed,
// applying ChunkDelay, the gate and the drop/stall faults (counted in
// pieces).
func (s *Server) play(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, pieces [][]byte, plan streamPlan) {
	for i, piece := range pieces {
		if i == plan.dropAt {
			if conn, _, err := rc.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
			panic(http.ErrAbortHandler)
		}
		if i == plan.stallAt {
			select {
			case <-ctx.Done():
				s.noteCanceled(ctx)
			case <-s.done:
			}
			return
		}
		if i > 0 {
			err := s.sleep(ctx, s.opts.ChunkDelay)
			if err == nil && plan.gate != nil {
				err = plan.gate.wait(ctx, s.done)
			}
			if err != nil {
				s.noteCanceled(ctx)
				return
			}
		}
		if _, err := w.Write(piece); err != nil {
			s.noteCanceled(ctx)
			return
		}
		if err := rc.Flush(); err != nil {
			s.noteCanceled(ctx)
			return
		}
	}
}

// noteCanceled reports a stream whose client went away on Canceled().
func (s *Server) noteCanceled(ctx context.Context) {
	select {
	case <-s.done:
		return
	default:
	}
	if ctx.Err() == nil {
		// A write failed before the server noticed the disconnect; wait a
		// moment for the context to follow.
		select {
		case <-ctx.Done():
		case <-s.done:
			return
		case <-time.After(time.Second):
			return
		}
	}
	select {
	case s.canceled <- struct{}{}:
	default:
	}
}

func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed
	}
}

// Gate holds stream events back until released; see [Server.Gate]. Release
// and Open never block, and a waiting stream also gives up when its client
// goes away or the server closes, so a gate cannot deadlock a test. The
// zero value is a closed gate.
type Gate struct {
	mu      sync.Mutex
	permits int
	open    bool
	wake    chan struct{}
}

// Release lets one more held-back event out (of any gated stream). Releases
// made before a stream waits are kept and used up first.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.permits++
	g.notifyLocked()
}

// Open lets every event through from now on, for all streams.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	g.notifyLocked()
}

func (g *Gate) notifyLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// wait takes one permit, waiting until one is released, the gate opens, ctx
// ends or done closes.
func (g *Gate) wait(ctx context.Context, done <-chan struct{}) error {
	for {
		g.mu.Lock()
		if g.open {
			g.mu.Unlock()
			return nil
		}
		if g.permits > 0 {
			g.permits--
			g.mu.Unlock()
			return nil
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return errClosed
		}
	}
}
