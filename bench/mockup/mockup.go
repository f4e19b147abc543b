// Package mockup is a lean mock of an OpenAI-compatible chat completions
// upstream (Bedrock Runtime's /openai/v1 surface) for load tests. It serves
// the recorded gpt-oss-20b completion and stream from pre-rendered bytes:
// a non-streamed request costs one body read, a stream-flag scan and one
// write; a streamed one writes and flushes each chunk, with a configurable
// chunk count and delays.
//
// It accepts any model and any path that ends in /chat/completions, so the
// same request works against the mock directly (/v1/chat/completions) and
// through a gateway that calls /openai/v1/chat/completions.
package mockup

import (
	"bytes"
	_ "embed" // the recorded fixtures
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	//go:embed fixtures/runtime-chat-completion-gpt-oss-20b.response.json
	completionJSON []byte
	//go:embed fixtures/runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl
	chunksJSONL []byte
	//go:embed fixtures/runtime-chat-completion-gpt-oss-20b.request.json
	requestJSON []byte
	//go:embed fixtures/runtime-chat-completion-gpt-oss-20b.stream.request.json
	streamRequestJSON []byte
)

// ClientModel is the model id clients send: the notebook's registered
// model, which the gateway rewrites to UpstreamModel.
const ClientModel = "bedrock/openai.gpt-oss-20b-1:0"

// UpstreamModel is the provider model id the gateway sends upstream.
const UpstreamModel = "openai.gpt-oss-20b-1:0"

// RecordedChunks is the number of chunks in the recorded stream (content
// chunks, the finish chunk and the usage chunk; [DONE] not counted).
const RecordedChunks = 20

// MinChunks is the smallest chunk count a stream can have: the role chunk,
// the finish chunk and the usage chunk.
const MinChunks = 3

// Options shape the mock's answers.
type Options struct {
	// Chunks is the number of data events of a streamed answer before
	// [DONE]; 0 means RecordedChunks. Counts other than the recorded one
	// repeat or drop the recorded content chunks, keeping the first
	// (role) chunk and the last two (finish, usage).
	Chunks int
	// ChunkDelay is the pause between two chunks of a stream.
	ChunkDelay time.Duration
	// FirstChunkDelay is the pause before the first chunk (and the
	// response headers) of a stream.
	FirstChunkDelay time.Duration
	// Latency is the pause before a non-streamed answer.
	Latency time.Duration
	// UniqueIDs gives every answer an id of its own (the recorded id with
	// its last 12 characters replaced by a counter in hex; every chunk of
	// a stream shares its stream's id), as a real upstream does. A gateway
	// that stores completions then inserts one record per answer instead
	// of overwriting one. Off, every answer is the recorded bytes.
	UniqueIDs bool
}

// Server is the mock upstream, an http.Handler.
type Server struct {
	o          Options
	completion []byte
	events     [][]byte // "data: {…}\n\n" per chunk, then "data: [DONE]\n\n"
	clen       []string
	ctJSON     []string
	ctSSE      []string
	bufs       sync.Pool
	// The offsets of the idDigits characters to overwrite with a counter
	// in the completion and in each event; -1 where the id is too short.
	completionID int
	eventIDs     []int
	seq          atomic.Uint64
}

// idDigits is how many characters at the end of a recorded id UniqueIDs
// replaces.
const idDigits = 12

var _ http.Handler = (*Server)(nil)

// New returns a mock upstream answering as o says.
func New(o Options) (*Server, error) {
	if o.Chunks == 0 {
		o.Chunks = RecordedChunks
	}
	if o.Chunks < MinChunks {
		return nil, fmt.Errorf("mockup: %d chunks: a stream needs at least %d", o.Chunks, MinChunks)
	}
	if o.ChunkDelay < 0 || o.FirstChunkDelay < 0 || o.Latency < 0 {
		return nil, errors.New("mockup: negative delay")
	}
	events := make([][]byte, 0, o.Chunks+1)
	for _, c := range StreamChunks(o.Chunks) {
		events = append(events, []byte("data: "+string(c)+"\n\n"))
	}
	events = append(events, []byte("data: [DONE]\n\n"))
	comp := bytes.TrimSpace(completionJSON)
	s := &Server{
		o:          o,
		completion: comp,
		events:     events,
		clen:       []string{strconv.Itoa(len(comp))},
		ctJSON:     []string{"application/json"},
		ctSSE:      []string{"text/event-stream"},
	}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	if o.UniqueIDs {
		s.completionID = idOffset(comp)
		for _, ev := range events {
			s.eventIDs = append(s.eventIDs, idOffset(ev))
		}
		// Different runs (and the mocks of one run) start far apart.
		s.seq.Store(uint64(time.Now().UnixNano()) << 8)
	}
	return s, nil
}

// idOffset returns where the last idDigits characters of the first "id"
// member's string value start, or -1 when there is none that long.
func idOffset(b []byte) int {
	key := []byte(`"id":"`)
	i := bytes.Index(b, key)
	if i < 0 {
		return -1
	}
	start := i + len(key)
	end := bytes.IndexByte(b[start:], '"')
	if end < idDigits {
		return -1
	}
	return start + end - idDigits
}

// withID copies src into buf with the idDigits characters at off replaced
// by n in hex (zero-padded); off < 0 copies src unchanged.
func withID(buf, src []byte, off int, n uint64) []byte {
	buf = append(buf[:0], src...)
	if off < 0 {
		return buf
	}
	const hexDigits = "0123456789abcdef"
	for i := off + idDigits - 1; i >= off; i-- {
		buf[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return buf
}

// StreamChunks returns the JSON of the n chunks a stream of n chunks
// carries (n >= MinChunks): the recorded first chunk, recorded content
// chunks repeated or cut to fit, and the recorded finish and usage
// chunks.
func StreamChunks(n int) [][]byte {
	lines := recordedChunks()
	if n < MinChunks {
		n = MinChunks
	}
	first, finish, usage := lines[0], lines[len(lines)-2], lines[len(lines)-1]
	mid := lines[1 : len(lines)-2]
	out := make([][]byte, 0, n)
	out = append(out, first)
	for i := 0; i < n-3; i++ {
		out = append(out, mid[i%len(mid)])
	}
	return append(out, finish, usage)
}

// recordedChunks returns the recorded stream's chunk JSON, one per line.
func recordedChunks() [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(chunksJSONL, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// Completion returns the body of a non-streamed answer.
func (s *Server) Completion() []byte { return s.completion }

// StreamBody returns the complete body of a streamed answer.
func (s *Server) StreamBody() []byte { return bytes.Join(s.events, nil) }

// Chunks is the number of data events before [DONE] in a streamed answer.
func (s *Server) Chunks() int { return len(s.events) - 1 }

// ServeHTTP answers POST …/chat/completions; anything else is a 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	bp := s.bufs.Get().(*[]byte)
	body, err := readAll(r.Body, (*bp)[:0])
	stream := IsStream(body)
	*bp = body[:0]
	s.bufs.Put(bp)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !stream {
		if s.o.Latency > 0 && !sleep(r, s.o.Latency) {
			return
		}
		h := w.Header()
		h["Content-Type"] = s.ctJSON
		h["Content-Length"] = s.clen
		if !s.o.UniqueIDs {
			_, _ = w.Write(s.completion)
			return
		}
		bp := s.bufs.Get().(*[]byte)
		*bp = withID(*bp, s.completion, s.completionID, s.seq.Add(1))
		_, _ = w.Write(*bp)
		s.bufs.Put(bp)
		return
	}
	s.stream(w, r)
}

// stream writes the events, flushing each one, with the configured pauses.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if s.o.FirstChunkDelay > 0 && !sleep(r, s.o.FirstChunkDelay) {
		return
	}
	h := w.Header()
	h["Content-Type"] = s.ctSSE
	h["Cache-Control"] = []string{"no-cache"}
	fl, _ := w.(http.Flusher)
	var (
		id  uint64
		buf *[]byte
	)
	if s.o.UniqueIDs {
		id = s.seq.Add(1)
		buf = s.bufs.Get().(*[]byte)
		defer s.bufs.Put(buf)
	}
	var t *time.Timer
	for i, ev := range s.events {
		if i > 0 && s.o.ChunkDelay > 0 {
			if t == nil {
				t = time.NewTimer(s.o.ChunkDelay)
				defer t.Stop()
			} else {
				t.Reset(s.o.ChunkDelay)
			}
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		if buf != nil {
			*buf = withID(*buf, ev, s.eventIDs[i], id)
			ev = *buf
		}
		if _, err := w.Write(ev); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// sleep pauses for d and reports whether the client is still there.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// readAll reads r to the end, appending to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// IsStream reports whether a JSON request body sets "stream" to true. It
// looks for the top-level-looking key rather than parsing the body, which
// is good enough for a mock fed by a benchmark's own requests.
func IsStream(body []byte) bool {
	key := []byte(`"stream"`)
	for {
		i := bytes.Index(body, key)
		if i < 0 {
			return false
		}
		rest := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("true"))
		}
		body = body[i+len(key):]
	}
}

// ChatRequest returns the recorded non-streamed request body with model
// set to the given id.
func ChatRequest(model string) []byte { return withModel(requestJSON, model) }

// StreamRequest returns the recorded streamed request body (stream true,
// stream_options.include_usage true) with model set to the given id.
func StreamRequest(model string) []byte { return withModel(streamRequestJSON, model) }

// withModel replaces the recorded model id in a request body.
func withModel(body []byte, model string) []byte {
	b := bytes.TrimSpace(body)
	enc, _ := json.Marshal(model)
	return bytes.Replace(b, []byte(`"model":"`+UpstreamModel+`"`), append([]byte(`"model":`), enc...), 1)
}
