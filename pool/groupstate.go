package pool

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Server states, as [ServerState.State] gives them.
const (
	// StateUp is a server that takes requests.
	StateUp = "up"
	// StateDown is a server out after failures, until
	// [ServerState.DownUntil], or down by active health checks
	// ([ServerState.ProbeDown]).
	StateDown = "down"
	// StateTrial is a server whose time out is over: its next request
	// (or the one in flight) decides whether it is up again.
	StateTrial = "trial"
	// StateDraining is a server drained by [Pool.SetDrained], or an
	// address its server's host no longer resolves to: it gets no new
	// request; those in flight finish.
	StateDraining = "draining"
)

// GroupState is a snapshot of a group of servers ([Group]).
type GroupState struct {
	Name    string
	Balance string // "round_robin", "hash:header:X-User"...
	Servers []ServerState
}

// ServerState is a snapshot of one server of a group.
type ServerState struct {
	// Index is the server's place in its group, from 0, in document
	// order; URL is its url attribute as written and Key its
	// "scheme://host:port".
	Index    int
	URL, Key string
	// Addr is, for a server with resolve=, the address ("10.0.0.1:8080")
	// this entry stands for: such a server has an entry per address its
	// host resolved to (all with its Index, URL and Key). Addr is "" for
	// a server without resolve=, and for one whose host was not resolved
	// yet (its host is then dialed as written).
	Addr   string
	Weight int
	Backup bool
	// State is StateUp, StateDown, StateTrial or StateDraining (a
	// drained server is draining whatever its health).
	State string
	// DownUntil is the end of the time out of a server down after
	// failures (passive health); zero otherwise.
	DownUntil time.Time
	// RecentFailures are the failures counted towards max_fails in the
	// current fail_timeout window.
	RecentFailures int
	// InFlight are the requests sent to the server whose response body
	// is not closed yet.
	InFlight int64
	// Counters since the pool was made: requests sent to the server,
	// failures (passive health's), and the times passive health took it
	// out.
	Requests, Failures, Ejections uint64
	// ProbeDown reports that active health checks took the server down
	// (Fall failed probes in a row, not yet Rise good ones); Probes and
	// ProbeFailures count its probes, 0 when its group has no <health>.
	ProbeDown             bool
	Probes, ProbeFailures uint64
}

// ErrNoGroup and ErrNoServer are the errors of [Pool.SetDrained] for a
// group, or a server of a group, that does not exist.
var (
	ErrNoGroup  = errors.New("pool: no such group")
	ErrNoServer = errors.New("pool: no such server in the group")
)

// GroupStates returns a snapshot of every group, in document order, and
// of its servers, in document order.
func (p *Pool) GroupStates() []GroupState {
	now := time.Now()
	var out []GroupState
	for _, g := range p.cfg.Groups {
		rg := p.groups[g.Name]
		b := g.Balance.String()
		if g.HashName != "" {
			b += ":" + g.HashName
		}
		gs := GroupState{Name: g.Name, Balance: b}
		rg.mu.Lock()
		// The members that left (re-resolution) and still have requests
		// in flight are shown draining after the others of their server.
		members := slices.Clone(rg.members)
		for _, m := range rg.leaving {
			i := len(members)
			for i > 0 && members[i-1].si > m.si {
				i--
			}
			members = slices.Insert(members, i, m)
		}
		for _, m := range members {
			s := m.srv
			ss := ServerState{
				Index: m.si, URL: s.URL, Key: s.Key, Addr: m.addr, Weight: s.Weight, Backup: s.Backup,
				State: m.state(now), InFlight: m.inflight,
				Requests: m.requests, Failures: m.failures, Ejections: m.ejections,
				ProbeDown: m.probeDown, Probes: m.probes, ProbeFailures: m.probeFailures,
			}
			if now.Before(m.downUntil) {
				ss.DownUntil = m.downUntil
			}
			if !m.failSince.IsZero() && now.Sub(m.failSince) <= s.FailTimeout {
				ss.RecentFailures = m.fails
			}
			gs.Servers = append(gs.Servers, ss)
		}
		rg.mu.Unlock()
		out = append(out, gs)
	}
	return out
}

// state returns m's state at now. Called with the group's lock held.
func (m *member) state(now time.Time) string {
	switch {
	case m.drained, m.leaving:
		return StateDraining
	case m.probeDown:
		return StateDown
	case m.downUntil.IsZero():
		return StateUp
	case now.Before(m.downUntil):
		return StateDown
	}
	return StateTrial
}

// SetDrained drains the server of group named server (drained true), or
// brings it back. A drained server gets no new request, as if it were
// down, and the requests in flight on it finish; with resolve=, all its
// addresses are drained, those it resolves to later too. server is the server's
// index in the group (from 0, in document order), its url attribute as
// written, or its "scheme://host:port" key. The error wraps [ErrNoGroup]
// or [ErrNoServer] when there is no such group or server.
func (p *Pool) SetDrained(group, server string, drained bool) error {
	rg := p.groups[group]
	if rg == nil {
		return fmt.Errorf("%w: %q", ErrNoGroup, group)
	}
	si := rg.server(server)
	if si < 0 {
		return fmt.Errorf("%w %s: %q", ErrNoServer, group, server)
	}
	rg.mu.Lock()
	rg.srvDrained[si] = drained
	for _, m := range rg.members {
		if m.si == si {
			m.drained = drained
		}
	}
	rg.mu.Unlock()
	return nil
}

// server returns the index of the server named server (see
// [Pool.SetDrained]), -1 when there is none.
func (g *group) server(server string) int {
	if i, err := strconv.Atoi(server); err == nil {
		if i >= 0 && i < len(g.cfg.Servers) {
			return i
		}
		return -1
	}
	for i, s := range g.cfg.Servers {
		if s.URL == server || s.Key == server {
			return i
		}
	}
	return -1
}
