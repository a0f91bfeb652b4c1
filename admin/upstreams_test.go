package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// fakeView is a View with one group of two servers; SetDrained records
// its calls.
type fakeView struct {
	groups []pool.GroupState
	calls  []string
}

func (v *fakeView) Config() *xmlconf.Config      { return &xmlconf.Config{} }
func (v *fakeView) Reload(string) error          { return nil }
func (v *fakeView) Upstreams() []pool.GroupState { return v.groups }
func (v *fakeView) SetDrained(group, server string, drained bool) error {
	v.calls = append(v.calls, fmt.Sprintf("%s %s %v", group, server, drained))
	if group != "api" {
		return fmt.Errorf("%w: %q", pool.ErrNoGroup, group)
	}
	if server != "0" && server != "http://10.0.0.1:8080" {
		return fmt.Errorf("%w api: %q", pool.ErrNoServer, server)
	}
	return nil
}

func newFakeView() *fakeView {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeView{groups: []pool.GroupState{{Name: "api", Balance: "least_conn", Servers: []pool.ServerState{
		{Index: 0, URL: "http://10.0.0.1:8080", Key: "http://10.0.0.1:8080", Weight: 2, State: pool.StateUp, InFlight: 3, Requests: 10,
			Probes: 5, ProbeFailures: 2},
		{Index: 1, URL: "http://B:80", Key: "http://b:80", Weight: 1, Backup: true, State: pool.StateDown, DownUntil: until,
			RecentFailures: 0, Failures: 4, Ejections: 1},
		{Index: 2, URL: "http://app.test:8080", Key: "http://app.test:8080", Addr: "10.0.0.7:8080", Weight: 1, State: pool.StateUp},
	}}}}
}

func TestUpstreamsAPI(t *testing.T) {
	v := newFakeView()
	h := NewHandler(NewMetrics(), v)
	do := func(method, target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	code, body := do("GET", "/api/upstreams")
	var got struct {
		Groups []groupJSON `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /api/upstreams: %d %v\n%s", code, err, body)
	}
	want := []groupJSON{{Name: "api", Balance: "least_conn", Servers: []serverJSON{
		{Index: 0, URL: "http://10.0.0.1:8080", Key: "http://10.0.0.1:8080", Weight: 2, State: "up", InFlight: 3, Requests: 10,
			Probes: 5, ProbeFailures: 2},
		{Index: 1, URL: "http://B:80", Key: "http://b:80", Weight: 1, Backup: true, State: "down", DownUntil: "2030-01-02T03:04:05Z",
			Failures: 4, Ejections: 1},
		{Index: 2, URL: "http://app.test:8080", Key: "http://app.test:8080", Addr: "10.0.0.7:8080", Weight: 1, State: "up"},
	}}}
	if fmt.Sprintf("%+v", got.Groups) != fmt.Sprintf("%+v", want) {
		t.Errorf("groups\n got %+v\nwant %+v", got.Groups, want)
	}
	if strings.Count(body, `"addr": `) != 1 {
		t.Errorf("addr only for a resolved address:\n%s", body)
	}
	if strings.Contains(body, `"down_until": ""`) || !strings.Contains(body, `"down_until": "2030-01-02T03:04:05Z"`) {
		t.Errorf("down_until only when down:\n%s", body)
	}

	tests := []struct {
		method, target string
		code           int
		call           string
	}{
		{"POST", "/api/upstreams/api/0/drain", 200, "api 0 true"},
		{"POST", "/api/upstreams/api/0/undrain", 200, "api 0 false"},
		{"POST", "/api/upstreams/api/http%3A%2F%2F10.0.0.1%3A8080/drain", 200, "api http://10.0.0.1:8080 true"},
		{"POST", "/api/upstreams/api/7/drain", 404, "api 7 true"},
		{"POST", "/api/upstreams/nope/0/undrain", 404, "nope 0 false"},
		{"GET", "/api/upstreams/api/0/drain", 405, ""},
		{"POST", "/api/upstreams/api/0/stop", 404, ""},
	}
	for _, tt := range tests {
		v.calls = nil
		code, body := do(tt.method, tt.target)
		if code != tt.code || strings.Join(v.calls, ";") != tt.call {
			t.Errorf("%s %s: %d (calls %q), want %d (%q)\n%s", tt.method, tt.target, code, v.calls, tt.code, tt.call, body)
		}
		if code == 404 && tt.call != "" && !strings.Contains(body, `"ok": false`) {
			t.Errorf("%s %s: %s", tt.method, tt.target, body)
		}
	}
}

func TestGroupCollector(t *testing.T) {
	v := newFakeView()
	m := NewMetrics()
	if err := m.Register(GroupCollector(v.Upstreams)); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	NewHandler(m, v).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`ocsiproxy_group_server_state{addr="",group="api",server="http://10.0.0.1:8080",state="up"} 1`,
		`ocsiproxy_group_server_state{addr="",group="api",server="http://10.0.0.1:8080",state="down"} 0`,
		`ocsiproxy_group_server_state{addr="",group="api",server="http://B:80",state="down"} 1`,
		`ocsiproxy_group_server_state{addr="",group="api",server="http://B:80",state="draining"} 0`,
		`ocsiproxy_group_server_in_flight{addr="",group="api",server="http://10.0.0.1:8080"} 3`,
		`ocsiproxy_group_server_state{addr="10.0.0.7:8080",group="api",server="http://app.test:8080",state="up"} 1`,
		`ocsiproxy_group_server_requests_total{addr="",group="api",server="http://10.0.0.1:8080"} 10`,
		`ocsiproxy_group_server_failures_total{addr="",group="api",server="http://B:80"} 4`,
		`ocsiproxy_group_server_ejections_total{addr="",group="api",server="http://B:80"} 1`,
		`ocsiproxy_group_server_probes_total{addr="",group="api",result="ok",server="http://10.0.0.1:8080"} 3`,
		`ocsiproxy_group_server_probes_total{addr="",group="api",result="failed",server="http://10.0.0.1:8080"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `ocsiproxy_group_server_probes_total{addr="",group="api",result="ok",server="http://B:80"}`) {
		t.Errorf("probe counters for a server that is not probed")
	}
	if rec.Code != http.StatusOK {
		t.Errorf("/metrics: %d", rec.Code)
	}
}
