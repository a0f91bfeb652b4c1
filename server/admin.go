package server

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// AdminConfig is the admin listener, configured by
//
//	<extension findlib-package="ocsiproxy.ext.admin">
//	  <listen>127.0.0.1:9090</listen>
//	</extension>
//
// It is off when the extension is not loaded. It serves /healthz,
// /metrics (Prometheus), GET /api/config (the loaded hosts and rules as
// JSON) and POST /api/reload. It has no authentication: listen on
// loopback or on a private network only.
type AdminConfig struct {
	Addr string
	Pos  xmlconf.Pos
}

// parseAdmin reads the admin extension's element, if it is loaded.
func parseAdmin(cfg *xmlconf.Config, errs *xmlconf.ErrorList) *AdminConfig {
	for _, ext := range cfg.Extensions {
		if short, _ := extensionShortName(ext.Name); short != "admin" || ext.Element == nil {
			continue
		}
		a := &AdminConfig{Pos: ext.Pos}
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
	seen map[obsKey]observers

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

func (m *Metrics) observe(host string, rule xmlconf.Pos, status int, d time.Duration) {
	k := obsKey{host, rule, status}
	m.mu.RLock()
	o, ok := m.seen[k]
	m.mu.RUnlock()
	if !ok {
		// The first request of its kind: look the series up by their
		// labels once.
		label, ruleLabel := host, "-"
		if label == "" {
			label = "-"
		}
		if rule.File != "" {
			ruleLabel = rule.Short()
		}
		o = observers{m.requests.WithLabelValues(label, ruleLabel, statusLabel(status)), m.duration.WithLabelValues(label)}
		m.mu.Lock()
		if m.seen == nil {
			m.seen = make(map[obsKey]observers)
		}
		m.seen[k] = o
		m.mu.Unlock()
	}
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
}

// obsKey identifies the series a request counts in.
type obsKey struct {
	host   string
	rule   xmlconf.Pos
	status int
}

// observers are the series of one obsKey.
type observers struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastLoad.SetToCurrentTime()
}

// adminHandler serves the admin endpoints of s.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, describeConfig(s.Handler.Tree().cfg))
	})
	mux.HandleFunc("POST /api/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Reload(r.URL.Query().Get("file")); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	return mux
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
