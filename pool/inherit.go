package pool

import "net/netip"

// Inherit gives the servers of p's groups the state the same servers
// had in old, the pool of the configuration p replaces (a reload): a
// server of a group of the same name with the same "scheme://host:port"
// keeps its passive health (failures in the window, down until when),
// its drain, its counters, its active health state when p's group has a
// <health> element too, and, with resolve=, its addresses (each with its
// state) until its next lookup. Its other attributes (weight, max_fails,
// backup...) are p's. A server down waiting for its trial request gets
// its trial from p. Requests in flight are not carried: they finish on
// old. Call it before p serves and before [Pool.StartBackground].
func (p *Pool) Inherit(old *Pool) {
	if old == nil {
		return
	}
	for _, g := range p.cfg.Groups {
		og := old.groups[g.Name]
		if og == nil {
			continue
		}
		ng := p.groups[g.Name]
		// A snapshot of the old group's members by server key.
		og.mu.Lock()
		byKey := map[string][]member{}
		for _, m := range og.members {
			byKey[m.srv.Key] = append(byKey[m.srv.Key], *m)
		}
		drained := map[string]bool{}
		for i, s := range og.cfg.Servers {
			drained[s.Key] = og.srvDrained[i]
		}
		og.mu.Unlock()
		for si, s := range g.Servers {
			olds := byKey[s.Key]
			if len(olds) == 0 {
				continue
			}
			if s.Resolve > 0 && olds[0].addr != "" {
				var addrs []netip.Addr
				for _, m := range olds {
					if ap, err := netip.ParseAddrPort(m.addr); err == nil {
						addrs = append(addrs, ap.Addr())
					}
				}
				ng.resolved(si, addrs, nil)
			}
			ng.mu.Lock()
			ng.srvDrained[si] = drained[s.Key]
			for _, m := range ng.members {
				if m.si != si {
					continue
				}
				m.drained = drained[s.Key]
				for i := range olds {
					if olds[i].addr == m.addr {
						m.inherit(&olds[i], g.Health != nil)
					}
				}
			}
			ng.mu.Unlock()
		}
	}
}

// inherit copies o's state into m (see [Pool.Inherit]). Called with m's
// group's lock held.
func (m *member) inherit(o *member, health bool) {
	// A server past its down time (due for its trial, or with its
	// trial in flight on old) gets a trial of its own here.
	m.fails, m.failSince, m.downUntil = o.fails, o.failSince, o.downUntil
	m.requests, m.failures, m.ejections = o.requests, o.failures, o.ejections
	if health {
		m.probeDown, m.probeGood, m.probeBad = o.probeDown, o.probeGood, o.probeBad
		m.probes, m.probeFailures = o.probes, o.probeFailures
	}
}
