// Package sse reads and writes server-sent events: a Reader that parses an
// upstream event stream and a Writer that writes and flushes one event at a
// time. It is pure I/O code and imports nothing of the gateway's.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxEventSize bounds the data of one event; an upstream that sends more is
// treated as broken rather than buffered without limit.
const MaxEventSize = 8 << 20

// ErrEventTooLarge reports an event whose data exceeds MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one dispatched event. Data is the event's data lines joined by
// "\n"; it is valid until the next call to Next.
type Event struct {
	Type string
	Data []byte
}

// Reader parses events from an event stream (WHATWG HTML §9.2.6): lines
// ending in LF, CRLF or CR; "field: value" with one optional space; lines
// starting with ':' are comments; a blank line dispatches the event.
type Reader struct {
	r    *bufio.Reader
	data []byte
	typ  []byte
	line []byte
	cr   bool // the previous line ended in a lone CR; skip a following LF
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 4<<10)}
}

// Next returns the next event with data. Events without data lines are
// skipped, as the standard says. At the end of input it returns io.EOF if
// the stream ended between events and io.ErrUnexpectedEOF if it ended in
// the middle of one.
func (r *Reader) Next() (Event, error) {
	r.data = r.data[:0]
	r.typ = r.typ[:0]
	hasData := false
	pending := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && (pending || len(line) > 0) {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				return Event{Type: string(r.typ), Data: r.data}, nil
			}
			r.typ = r.typ[:0]
			pending = false
			continue
		}
		pending = true
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > MaxEventSize {
				return Event{}, ErrEventTooLarge
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.typ = append(r.typ[:0], value...)
		}
	}
}

// readLine returns the next line without its terminator. The slice is
// valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		b, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(r.line) > 0 {
				return r.line, io.EOF
			}
			return nil, err
		}
		if r.cr {
			r.cr = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return r.line, nil
		case '\r':
			r.cr = true
			return r.line, nil
		}
		if len(r.line) >= MaxEventSize {
			return nil, ErrEventTooLarge
		}
		r.line = append(r.line, b)
		// Fast path: copy the rest of the buffered line at once.
		if buf, _ := r.r.Peek(r.r.Buffered()); len(buf) > 0 {
			n := lineEnd(buf)
			r.line = append(r.line, buf[:n]...)
			_, _ = r.r.Discard(n)
		}
	}
}

// lineEnd returns the index of the first CR or LF in buf, or len(buf).
// Two IndexByte scans (vectorized) beat one bytes.IndexAny.
func lineEnd(buf []byte) int {
	n := bytes.IndexByte(buf, '\n')
	if n < 0 {
		n = len(buf)
	}
	if cr := bytes.IndexByte(buf[:n], '\r'); cr >= 0 {
		return cr
	}
	return n
}

// Writer writes events to an http.ResponseWriter, flushing after each one
// so that nothing waits in a buffer.
type Writer struct {
	w   io.Writer
	rc  *http.ResponseController
	buf []byte
}

// NewWriter returns a Writer for w.
func NewWriter(w http.ResponseWriter) *Writer {
	return &Writer{w: w, rc: http.NewResponseController(w)}
}

// WriteData writes one "data:" event and flushes it. data must not contain
// a newline (JSON from encoding/json never does).
func (w *Writer) WriteData(data []byte) error {
	w.buf = append(w.buf[:0], "data: "...)
	w.buf = append(w.buf, data...)
	w.buf = append(w.buf, '\n', '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := w.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}
