package pool

import (
	"errors"
	"fmt"
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
	// StateDraining is a server drained by [Pool.SetDrained]: it gets no
	// new request; those in flight finish.
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
	Weight   int
	Backup   bool
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
		for i, m := range rg.members {
			s := m.srv
			ss := ServerState{
				Index: i, URL: s.URL, Key: s.Key, Weight: s.Weight, Backup: s.Backup,
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
	case m.drained:
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
// down, and the requests in flight on it finish. server is the server's
// index in the group (from 0, in document order), its url attribute as
// written, or its "scheme://host:port" key. The error wraps [ErrNoGroup]
// or [ErrNoServer] when there is no such group or server.
func (p *Pool) SetDrained(group, server string, drained bool) error {
	rg := p.groups[group]
	if rg == nil {
		return fmt.Errorf("%w: %q", ErrNoGroup, group)
	}
	m := rg.member(server)
	if m == nil {
		return fmt.Errorf("%w %s: %q", ErrNoServer, group, server)
	}
	rg.mu.Lock()
	m.drained = drained
	rg.mu.Unlock()
	return nil
}

// member returns the member named server (see [Pool.SetDrained]), nil
// when there is none.
func (g *group) member(server string) *member {
	if i, err := strconv.Atoi(server); err == nil {
		if i >= 0 && i < len(g.members) {
			return g.members[i]
		}
		return nil
	}
	for _, m := range g.members {
		if m.srv.URL == server || m.srv.Key == server {
			return m
		}
	}
	return nil
}
