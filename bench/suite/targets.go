package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// target is one proxy under test, on the shared backend.
type target struct {
	name  string // as shown in the tables
	kind  string // ocsiproxy, nginx, haproxy, floor
	port  int
	rules int // 0: the one catch-all rule; N: the rules scenario's N rules
	// group is 0, or the number of servers of the group (the groups
	// scenario) the catch-all rule sends to; backends are then the
	// processes of those servers, whose CPU is the backend's.
	group    int
	backends []*proc
	proc     *proc
}

func (t *target) addr() string { return fmt.Sprintf("127.0.0.1:%d", t.port) }

// rulePath is the request the rules scenario sends: it matches the last
// of n rules.
func rulePath(n int) string { return fmt.Sprintf("/svc%d/v1/item?id=7", n-1) }

// launch writes the target's configuration under dir and starts it.
func (s *suite) launch(t *target) error {
	dir := filepath.Join(s.run, t.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var argv []string
	var env []string
	switch t.kind {
	case "ocsiproxy":
		for _, d := range []string{"log", "data"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if !s.logs {
			// ocsiproxy always writes its access log, as Ocsigen does.
			os.Symlink("/dev/null", filepath.Join(dir, "log", "access.log"))
		}
		conf := filepath.Join(dir, "ocsiproxy.conf")
		if err := os.WriteFile(conf, []byte(s.ocsiproxyConf(t, dir)), 0o644); err != nil {
			return err
		}
		argv = []string{s.ocsiproxy, "-s", "-c", conf}
		if s.gomaxprocs != "" {
			env = append(env, "GOMAXPROCS="+s.gomaxprocs)
		}
	case "nginx":
		for _, d := range []string{"logs", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(s.nginxConf(t, dir)), 0o644); err != nil {
			return err
		}
		argv = []string{"nginx", "-p", dir, "-c", conf}
	case "floor":
		flags, _ := floorFlags(t.name)
		argv = append([]string{filepath.Join(s.bin, "floor"), "-listen", t.addr(),
			"-backend", fmt.Sprintf("127.0.0.1:%d", s.backendPort)}, flags...)
	case "haproxy":
		conf := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(conf, []byte(s.haproxyConf(t)), 0o644); err != nil {
			return err
		}
		argv = []string{"haproxy", "-db", "-f", conf}
	default:
		return fmt.Errorf("unknown target kind %q", t.kind)
	}
	p, err := start(t.name, s.proxyCPUs, filepath.Join(dir, "output.log"), env, argv...)
	if err != nil {
		return err
	}
	t.proc = p
	path := "/"
	if t.rules > 0 {
		path = rulePath(t.rules)
	}
	if err := waitHTTP(t.addr(), path, s.tls, p); err != nil {
		return fmt.Errorf("%s did not come up on %s: %v\n%s", t.name, t.addr(), err, p.tail())
	}
	return nil
}

// accessLogs are the access log files of t, truncated between runs.
func (s *suite) accessLogs(t *target) []string {
	dir := filepath.Join(s.run, t.name)
	switch t.kind {
	case "ocsiproxy":
		return []string{filepath.Join(dir, "log", "access.log")}
	case "nginx":
		return []string{filepath.Join(dir, "logs", "access.log")}
	case "haproxy":
		return []string{filepath.Join(dir, "output.log")}
	}
	return nil
}

// ocsiproxyConf: one catch-all revproxy rule, or the rules scenario's n
// rules "svcI/(v1|v2)/(.*)" (each a regexp with a literal prefix; the
// requests match the last one).
func (s *suite) ocsiproxyConf(t *target, dir string) string {
	var rules strings.Builder
	ext := `<extension findlib-package="ocsigenserver.ext.revproxy"/>`
	switch {
	case t.group > 0:
		// One group of servers, balanced round robin.
		var servers strings.Builder
		for _, port := range s.groupPorts()[:t.group] {
			fmt.Fprintf(&servers, "\n        <server url=\"http://127.0.0.1:%d\"/>", port)
		}
		ext = fmt.Sprintf("<extension findlib-package=\"ocsigenserver.ext.revproxy\">\n      <upstream name=\"g\" balance=\"round_robin\">%s\n      </upstream>\n    </extension>", servers.String())
		rules.WriteString("      <revproxy suburl=\"(.*)\" dest=\"http://g/\\1\"/>\n")
	case t.rules == 0:
		fmt.Fprintf(&rules, "      <revproxy suburl=\"(.*)\" dest=\"http://127.0.0.1:%d/\\1\"/>\n", s.backendPort)
	}
	for i := range t.rules {
		fmt.Fprintf(&rules, "      <revproxy suburl=\"svc%d/(v1|v2)/(.*)\" dest=\"http://127.0.0.1:%d/\\2\"/>\n", i, s.backendPort)
	}
	port := fmt.Sprintf("<port>127.0.0.1:%d</port>", t.port)
	if s.tls {
		port = fmt.Sprintf("<port protocol=\"HTTPS\">127.0.0.1:%d</port>\n    <ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>", t.port, s.certFile, s.keyFile)
	}
	return fmt.Sprintf(`<ocsigen>
  <server>
    %s
    <logdir>%s/log</logdir>
    <datadir>%s/data</datadir>
    <maxconnected>%d</maxconnected>
    <keepalivetimeout>300</keepalivetimeout>
    <findlib path="/usr/lib/ocaml"/>
    %s
    <host hostfilter="*">
%s    </host>
  </server>
</ocsigen>
`, port, dir, dir, s.idleConns+1000, ext, rules.String())
}

// nginxConf: HTTP/1.1 upstream keep-alive, X-Forwarded-For and
// X-Forwarded-Proto set as ocsiproxy sets them, buffers large enough for
// 64 KiB answers, one worker per CPU the proxy may use; regexp locations
// in the rules scenario.
func (s *suite) nginxConf(t *target, dir string) string {
	accessLog := "off"
	if s.logs {
		accessLog = dir + "/logs/access.log combined"
	}
	servers := fmt.Sprintf("        server 127.0.0.1:%d;\n", s.backendPort)
	if t.group > 0 {
		// The groups scenario: an upstream of t.group servers, round
		// robin (nginx's default).
		servers = ""
		for _, port := range s.groupPorts()[:t.group] {
			servers += fmt.Sprintf("        server 127.0.0.1:%d;\n", port)
		}
	}
	listen := fmt.Sprintf("listen 127.0.0.1:%d backlog=4096;", t.port)
	if s.tls {
		listen = fmt.Sprintf("listen 127.0.0.1:%d ssl backlog=4096;\n        ssl_certificate %s;\n        ssl_certificate_key %s;", t.port, s.certFile, s.keyFile)
	}
	var locations strings.Builder
	if t.rules == 0 {
		locations.WriteString("        location / { proxy_pass http://backend; }\n")
	}
	for i := range t.rules {
		fmt.Fprintf(&locations, "        location ~ ^/svc%d/(v1|v2)/(.*)$ { proxy_pass http://backend/$2$is_args$args; }\n", i)
	}
	return fmt.Sprintf(`worker_processes %d;
worker_rlimit_nofile %d;
daemon off;
master_process on;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events {
    worker_connections %d;
    multi_accept on;
}
http {
    access_log %s;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream backend {
%s        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        %s
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_buffer_size 16k;
        proxy_buffers 16 16k;
        proxy_busy_buffers_size 32k;
        proxy_max_temp_file_size 0;
%s    }
}
`, s.proxyNCPU, s.fdLimit, dir, dir, min(2*s.idleConns+1000, s.fdLimit), accessLog, dir, dir, dir, dir, dir,
		servers, listen, locations.String())
}

// haproxyConf: HTTP mode, keep-alive both sides, idle backend connections
// shared, X-Forwarded-For and X-Forwarded-Proto set.
func (s *suite) haproxyConf(t *target) string {
	logs := ""
	if s.logs {
		logs = "    log stdout format raw local0 info\n"
	}
	defLog := ""
	if s.logs {
		defLog = "    log global\n    option httplog\n"
	}
	bindTLS := ""
	if s.tls {
		bindTLS = " ssl crt " + s.pemFile + " alpn http/1.1"
	}
	// A limit on open files below what maxconn asks for is a warning,
	// not a refusal to start (a user who is not root cannot raise it).
	return fmt.Sprintf(`global
    nbthread %d
    maxconn %d
    ulimit-n %d
    no strict-limits
    tune.bufsize 16384
%sdefaults
    mode http
%s    option http-keep-alive
    option forwardfor
    http-reuse safe
    maxconn %d
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:%d%s
    http-request set-header X-Forwarded-Proto %s
    default_backend be
backend be
    server b1 127.0.0.1:%d pool-max-conn -1
`, s.proxyNCPU, s.idleConns+500, s.fdLimit, logs, defLog, s.idleConns+500, t.port, bindTLS, s.scheme(), s.backendPort)
}
