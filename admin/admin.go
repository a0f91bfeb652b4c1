// Package admin is the admin listener's API and the Prometheus metrics:
// /healthz, /metrics, GET /api/config, POST /api/reload and the groups of
// servers (GET /api/upstreams, drain and undrain), configured by
// the ocsiproxy.ext.admin extension. The metrics are an observer of the
// request handler; the API reaches the running server through a narrow
// [View].
package admin

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Config is the admin listener, configured by
//
//	<extension findlib-package="ocsiproxy.ext.admin">
//	  <listen>127.0.0.1:9090</listen>
//	</extension>
//
// It is off when the extension is not loaded. It serves /healthz,
// /metrics (Prometheus), GET /api/config (the loaded hosts and rules as
// JSON) and POST /api/reload. It has no authentication: listen on
// loopback or on a private network only.
type Config struct {
	Addr string
	Pos  xmlconf.Pos
}

// ParseConfig reads the admin extension's element, if it is loaded (nil
// when it is not). Problems go into errs with their positions.
func ParseConfig(cfg *xmlconf.Config, errs *xmlconf.ErrorList) *Config {
	for _, ext := range cfg.Extensions {
		if short, _ := ext.ShortName(); short != "admin" || ext.Element == nil {
			continue
		}
		a := &Config{Pos: ext.Pos}
		for _, e := range ext.Element.Children {
			if e.Name != "listen" {
				errs.Add(e.Pos, "<%s>: unknown element in the admin extension (want <listen>)", e.Name)
				continue
			}
			e.CheckAttrs(errs, nil, nil)
			if _, _, err := net.SplitHostPort(e.Text); err != nil {
				errs.Add(e.Pos, "<listen>: %q: want host:port", e.Text)
				continue
			}
			a.Addr = e.Text
		}
		if a.Addr == "" {
			errs.Add(ext.Pos, "admin extension: missing <listen>host:port</listen>")
			return nil
		}
		return a
	}
	return nil
}

// Metrics are the Prometheus metrics of one server.
type Metrics struct {
	// seen caches the series of each (host, rule, status) met, so that a
	// request costs no label hashing. Their number is bounded as the
	// series' own is: hosts x rules x statuses.
	mu   sync.RWMutex
	seen map[obsKey]*series
	// last is the series counted in last: a run of requests of one kind
	// (the usual case) costs no map lookup.
	last atomic.Pointer[series]

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reloads  *prometheus.CounterVec
	lastLoad prometheus.Gauge
}

// NewMetrics creates the server's metrics in a registry of their own,
// with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ocsiproxy_requests_total",
			Help: "Requests answered, by <host> hostfilter, answering rule (file:line, - when none) and status.",
		}, []string{"host", "rule", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ocsiproxy_request_duration_seconds",
			Help:    "Time from the request head to the end of the answer, by <host> hostfilter.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"host"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ocsiproxy_config_reloads_total",
			Help: "Configuration reloads, by result (ok, error).",
		}, []string{"result"}),
		lastLoad: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ocsiproxy_config_last_load_timestamp_seconds",
			Help: "When the configuration serving now was loaded.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.reloads, m.lastLoad,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.lastLoad.SetToCurrentTime()
	return m
}

// Register adds a collector, such as the backend pool's, to the metrics.
func (m *Metrics) Register(c prometheus.Collector) error { return m.registry.Register(c) }

// observe counts one request in the series of its host, rule and status.
func (m *Metrics) observe(host string, rule xmlconf.Pos, status int, d time.Duration) {
	k := obsKey{host, rule, status}
	s := m.last.Load()
	if s == nil || s.key != k {
		m.mu.RLock()
		s = m.seen[k]
		m.mu.RUnlock()
		if s == nil {
			s = m.newSeries(k)
		}
		m.last.Store(s)
	}
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// newSeries looks up the series of k by their labels, once: the first
// request of its kind.
func (m *Metrics) newSeries(k obsKey) *series {
	label, ruleLabel := k.host, "-"
	if label == "" {
		label = "-"
	}
	if k.rule.File != "" {
		ruleLabel = k.rule.Short()
	}
	s := &series{key: k, observers: observers{m.requests.WithLabelValues(label, ruleLabel, statusLabel(k.status)), m.duration.WithLabelValues(label)}}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.seen[k]; old != nil {
		return old // made meanwhile by another request
	}
	if m.seen == nil {
		m.seen = make(map[obsKey]*series)
	}
	m.seen[k] = s
	return s
}

// series is what the requests of one kind count in: the kind's key and
// the Prometheus series of its labels.
type series struct {
	key obsKey
	observers
}

// obsKey identifies the series a request counts in.
type obsKey struct {
	host   string
	rule   xmlconf.Pos
	status int
}

// observers are the Prometheus series a request counts in: one for the
// count, one for the duration.
type observers struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// Reloaded counts a reload, failed when err is not nil, and notes the
// time of a good one.
func (m *Metrics) Reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastLoad.SetToCurrentTime()
}

// View is what the admin API needs of the running server.
type View interface {
	// Config returns the configuration serving now.
	Config() *xmlconf.Config
	// Reload loads the configuration file (the current one when file is
	// "") and swaps it in, or says why it cannot.
	Reload(file string) error
	// Upstreams returns the state of the groups of servers of the
	// configuration serving now (none when it has no group).
	Upstreams() []pool.GroupState
	// SetDrained drains a server of a group, or brings it back (see
	// [pool.Pool.SetDrained]).
	SetDrained(group, server string, drained bool) error
}

// NewHandler returns the admin endpoints: /healthz, /metrics (m), GET
// /api/config, POST /api/reload, GET /api/upstreams and POST
// /api/upstreams/{group}/{server}/drain and .../undrain (v). {server} is
// the server's index in its group (from 0, in document order) or its url
// as written, percent-encoded ("http%3A%2F%2F10.0.0.1%3A8080"); an
// unknown group or server is 404.
func NewHandler(m *Metrics, v View) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, describeConfig(v.Config()))
	})
	mux.HandleFunc("POST /api/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := v.Reload(r.URL.Query().Get("file")); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, reloadRefused{Error: err.Error(), Errors: problems(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /api/upstreams", func(w http.ResponseWriter, r *http.Request) {
		groups := []groupJSON{}
		for _, g := range v.Upstreams() {
			groups = append(groups, describeGroup(g))
		}
		writeJSON(w, http.StatusOK, map[string]any{"groups": groups})
	})
	drain := func(drained bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			group, server := r.PathValue("group"), r.PathValue("server")
			if err := v.SetDrained(group, server, drained); err != nil {
				status := http.StatusInternalServerError
				if errors.Is(err, pool.ErrNoGroup) || errors.Is(err, pool.ErrNoServer) {
					status = http.StatusNotFound
				}
				writeJSON(w, status, map[string]any{"ok": false, "error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "group": group, "server": server, "drained": drained})
		}
	}
	mux.HandleFunc("POST /api/upstreams/{group}/{server}/drain", drain(true))
	mux.HandleFunc("POST /api/upstreams/{group}/{server}/undrain", drain(false))
	return mux
}

// groupJSON is one group as GET /api/upstreams shows it.
type groupJSON struct {
	Name    string       `json:"name"`
	Balance string       `json:"balance"`
	Servers []serverJSON `json:"servers"`
}

// serverJSON is one server of a group; DownUntil is set only while the
// server is down (RFC 3339, UTC).
type serverJSON struct {
	Index          int    `json:"index"`
	URL            string `json:"url"`
	Key            string `json:"key"`
	Addr           string `json:"addr,omitempty"`
	Weight         int    `json:"weight"`
	Backup         bool   `json:"backup"`
	State          string `json:"state"`
	DownUntil      string `json:"down_until,omitempty"`
	RecentFailures int    `json:"recent_failures"`
	InFlight       int64  `json:"in_flight"`
	Requests       uint64 `json:"requests"`
	Failures       uint64 `json:"failures"`
	Ejections      uint64 `json:"ejections"`
	ProbeDown      bool   `json:"probe_down"`
	Probes         uint64 `json:"probes"`
	ProbeFailures  uint64 `json:"probe_failures"`
}

func describeGroup(g pool.GroupState) groupJSON {
	j := groupJSON{Name: g.Name, Balance: g.Balance, Servers: []serverJSON{}}
	for _, s := range g.Servers {
		sj := serverJSON{Index: s.Index, URL: s.URL, Key: s.Key, Addr: s.Addr, Weight: s.Weight, Backup: s.Backup, State: s.State,
			RecentFailures: s.RecentFailures, InFlight: s.InFlight, Requests: s.Requests, Failures: s.Failures, Ejections: s.Ejections,
			ProbeDown: s.ProbeDown, Probes: s.Probes, ProbeFailures: s.ProbeFailures}
		if !s.DownUntil.IsZero() {
			sj.DownUntil = s.DownUntil.UTC().Format(time.RFC3339Nano)
		}
		j.Servers = append(j.Servers, sj)
	}
	return j
}

// reloadRefused is the answer of a refused reload: ok is false, error is
// the whole message, and errors lists the problems one by one.
type reloadRefused struct {
	OK     bool      `json:"ok"`
	Error  string    `json:"error"`
	Errors []problem `json:"errors"`
}

// problem is one configuration problem; File is "" and Line and Col are
// 0 for a problem without a position.
type problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

// problems lists the positioned problems of err (an [xmlconf.ErrorList]
// it wraps), or err itself as one problem without a position.
func problems(err error) []problem {
	var el xmlconf.ErrorList
	if !errors.As(err, &el) {
		return []problem{{Message: err.Error()}}
	}
	ps := make([]problem, len(el))
	for i, e := range el {
		ps[i] = problem{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
	}
	return ps
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// elementJSON is one configuration element as /api/config shows it.
type elementJSON struct {
	Element  string            `json:"element"`
	Pos      string            `json:"pos"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	Text     string            `json:"text,omitempty"`
	Children []elementJSON     `json:"children,omitempty"`
}

func describeElement(e *xmlconf.Element) elementJSON {
	j := elementJSON{Element: e.Name, Pos: e.Pos.String(), Text: e.Text}
	if len(e.Attrs) > 0 {
		j.Attrs = make(map[string]string, len(e.Attrs))
		for _, a := range e.Attrs {
			j.Attrs[a.Name] = a.Value
		}
	}
	for _, c := range e.Children {
		j.Children = append(j.Children, describeElement(c))
	}
	return j
}

// describeConfig is what GET /api/config shows: the file and, per
// <host>, its instructions as written.
func describeConfig(cfg *xmlconf.Config) map[string]any {
	type hostJSON struct {
		Hostfilter string        `json:"hostfilter"`
		Pos        string        `json:"pos"`
		Rules      []elementJSON `json:"rules"`
	}
	var hosts []hostJSON
	for _, h := range cfg.Hosts {
		hj := hostJSON{Hostfilter: h.Filter, Pos: h.Pos.String()}
		for _, e := range h.Body {
			hj.Rules = append(hj.Rules, describeElement(e))
		}
		hosts = append(hosts, hj)
	}
	return map[string]any{"file": cfg.File, "hosts": hosts}
}

// statusLabels holds the decimal text of every status, so that counting a
// request allocates no label.
var statusLabels = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}

// PoolCollector exposes the backend pool's statistics, read at each
// scrape by stats from the pool of the configuration serving now.
// Counters restart from zero after a reload (a new pool), which
// Prometheus's rate() handles as a counter reset.
func PoolCollector(stats func() []pool.Stats) prometheus.Collector { return poolCollector{stats} }

type poolCollector struct{ stats func() []pool.Stats }

type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(st *pool.Stats) float64
}

var poolMetrics = func() []poolMetric {
	g := func(name, help string, v func(*pool.Stats) float64) poolMetric {
		return poolMetric{prometheus.NewDesc("ocsiproxy_pool_"+name, help, []string{"upstream"}, nil), prometheus.GaugeValue, v}
	}
	c := func(name, help string, v func(*pool.Stats) uint64) poolMetric {
		return poolMetric{prometheus.NewDesc("ocsiproxy_pool_"+name+"_total", help, []string{"upstream"}, nil), prometheus.CounterValue,
			func(st *pool.Stats) float64 { return float64(v(st)) }}
	}
	return []poolMetric{
		g("connections_open", "Backend connections open.", func(st *pool.Stats) float64 { return float64(st.Open) }),
		g("connections_idle", "Backend connections idle.", func(st *pool.Stats) float64 { return float64(st.Idle) }),
		g("connections_dialing", "Backend connections being opened.", func(st *pool.Stats) float64 { return float64(st.Dialing) }),
		g("in_flight", "Requests sent and not yet answered.", func(st *pool.Stats) float64 { return float64(st.InFlight) }),
		g("waiting", "Requests waiting for a connection.", func(st *pool.Stats) float64 { return float64(st.Waiting) }),
		g("pipeline_depth", "Requests outstanding on the busiest connection.", func(st *pool.Stats) float64 { return float64(st.Depth) }),
		g("pipeline_depth_max", "The deepest pipeline seen.", func(st *pool.Stats) float64 { return float64(st.MaxDepth) }),
		g("distrusted", "1 while pipelining to the upstream is off after a failure.", func(st *pool.Stats) float64 {
			if st.Distrusted {
				return 1
			}
			return 0
		}),
		c("requests", "Requests sent.", func(st *pool.Stats) uint64 { return st.Requests }),
		c("pipelined", "Requests written while another was in flight on the connection.", func(st *pool.Stats) uint64 { return st.Pipelined }),
		c("retries", "Requests sent again after their connection failed.", func(st *pool.Stats) uint64 { return st.Retries }),
		c("requeued", "Requests sent again after their connection closed politely.", func(st *pool.Stats) uint64 { return st.Requeued }),
		c("hol_resends", "Requests sent again after waiting behind a streamed body.", func(st *pool.Stats) uint64 { return st.HOLResends }),
		c("poisoned", "Connections closed on a response framing error.", func(st *pool.Stats) uint64 { return st.Poisoned }),
		c("early_closes", "Connections the backend closed with requests unanswered.", func(st *pool.Stats) uint64 { return st.EarlyCloses }),
		c("distrusts", "Times pipelining was turned off after a failure.", func(st *pool.Stats) uint64 { return st.Distrusts }),
		c("dials", "Connections opened.", func(st *pool.Stats) uint64 { return st.Dials }),
		c("dial_errors", "Connections that could not be opened.", func(st *pool.Stats) uint64 { return st.DialErrors }),
		c("timeouts", "Calls that ran out of time.", func(st *pool.Stats) uint64 { return st.Timeouts }),
		c("abandoned", "Calls given up by their client.", func(st *pool.Stats) uint64 { return st.Abandoned }),
		c("drained", "Responses read to their end after their client left.", func(st *pool.Stats) uint64 { return st.Drained }),
	}
}()

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range poolMetrics {
		ch <- m.desc
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.stats() {
		for _, m := range poolMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&st), st.Upstream)
		}
	}
}

// Begin does nothing: metrics count requests once they are over (the
// request handler's observer).
func (m *Metrics) Begin(*stage.State) func(error) { return nil }

// Done counts a request by host, answering rule and status, with its
// duration (the request handler's observer).
func (m *Metrics) Done(st *stage.State, status int, _ int64, d time.Duration, _ error) {
	var host string
	var rule xmlconf.Pos
	if st != nil {
		host, rule = st.HostFilter, st.AnswerPos
	}
	m.observe(host, rule, status, d)
}

// GroupCollector exposes the state of the groups of servers, read at each
// scrape by states from the pool of the configuration serving now, with
// the labels group, server (the server's url as written) and addr (for
// a server with resolve=, the address the series is about; "" for the
// others):
// ocsiproxy_group_server_state (1 for the server's state label, up, down,
// trial or draining, 0 for the others), ocsiproxy_group_server_in_flight
// and the counters ocsiproxy_group_server_requests_total, _failures_total
// and _ejections_total, and, for a group with <health>,
// ocsiproxy_group_server_probes_total{result="ok"|"failed"}. A reload
// carries the counters of the servers it keeps (see
// [pool.Pool.Inherit]); those of the others start from zero.
func GroupCollector(states func() []pool.GroupState) prometheus.Collector {
	return groupCollector{states}
}

type groupCollector struct{ states func() []pool.GroupState }

var (
	groupLabels   = []string{"group", "server", "addr"}
	groupStateDsc = prometheus.NewDesc("ocsiproxy_group_server_state",
		"1 for the state the server of a group is in (up, down, trial, draining), 0 for the others.", append(groupLabels, "state"), nil)
	groupInFlightDsc = prometheus.NewDesc("ocsiproxy_group_server_in_flight",
		"Requests sent to the server whose response body is not closed yet.", groupLabels, nil)
	groupRequestsDsc = prometheus.NewDesc("ocsiproxy_group_server_requests_total",
		"Requests the group sent to the server.", groupLabels, nil)
	groupFailuresDsc = prometheus.NewDesc("ocsiproxy_group_server_failures_total",
		"Failures of the server counted by passive health.", groupLabels, nil)
	groupEjectionsDsc = prometheus.NewDesc("ocsiproxy_group_server_ejections_total",
		"Times passive health took the server out after failures.", groupLabels, nil)
	groupProbesDsc = prometheus.NewDesc("ocsiproxy_group_server_probes_total",
		"Active health probes of the server, by result (ok, failed).", append(groupLabels, "result"), nil)
	serverStates = []string{pool.StateUp, pool.StateDown, pool.StateTrial, pool.StateDraining}
)

func (c groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{groupStateDsc, groupInFlightDsc, groupRequestsDsc, groupFailuresDsc, groupEjectionsDsc, groupProbesDsc} {
		ch <- d
	}
}

func (c groupCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.states() {
		for _, s := range g.Servers {
			for _, st := range serverStates {
				v := 0.0
				if s.State == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(groupStateDsc, prometheus.GaugeValue, v, g.Name, s.URL, s.Addr, st)
			}
			ch <- prometheus.MustNewConstMetric(groupInFlightDsc, prometheus.GaugeValue, float64(s.InFlight), g.Name, s.URL, s.Addr)
			ch <- prometheus.MustNewConstMetric(groupRequestsDsc, prometheus.CounterValue, float64(s.Requests), g.Name, s.URL, s.Addr)
			ch <- prometheus.MustNewConstMetric(groupFailuresDsc, prometheus.CounterValue, float64(s.Failures), g.Name, s.URL, s.Addr)
			ch <- prometheus.MustNewConstMetric(groupEjectionsDsc, prometheus.CounterValue, float64(s.Ejections), g.Name, s.URL, s.Addr)
			if s.Probes > 0 {
				ch <- prometheus.MustNewConstMetric(groupProbesDsc, prometheus.CounterValue, float64(s.Probes-s.ProbeFailures), g.Name, s.URL, s.Addr, "ok")
				ch <- prometheus.MustNewConstMetric(groupProbesDsc, prometheus.CounterValue, float64(s.ProbeFailures), g.Name, s.URL, s.Addr, "failed")
			}
		}
	}
}
