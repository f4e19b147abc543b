package harness

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	text := strings.Join([]string{
		`# HELP llama_stack_requests_total HTTP requests served.`,
		`# TYPE llama_stack_requests_total counter`,
		`llama_stack_requests_total{method="GET",model="",provider="",route="/v1/health",status="200"} 3`,
		`llama_stack_requests_total{method="POST",model="m",provider="p",route="/v1/chat/completions",status="200"} 1.5e+06`,
		`llama_stack_store_dropped_total 7`,
		`llama_stack_store_write_errors_total 0 1700000000000`,
		`weird_label{a="}"} 2`,
		`not_a_number{} x`,
		``,
	}, "\n")
	got := parseMetrics(text)
	tests := []struct {
		name string
		want float64
		ok   bool
	}{
		{"llama_stack_requests_total", 1500003, true},
		{"llama_stack_store_dropped_total", 7, true},
		{"llama_stack_store_write_errors_total", 0, true},
		{"weird_label", 2, true},
		{"not_a_number", 0, false},
		{"absent", 0, false},
	}
	for _, tt := range tests {
		v, ok := got[tt.name]
		if ok != tt.ok || v != tt.want {
			t.Errorf("%s = %v (present %v), want %v (present %v)", tt.name, v, ok, tt.want, tt.ok)
		}
	}
}

func TestDescribe(t *testing.T) {
	f := features{metrics: true, requests: 12, store: true, stored: 10, dropped: 1}
	s := f.describe(12, 11)
	for _, want := range []string{"request logging **on**", "metrics **on**", "inference store **on**", "10 chat completions stored", "1 dropped"} {
		if !strings.Contains(s, want) {
			t.Errorf("describe() = %q, lacks %q", s, want)
		}
	}
	uncounted := features{store: true, stored: -1, storeErr: "no records table"}.describe(1, 1)
	if !strings.Contains(uncounted, "records not counted: no records table") {
		t.Errorf("describe() = %q, lacks why the records were not counted", uncounted)
	}
	off := features{stored: -1}.describe(0, 5)
	for _, want := range []string{"request logging **off**", "metrics **off**", "inference store **off**"} {
		if !strings.Contains(off, want) {
			t.Errorf("describe() = %q, lacks %q", off, want)
		}
	}
}
