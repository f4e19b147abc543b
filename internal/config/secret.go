package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted is what a non-empty secret shows instead of its value.
const redacted = "********"

// A Secret is a string that must not leak: printing it with fmt, logging it
// with slog, or marshalling it to YAML or JSON shows "********" instead (an
// empty Secret stays empty, so "not set" is still visible). Value returns the
// secret itself. Secrets are read from YAML like plain strings.
type Secret string

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

// String returns "********", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the secret for the %#v verb.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// Format implements fmt.Formatter, so that every verb, including those
// that are wrong for a string such as %d, sees only the redacted text.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// LogValue implements slog.LogValuer, so slog never sees the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML implements yaml.Marshaler with the redacted text.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON implements json.Marshaler with the redacted text.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

var (
	_ slog.LogValuer = Secret("")
	_ json.Marshaler = Secret("")
	_ fmt.Formatter  = Secret("")
)
