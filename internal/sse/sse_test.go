package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r io.Reader) ([]Event, error) {
	t.Helper()
	rd := NewReader(r)
	var out []Event
	for {
		ev, err := rd.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, Event{Type: ev.Type, Data: bytes.Clone(ev.Data)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // "type|data"
		wantErr error
	}{
		{"openai", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []string{`|{"a":1}`, `|[DONE]`}, nil},
		{"no space", "data:x\n\n", []string{"|x"}, nil},
		{"crlf", "data: x\r\n\r\ndata: y\r\n\r\n", []string{"|x", "|y"}, nil},
		{"lone cr", "data: x\r\rdata: y\r\r", []string{"|x", "|y"}, nil},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"|a\nb"}, nil},
		{"comments and retry", ": keep-alive\nretry: 10\n\ndata: x\n\n", []string{"|x"}, nil},
		{"event type", "event: response.created\ndata: {}\n\n", []string{"response.created|{}"}, nil},
		{"data before event", "data: {}\nevent: e\n\n", []string{"e|{}"}, nil},
		{"event without data skipped", "event: ping\n\ndata: x\n\n", []string{"|x"}, nil},
		{"truncated mid-event", "data: {\"a\":1}\n", nil, io.ErrUnexpectedEOF},
		{"truncated mid-line", "data: {\"a\"", nil, io.ErrUnexpectedEOF},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []string{"whole", "byte-at-a-time"} {
				var r io.Reader = strings.NewReader(tt.in)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				evs, err := readAll(t, r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s: err = %v, want %v", mode, err, tt.wantErr)
				}
				var got []string
				for _, e := range evs {
					got = append(got, e.Type+"|"+string(e.Data))
				}
				if strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("%s: got %q, want %q", mode, got, tt.want)
				}
			}
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	in := "data: " + strings.Repeat("x", MaxEventSize+1) + "\n\n"
	_, err := NewReader(strings.NewReader(in)).Next()
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
}

func TestWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.WriteData([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteData([]byte(`[DONE]`)); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Body.String(), "data: {\"a\":1}\n\ndata: [DONE]\n\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if !rec.Flushed {
		t.Error("writer did not flush")
	}
}

// FuzzReader checks that any input parses without panic and that reading
// byte by byte gives the same events as reading at once.
func FuzzReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("event: x\r\ndata: y\r\n\r\n: c\n"))
	f.Add([]byte("data\ndata:\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, errA := readAll(t, bytes.NewReader(in))
		b, errB := readAll(t, iotest.OneByteReader(bytes.NewReader(in)))
		if (errA == nil) != (errB == nil) || len(a) != len(b) {
			t.Fatalf("whole: %d events, %v; bytewise: %d events, %v", len(a), errA, len(b), errB)
		}
		for i := range a {
			if a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
				t.Fatalf("event %d differs: %q vs %q", i, a[i].Data, b[i].Data)
			}
		}
	})
}

func TestLineEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"a\nb", 1}, {"a\rb", 1}, {"ab\r\n", 2}, {"ab\n\r", 2}, {"\n", 0}, {"\r", 0}, {"abc\rdef\n", 3},
	}
	for _, tt := range tests {
		if got := lineEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("lineEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// FuzzLineEnd checks lineEnd against bytes.IndexAny.
func FuzzLineEnd(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "abc", "\n\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := bytes.IndexAny(b, "\r\n")
		if want < 0 {
			want = len(b)
		}
		if got := lineEnd(b); got != want {
			t.Fatalf("lineEnd(%q) = %d, want %d", b, got, want)
		}
	})
}
