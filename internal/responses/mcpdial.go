package responses

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// mcpTimeout bounds one MCP request (a listing or a tool call).
const mcpTimeout = 2 * time.Minute

// errLinkLocal reports an MCP server_url that resolves to a link-local
// address, where cloud metadata services (169.254.169.254) answer.
var errLinkLocal = errors.New("refusing to connect to a link-local address")

// newMCPClient is the HTTP client for MCP servers when none is given: the
// proxy from the environment, and no connections to link-local addresses,
// so a client-supplied server_url cannot reach the instance's metadata
// service and its credentials.
func newMCPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: refuseLinkLocal}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: mcpTimeout,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

// refuseLinkLocal is a net.Dialer Control that refuses link-local
// destinations.
func refuseLinkLocal(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	if a := ap.Addr().Unmap(); a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		return errLinkLocal
	}
	return nil
}

// contextWithShortTimeout is for clean-up calls after a response ended.
func contextWithShortTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
