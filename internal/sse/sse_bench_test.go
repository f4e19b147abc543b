package sse

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// recordedStream returns the recorded gpt-oss-20b stream as the upstream
// sends it: each chunk as a "data:" event, then [DONE]; and its events.
func recordedStream(b *testing.B) (stream []byte, events [][]byte) {
	b.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		b.Skip(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"))
	if err != nil {
		b.Skip(err)
	}
	var buf bytes.Buffer
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		ev := []byte("data: " + string(line) + "\n\n")
		events = append(events, ev)
		buf.Write(ev)
	}
	done := []byte("data: [DONE]\n\n")
	events = append(events, done)
	buf.Write(done)
	return buf.Bytes(), events
}

// eventReader returns one event per Read, as a network connection
// delivering one flushed event at a time does.
type eventReader struct {
	events [][]byte
	i      int
}

func (r *eventReader) Read(p []byte) (int, error) {
	if r.i == len(r.events) {
		return 0, io.EOF
	}
	n := copy(p, r.events[r.i])
	if n == len(r.events[r.i]) {
		r.i++
	} else {
		r.events[r.i] = r.events[r.i][n:]
	}
	return n, nil
}

// BenchmarkReader parses the recorded 20-chunk stream (21 events, 9 KB)
// from one buffer.
func BenchmarkReader(b *testing.B) {
	stream, events := recordedStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		rd := NewReader(bytes.NewReader(stream))
		n := 0
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(events) {
			b.Fatalf("got %d events, want %d", n, len(events))
		}
	}
	b.ReportMetric(float64(len(events)), "events/op")
}

// BenchmarkReaderEventPerRead parses the recorded stream delivered one
// event per Read, as a relayed stream arrives.
func BenchmarkReaderEventPerRead(b *testing.B) {
	stream, events := recordedStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	evs := make([][]byte, len(events))
	for b.Loop() {
		copy(evs, events)
		rd := NewReader(&eventReader{events: evs})
		n := 0
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(events) {
			b.Fatalf("got %d events, want %d", n, len(events))
		}
	}
	b.ReportMetric(float64(len(events)), "events/op")
}

// discardWriter is a ResponseWriter that flushes to nowhere.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// BenchmarkWriteData writes the recorded stream's chunks as events, one
// write and flush each.
func BenchmarkWriteData(b *testing.B) {
	_, events := recordedStream(b)
	datas := make([][]byte, len(events))
	var size int64
	for i, ev := range events {
		datas[i] = bytes.TrimSuffix(bytes.TrimPrefix(ev, []byte("data: ")), []byte("\n\n"))
		size += int64(len(ev))
	}
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		w := NewWriter(&discardWriter{h: http.Header{}})
		for _, d := range datas {
			if err := w.WriteData(d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(events)), "events/op")
}
