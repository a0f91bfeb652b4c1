package pool

import (
	"errors"
	"testing"
	"time"
)

// TestInherit: a reload's pool keeps the state of the servers that are
// still in a group of the same name; the others start afresh.
func TestInherit(t *testing.T) {
	refused := refusedAddr(t)
	a := newHealthBackend(t, "a")
	oldXML := `<upstream name="api" retries="0">
<server url="http://` + refused + `" max_fails="1" fail_timeout="1h"/>
<server url="http://` + a.addr() + `"/>
<server url="http://10.0.0.9:80"/>
</upstream>
<upstream name="other"><server url="http://` + a.addr() + `"/></upstream>`
	old := groupPool(t, oldXML)
	roundTrip(old, "GET", "http://api/", nil) // the refused server: down for 1 h
	roundTrip(old, "GET", "http://api/", nil) // a
	if err := old.SetDrained("api", "2", true); err != nil {
		t.Fatal(err)
	}
	if err := old.SetDrained("other", "0", true); err != nil {
		t.Fatal(err)
	}
	before := old.GroupStates()[0].Servers

	// The new configuration: the servers in another order, one added,
	// the group "other" renamed.
	p := groupPool(t, `<upstream name="api" retries="0">
<server url="http://10.0.0.9:80" weight="2"/>
<server url="http://10.0.0.8:80"/>
<server url="http://`+a.addr()+`"/>
<server url="http://`+refused+`" max_fails="1" fail_timeout="1h"/>
</upstream>
<upstream name="renamed"><server url="http://`+a.addr()+`"/></upstream>`)
	p.Inherit(old)
	got := p.GroupStates()
	api, renamed := got[0].Servers, got[1].Servers[0]
	tests := []struct {
		name           string
		s              ServerState
		state          string
		requests, fail uint64
		downUntil      time.Time
	}{
		{"drained, kept", api[0], StateDraining, 0, 0, time.Time{}},
		{"new", api[1], StateUp, 0, 0, time.Time{}},
		{"up, counters kept", api[2], StateUp, 1, 0, time.Time{}},
		{"down, kept", api[3], StateDown, 1, 1, before[0].DownUntil},
		{"another group's name", renamed, StateUp, 0, 0, time.Time{}},
	}
	for _, tt := range tests {
		if tt.s.State != tt.state || tt.s.Requests != tt.requests || tt.s.Failures != tt.fail || !tt.s.DownUntil.Equal(tt.downUntil) {
			t.Errorf("%s: %+v, want %s, %d requests, %d failures, down until %v", tt.name, tt.s, tt.state, tt.requests, tt.fail, tt.downUntil)
		}
	}
	if api[0].Weight != 2 {
		t.Errorf("the new weight: %d", api[0].Weight)
	}
	p.Inherit(nil) // nothing to inherit from: no change
	if st := p.GroupStates()[0].Servers[3]; st.State != StateDown {
		t.Errorf("after Inherit(nil): %+v", st)
	}
}

// TestInheritResolved: a resolved server keeps its addresses, with their
// state, until its next lookup; active health state is kept only when
// the new group has <health>.
func TestInheritResolved(t *testing.T) {
	a, b := newHealthBackend(t, "a"), newHealthBackend(t, "b")
	dns := &fakeDNS{}
	dns.set(nil, "10.0.0.1", "10.0.0.2")
	route := map[string]string{"10.0.0.1:8080": a.addr(), "10.0.0.2:8080": b.addr()}
	xml := `<upstream name="api"><server url="http://app.test:8080" resolve="1h"/>
<health path="/healthz" interval="20ms" timeout="500ms" rise="1" fall="1"/></upstream>`
	old := resolvePool(t, xml, dns, route)
	b.status.Store(503)
	old.StartBackground()
	waitFor(t, "10.0.0.2 down", func() bool { return entries(old) == "10.0.0.1:8080 up 0, 10.0.0.2:8080 down 0" })
	old.StopBackground()
	b.status.Store(200)
	dns.set(errors.New("the new pool must not need a lookup"))

	p := resolvePool(t, xml, dns, route)
	p.Inherit(old)
	if got := entries(p); got != "10.0.0.1:8080 up 0, 10.0.0.2:8080 down 0" {
		t.Errorf("with <health>: %q", got)
	}
	for range 3 {
		if r := roundTrip(p, "GET", "http://api/x", nil); r.err != nil || r.body != "a" {
			t.Errorf("10.0.0.2 still down: %v", r)
		}
	}
	noHealth := resolvePool(t, `<upstream name="api"><server url="http://app.test:8080" resolve="1h"/></upstream>`, dns, route)
	noHealth.Inherit(old)
	if got := entries(noHealth); got != "10.0.0.1:8080 up 0, 10.0.0.2:8080 up 0" {
		t.Errorf("without <health>, nothing would bring 10.0.0.2 back: %q", got)
	}
}
