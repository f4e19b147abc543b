package load

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/bench/mockup"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := Percentile(d, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func mockServer(t *testing.T, o mockup.Options) (*mockup.Server, string) {
	t.Helper()
	m, err := mockup.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv.URL + "/v1/chat/completions"
}

func TestConstant(t *testing.T) {
	m, url := mockServer(t, mockup.Options{Chunks: 5})
	c := NewClient(0)
	defer c.CloseIdleConnections()
	res := Constant(t.Context(), c, &Request{URL: url, Body: mockup.ChatRequest(mockup.ClientModel)}, 400, 250*time.Millisecond, 5*time.Second, 0)
	if res.Sent != 100 || res.OK != 100 {
		t.Fatalf("sent %d, ok %d, errors %v", res.Sent, res.OK, res.Errors)
	}
	if res.Elapsed < 240*time.Millisecond {
		t.Errorf("100 requests at 400/s took %s", res.Elapsed)
	}
	sres := Constant(t.Context(), c, &Request{URL: url, Body: mockup.StreamRequest(mockup.ClientModel), Stream: true, WantEvents: m.Chunks() + 1}, 200, 100*time.Millisecond, 5*time.Second, 0)
	if sres.OK != sres.Sent || sres.Sent != 20 {
		t.Fatalf("streams: sent %d, ok %d, errors %v", sres.Sent, sres.OK, sres.Errors)
	}
	for i := range sres.Latency {
		if sres.FirstByte[i] > sres.Latency[i] {
			t.Fatalf("first byte %s after the last %s", sres.FirstByte[i], sres.Latency[i])
		}
	}
	bad := Constant(t.Context(), c, &Request{URL: url, Body: mockup.StreamRequest(mockup.ClientModel), Stream: true, WantEvents: 3}, 100, 50*time.Millisecond, 5*time.Second, 0)
	if bad.OK != 0 || bad.Failed() != bad.Sent || bad.FirstError() == "" {
		t.Errorf("wrong event count not reported: %+v", bad)
	}
}

func TestClosed(t *testing.T) {
	_, url := mockServer(t, mockup.Options{})
	c := NewClient(4)
	defer c.CloseIdleConnections()
	res := Closed(t.Context(), c, &Request{URL: url, Body: mockup.ChatRequest(mockup.ClientModel)}, 4, 100*time.Millisecond, 5*time.Second)
	if res.OK == 0 || res.Failed() != 0 || res.Throughput() <= 0 {
		t.Fatalf("ok %d, failed %d: %v", res.OK, res.Failed(), res.Errors)
	}
}

func TestHold(t *testing.T) {
	_, url := mockServer(t, mockup.Options{Chunks: 50, ChunkDelay: time.Second})
	c := NewClient(0)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	called := false
	res := Hold(ctx, c, &Request{URL: url, Body: mockup.StreamRequest(mockup.ClientModel), Stream: true}, 50, 1000, 5*time.Second, func() { called = true })
	if !called || res.Opened != 50 || res.Failed != 0 || res.EndedEarly != 0 {
		t.Fatalf("called %v, %+v", called, res)
	}
}
