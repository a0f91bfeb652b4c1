package pool

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SetResolver makes the pool look up the host names of the servers with
// resolve= through r, which returns the addresses of host. nil, the
// default, is net.DefaultResolver (A and AAAA records). Call it before
// [Pool.StartBackground].
func (p *Pool) SetResolver(r func(ctx context.Context, host string) ([]netip.Addr, error)) {
	p.resolver = r
}

// lookup returns the addresses of host.
func (p *Pool) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.resolver != nil {
		return p.resolver(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveLoop resolves the host of server si at once, then every
// Resolve, until ctx ends. Until the first lookup that gives addresses,
// the server is one member that dials its host name as written.
func (g *group) resolveLoop(ctx context.Context, si int) {
	g.resolving.Add(1)
	defer g.resolving.Add(-1)
	s := g.cfg.Servers[si]
	t := time.NewTicker(s.Resolve)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, min(max(s.Resolve, time.Second), 10*time.Second))
		addrs, err := g.pool.lookup(lctx, s.Host)
		cancel()
		if ctx.Err() != nil {
			return
		}
		g.resolved(si, addrs, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resolved applies a lookup of the host of server si: a member per
// address, those already there kept with their state; the members of
// addresses that are gone (or the member of the host name, after the
// first lookup) get no new request and are dropped, with their pools,
// once their requests in flight are done. A failed lookup, or one
// without address, keeps the members as they are.
func (g *group) resolved(si int, addrs []netip.Addr, err error) {
	s := g.cfg.Servers[si]
	logf := g.pool.logf
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		if logf != nil {
			logf("pool: group %s: server %s: resolving %s: %v (its addresses are kept)", g.cfg.Name, s.URL, s.Host, err)
		}
		return
	}
	scheme, _, _ := strings.Cut(s.Key, "://")
	port, _ := strconv.Atoi(defaultPort(s.Key))
	var hosts []string
	for _, a := range addrs {
		hosts = append(hosts, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)

	g.mu.Lock()
	defer g.mu.Unlock()
	old := map[string]*member{}
	for _, m := range g.members {
		if m.si == si {
			old[m.addr] = m
		}
	}
	var mine []*member
	changed := len(old) != len(hosts)
	for _, h := range hosts {
		if m := old[h]; m != nil {
			mine = append(mine, m)
			delete(old, h)
			continue
		}
		changed = true
		key := scheme + "://" + h
		u, owns := g.pool.resolvedUpstream(key, s)
		m := &member{srv: s, si: si, up: u, key: key, scheme: scheme, host: h, addr: h, ownsUp: owns, drained: g.srvDrained[si]}
		g.startProbe(m)
		mine = append(mine, m)
	}
	if !changed {
		return
	}
	for _, m := range old {
		m.leaving = true
		if m.probeCancel != nil {
			m.probeCancel()
			m.probeCancel = nil
		}
		if m.inflight == 0 {
			g.dropLeaving(m)
		} else {
			g.leaving = append(g.leaving, m)
		}
	}
	members := make([]*member, 0, len(g.members)-len(old)+len(mine))
	for _, m := range g.members {
		switch {
		case m.si != si:
			members = append(members, m)
		case mine != nil:
			members = append(members, mine...)
			mine = nil
		}
	}
	g.members = members
	g.placeMembers()
	if logf != nil {
		logf("pool: group %s: server %s: %s resolved to %s", g.cfg.Name, s.URL, s.Host, strings.Join(hosts, " "))
	}
}

// dropLeaving forgets a member re-resolution removed, once nothing is in
// flight on it: its pool, when re-resolution made it for this address
// alone, is dropped. Called with g.mu held.
func (g *group) dropLeaving(m *member) {
	g.leaving = slices.DeleteFunc(g.leaving, func(x *member) bool { return x == m })
	if m.ownsUp {
		m.ownsUp = false
		g.pool.releaseResolved(m.up)
	}
}

// resolvedUpstream returns the upstream of key, an address of server s,
// and whether the caller must release it (releaseResolved): an upstream
// the configuration has (an <upstream url=> or another server with that
// key) is shared and never dropped; one made for resolved addresses, or
// made on demand for a request to that address and taken over, counts
// its users.
func (p *Pool) resolvedUpstream(key string, s *Server) (*upstream, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resolvedRefs == nil {
		p.resolvedRefs = make(map[*upstream]int)
	}
	if u := p.byKey[key]; u != nil {
		if n, ok := p.resolvedRefs[u]; ok {
			p.resolvedRefs[u] = n + 1
			return u, true
		}
		u.mu.Lock()
		dynamic := !u.declared
		u.declared = true
		u.mu.Unlock()
		if !dynamic {
			return u, false
		}
		// Made on demand for a request to this address: the group
		// takes it over, so that the janitor does not drop it while
		// the group uses it.
		p.dynamic--
		p.resolvedRefs[u] = 1
		return u, true
	}
	u := p.newUpstream(key, s.Settings, s.tls, true)
	p.byKey[key] = u
	p.resolvedRefs[u] = 1
	if p.logf != nil {
		p.logf("pool: %s: upstream added (an address of %s)", key, s.URL)
	}
	return u, true
}

// releaseResolved ends a use of an upstream made by resolvedUpstream;
// after the last, the upstream is dropped: its idle connections are
// closed, and any busy one (a request that reached it by its address,
// not through the group) is closed after its response.
func (p *Pool) releaseResolved(u *upstream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.resolvedRefs[u]; n > 1 {
		p.resolvedRefs[u] = n - 1
		return
	}
	delete(p.resolvedRefs, u)
	delete(p.byKey, u.key)
	for _, a := range u.aliases {
		delete(p.hosts[boolIndex(u.https)], a)
	}
	var idle []*conn
	u.mu.Lock()
	u.removed = true
	for _, c := range u.conns {
		if len(c.pending)+c.reserved == 0 && !c.broken && !c.closing && c.reservedFor == nil {
			idle = append(idle, c)
		} else if !c.closing {
			c.closing = true
			if !c.countedClosing {
				c.countedClosing = true
				u.closingConns++
			}
		}
	}
	for _, c := range idle {
		c.broken, c.closing = true, true
		u.removeConn(c)
	}
	u.mu.Unlock()
	for _, c := range idle {
		c.closeNet()
	}
	if p.logf != nil {
		p.logf("pool: %s: upstream dropped (no longer an address of its server)", u.key)
	}
}

// boolIndex is 1 for true, 0 for false.
func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
