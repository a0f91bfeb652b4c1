package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestGroupsConfigs: the groups scenario's ocsiproxy configuration has
// one round-robin group of the three backends, which the catch-all rule
// sends to, and its nginx configuration an upstream of the three; with
// one upstream, both send to the backend alone.
func TestGroupsConfigs(t *testing.T) {
	s := &suite{portBase: 18300, backendPort: 18300, idleConns: 10, fdLimit: 100, proxyNCPU: 1}
	tests := []struct {
		group int
		ports []int
	}{
		{0, nil},
		{3, []int{18300, 18310, 18311}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.group), func(t *testing.T) {
			tg := &target{name: "ocsiproxy-x", kind: "ocsiproxy", port: 18308, group: tt.group}
			src := s.ocsiproxyConf(tg, "/tmp/x")
			cfg, err := xmlconf.Parse("bench.conf", []byte(src))
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			var errs xmlconf.ErrorList
			pc := pool.ParseConfig(cfg, &errs)
			if len(errs) != 0 {
				t.Fatalf("%v\n%s", errs, src)
			}
			var keys []string
			for _, g := range pc.Groups {
				if g.Name != "g" || g.Balance != pool.RoundRobin {
					t.Errorf("group %s balanced by %s", g.Name, g.Balance)
				}
				for _, sv := range g.Servers {
					keys = append(keys, sv.Key)
				}
			}
			var want []string
			for _, p := range tt.ports {
				want = append(want, fmt.Sprintf("http://127.0.0.1:%d", p))
			}
			if strings.Join(keys, " ") != strings.Join(want, " ") {
				t.Errorf("servers %q, want %q", keys, want)
			}
			dest := `dest="http://127.0.0.1:18300/\1"`
			if tt.group > 0 {
				dest = `dest="http://g/\1"`
			}
			if !strings.Contains(src, dest) {
				t.Errorf("no %s in\n%s", dest, src)
			}
			ng := s.nginxConf(&target{name: "nginx-x", kind: "nginx", port: 18312, group: tt.group}, "/tmp/x")
			nports := tt.ports
			if nports == nil {
				nports = []int{18300}
			}
			if got := strings.Count(ng, "        server 127.0.0.1:"); got != len(nports) {
				t.Errorf("nginx: %d servers, want %d:\n%s", got, len(nports), ng)
			}
			for _, p := range nports {
				if !strings.Contains(ng, fmt.Sprintf("server 127.0.0.1:%d;", p)) {
					t.Errorf("nginx: no server on %d", p)
				}
			}
		})
	}
}

// TestPorts: the ports of the backends and targets of every scenario are
// distinct, and within PORT_BASE to lastPort.
func TestPorts(t *testing.T) {
	for _, floors := range []int{0, 2} {
		s := &suite{portBase: 18300}
		for i := range floors {
			s.targets = append(s.targets, fmt.Sprintf("floor+reader%s", strings.Repeat("+alloc", i)))
		}
		ports := []int{s.portBase, s.portBase + 1, s.portBase + 2, s.portBase + 3} // backend, ocsiproxy, nginx, haproxy
		for i := range 4 {
			ports = append(ports, s.portBase+4+i) // rules
		}
		for k := range 2 { // groups: ocsiproxy, nginx
			ports = append(ports, s.portBase+portGroups+4*k, s.portBase+portGroups+4*k+1)
		}
		ports = append(ports, s.groupPorts()[1:]...)
		for i := range floors {
			ports = append(ports, s.portBase+portFloors+i)
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] || p < s.portBase || p > s.lastPort() {
				t.Errorf("%d floor targets: port %d used twice or outside %d-%d (ports %v)", floors, p, s.portBase, s.lastPort(), ports)
			}
			seen[p] = true
		}
	}
}
