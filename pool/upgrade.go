package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Upgrader returns the client of the requests that switch protocols
// (WebSocket), which become tunnels: a request to a host goes through
// [NewUpgradeTransport](timeout) as before; a request whose URL host is
// the name of a group goes to a server the group's balancer picks, as
// [Pool.RoundTrip] would send it: down, drained and probed-down servers
// are skipped, backups serve only when no primary is usable, and a try
// that reached no server (connection refused), or, for a request
// without body, whose connection failed before a response head, is
// repeated on another server within the group's retries and
// try_duration. The connection is opened with the server's settings
// (connect_timeout, TLS) and is not one of its pool's: a tunnel keeps
// it. The server counts the request in flight until the tunnel (the
// response body) is closed; a failure counts for its passive health.
// Its idle connections are closed with the pool (Close).
func (p *Pool) Upgrader(timeout time.Duration) http.RoundTripper {
	gt := NewUpgradeTransport(timeout)
	gt.DialContext = p.upgradeDial
	gt.DialTLSContext = p.upgradeDial
	u := &upgrader{p: p, hosts: NewUpgradeTransport(timeout), groups: gt}
	p.mu.Lock()
	p.upgraders = append(p.upgraders, u.hosts, u.groups)
	p.mu.Unlock()
	return u
}

// upgrader is the RoundTripper of Upgrader: hosts carries the upgrades to
// hosts, groups those to the servers of groups.
type upgrader struct {
	p             *Pool
	hosts, groups *http.Transport
}

func (u *upgrader) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL != nil {
		if g := u.p.groupFor(req.URL.Host); g != nil {
			return g.upgrade(u.groups, req)
		}
	}
	return u.hosts.RoundTrip(req)
}

// upgradeUpstreamKey is the context key of the upstream (a group
// member's) an upgrade's connection is opened to.
type upgradeUpstreamKey struct{}

// upgradeDial opens the connection of an upgrade to a group's server:
// to the address of the member's upstream that the request's context
// carries, within its connect_timeout, with its TLS settings for https.
// Its errors are connectErrors: the request reached no server.
func (p *Pool) upgradeDial(ctx context.Context, network, addr string) (net.Conn, error) {
	u, _ := ctx.Value(upgradeUpstreamKey{}).(*upstream)
	if u == nil {
		return nil, fmt.Errorf("pool: upgrade to %s: no server of a group", addr)
	}
	if d := u.set.ConnectTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	raw, err := p.dialer(ctx, "tcp", u.addr)
	if err != nil {
		return nil, &connectError{key: u.key, err: err}
	}
	if !u.https {
		return raw, nil
	}
	tc := tls.Client(raw, u.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &connectError{key: u.key, err: err}
	}
	return tc, nil
}

// upgrade sends req, which asks to switch protocols, to a server of the
// group through tr (see [Pool.Upgrader]).
func (g *group) upgrade(tr *http.Transport, req *http.Request) (*http.Response, error) {
	start := time.Now()
	bodyless := req.Body == nil || req.Body == http.NoBody
	// What a hashed balance reads of the request, in the pool's form.
	balanced, err := requestFromHTTP(req)
	if err != nil {
		return nil, err
	}
	var triedBuf [4]*member
	tried := triedBuf[:0]
	var lastErr error
	for {
		m, allDown := g.pick(balanced, tried)
		if m == nil {
			if len(tried) == 0 && req.Body != nil {
				req.Body.Close() // as a RoundTrip must; a try closed it otherwise
			}
			return nil, g.noneLeft(len(tried), allDown, lastErr)
		}
		tried = append(tried, m)
		out := req.WithContext(context.WithValue(req.Context(), upgradeUpstreamKey{}, m.up))
		u := *req.URL
		u.Scheme, u.Host = m.scheme, m.host
		out.URL = &u
		resp, err := tr.RoundTrip(out)
		if err == nil {
			g.done(m, g.failStatus(resp.StatusCode))
			resp.Request = req
			if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
				resp.Body = &tunnelBody{ReadWriteCloser: rwc, inFlight: inFlight{g: g, m: m}}
			} else {
				resp.Body = &memberBody{ReadCloser: resp.Body, inFlight: inFlight{g: g, m: m}}
			}
			return resp, nil
		}
		kind := upgradeFailure(req, err)
		g.done(m, kind == notSent || kind == lost)
		g.release(m)
		lastErr = err
		retry := bodyless && (kind == notSent || kind == lost && idempotentMethod(req.Method))
		if !retry || req.Context().Err() != nil || len(tried) > g.cfg.Retries ||
			g.cfg.TryDuration > 0 && time.Since(start) >= g.cfg.TryDuration {
			if len(tried) > 1 {
				return nil, fmt.Errorf("pool: group %s: %d servers tried, all failed; the last: %v", g.cfg.Name, len(tried), err)
			}
			return nil, err
		}
	}
}

// upgradeFailure says what the failure err of an upgrade means for the
// group: a connection that could not be opened reached no server; any
// other failure before a response head, unless the client went away,
// is a connection lost.
func upgradeFailure(req *http.Request, err error) failure {
	var ce *connectError
	switch {
	case errors.As(err, &ce):
		return notSent
	case req.Context().Err() != nil:
		return notFailure
	}
	return lost
}

// tunnelBody is the body of a group server's 101 answer: the tunnel's
// connection to the server, which stops counting as in flight on it when
// the tunnel closes it.
type tunnelBody struct {
	io.ReadWriteCloser
	inFlight
}

func (b *tunnelBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.done()
	return err
}
