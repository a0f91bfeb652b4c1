package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"
)

// StartBackground starts the pool's background work: the active health
// checks of the groups that have a <health> element (a goroutine per
// server, probing it at once and then every Interval, see [Health]) and
// the re-resolution of the servers with resolve= (a goroutine per such
// server, see [Server.Resolve]). The pool does not start it itself, so
// that a pool made to check or describe a configuration sends no probe
// and looks nothing up. It does nothing when the work runs already,
// after [Pool.StopBackground] or after [Pool.Close].
func (p *Pool) StartBackground() {
	p.hcMu.Lock()
	defer p.hcMu.Unlock()
	if p.hcCancel != nil || p.hcStopped || p.isClosed() {
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	p.hcCancel = cancel
	for _, g := range p.cfg.Groups {
		rg := p.groups[g.Name]
		rg.mu.Lock()
		rg.bg = ctx
		for _, m := range rg.members {
			rg.startProbe(m)
		}
		rg.mu.Unlock()
		for si, s := range g.Servers {
			if s.Resolve > 0 {
				p.hcWG.Go(func() { rg.resolveLoop(ctx, si) })
			}
		}
	}
}

// StopBackground stops the background work for good and returns once
// every goroutine of it has ended (a probe or lookup in progress is cut
// short). The servers keep the state the probes gave them, and their
// addresses. A reload calls it on the pool it replaces, whose requests
// in flight go on; [Pool.Close] calls it too.
func (p *Pool) StopBackground() {
	p.hcMu.Lock()
	defer p.hcMu.Unlock()
	p.hcStopped = true
	if p.hcCancel != nil {
		p.hcCancel()
	}
	p.hcWG.Wait()
}

// startProbe starts the probes of m when the group has active health
// checks and the background work runs. Called with g.mu held.
func (g *group) startProbe(m *member) {
	if g.cfg.Health == nil || g.bg == nil || g.bg.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(g.bg)
	m.probeCancel = cancel
	g.pool.hcWG.Go(func() { g.probeLoop(ctx, m) })
}

// probeLoop probes m at once, then every Interval, until ctx ends.
func (g *group) probeLoop(ctx context.Context, m *member) {
	g.probing.Add(1)
	defer g.probing.Add(-1)
	h := g.cfg.Health
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		err := g.probe(ctx, m)
		if ctx.Err() != nil {
			return
		}
		g.probed(m, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe sends one health probe to m on a new connection, within the
// Timeout of the group's <health>, and returns why it failed (nil when
// it passed).
func (g *group) probe(ctx context.Context, m *member) error {
	h := g.cfg.Health
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	raw, err := g.pool.dialer(ctx, "tcp", m.host)
	if err != nil {
		return err
	}
	// The connection is closed when the probe ends, or is cut short by
	// its timeout or by StopBackground.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer func() {
		if stop() {
			raw.Close()
		}
	}()
	if deadline, ok := ctx.Deadline(); ok {
		raw.SetDeadline(deadline)
	}
	nc := raw
	if m.scheme == "https" {
		tc := tls.Client(nc, m.up.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		nc = tc
	}
	host := h.Host
	if host == "" {
		host = m.host
	}
	req := "GET " + h.Path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: ocsiproxy-health-check\r\nConnection: close\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), &http.Request{Method: http.MethodGet})
	if err != nil {
		return err
	}
	resp.Body.Close()
	for _, r := range h.Status {
		if r[0] <= resp.StatusCode && resp.StatusCode <= r[1] {
			return nil
		}
	}
	return fmt.Errorf("status %d", resp.StatusCode)
}

// probed records the outcome of a probe of m: err is nil when it passed.
// Fall failed probes in a row take m down, Rise good ones bring it back
// up.
func (g *group) probed(m *member, err error) {
	h := g.cfg.Health
	g.mu.Lock()
	defer g.mu.Unlock()
	m.probes++
	var change string
	if err == nil {
		m.probeBad = 0
		m.probeGood++
		if m.probeDown && m.probeGood >= h.Rise {
			m.probeDown = false
			change = fmt.Sprintf("up (%d good probes)", m.probeGood)
		}
	} else {
		m.probeFailures++
		m.probeGood = 0
		m.probeBad++
		if !m.probeDown && m.probeBad >= h.Fall {
			m.probeDown = true
			change = fmt.Sprintf("down (%d failed probes, the last: %v)", m.probeBad, err)
		}
	}
	if change != "" && g.pool.logf != nil {
		g.pool.logf("pool: group %s: server %s %s", g.cfg.Name, m.srv.URL, change)
	}
}
