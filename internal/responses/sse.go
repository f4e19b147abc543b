package responses

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// EventWriter writes events as server-sent events, each with an "event:"
// line naming its type and a "data:" line holding its JSON, and flushes
// every one.
type EventWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	buf []byte
}

// NewEventWriter returns an EventWriter for w.
func NewEventWriter(w http.ResponseWriter) *EventWriter {
	return &EventWriter{w: w, rc: http.NewResponseController(w)}
}

// Write writes and flushes one event.
func (w *EventWriter) Write(ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	w.buf = append(w.buf[:0], "event: "...)
	w.buf = append(w.buf, ev.Type...)
	w.buf = append(w.buf, "\ndata: "...)
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
