package adversarial

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/server"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// The three proxies get the same job, each in its usual idiom:
//
//   - listen on 127.0.0.1, forward everything to the backend with path and
//     query as received, keep-alive connections to the backend;
//   - refuse paths beginning with /admin with 403 (a string prefix, as
//     nginx's "location /admin" and HAProxy's path_beg);
//   - 2 s to read a request head and to wait for the backend's head,
//     5 s keep-alive, 8 kB of request head, 1 MiB of request body;
//   - X-Forwarded-For: only the peer address (a client's own is dropped,
//     and so is its Forwarded); X-Forwarded-Proto: http;
//   - request and response bodies streamed, WebSocket upgrades tunnelled.
//
// Everything else is each proxy's default.
type proxy struct {
	name string
	addr string
}

// adminRule is ocsiproxy's spelling of the /admin prefix rule.
const adminRule = `<if><path regexp="admin.*"/><then><forbidden/></then></if>`

func startOcsiproxy(t testing.TB, backend string) *proxy {
	t.Helper()
	return startOcsiproxyConf(t, ocsiproxyServer(backend))
}

// startOcsiproxyPipelined is ocsiproxy with pipelining to the backend
// on: four connections, up to eight requests in flight on each.
func startOcsiproxyPipelined(t testing.TB, backend string) *proxy {
	t.Helper()
	ext := strings.Replace(extensionLines, `<extension findlib-package="ocsigenserver.ext.revproxy"/>`,
		`<extension findlib-package="ocsigenserver.ext.revproxy"><pool workers="4" pipeline_depth="8" probation="1" distrust="1s"/></extension>`, 1)
	_, p := startOcsiproxyRunExt(t, ext, ocsiproxyServer(backend))
	p.name = "ocsiproxy-pipelined"
	return p
}

func ocsiproxyServer(backend string) string {
	return `<port>127.0.0.1:0</port>
<timeout>2</timeout>
<keepalivetimeout>5</keepalivetimeout>
<netbuffersize>8kiB</netbuffersize>
<maxrequestbodysize>1MiB</maxrequestbodysize>
<host>` + adminRule + `
<revproxy suburl="(.*)" dest="http://` + backend + `/\1"/>
</host>`
}

const extensionLines = `
<extension findlib-package="ocsigenserver.ext.revproxy"/>
<extension findlib-package="ocsigenserver.ext.redirectmod"/>
<extension findlib-package="ocsigenserver.ext.rewritemod"/>
<extension findlib-package="ocsigenserver.ext.outputfilter"/>
<extension findlib-package="ocsigenserver.ext.accesscontrol"/>`

// ocsiproxyRun is an in-process ocsiproxy.
type ocsiproxyRun struct {
	srv  *server.Server
	file string
	logs *accesslog.Logs
}

// startOcsiproxyConf serves the <server> children serverXML with
// server.New, Listen and Serve, as the binary does.
func startOcsiproxyConf(t testing.TB, serverXML string) *proxy {
	t.Helper()
	_, p := startOcsiproxyRun(t, serverXML)
	return p
}

func startOcsiproxyRun(t testing.TB, serverXML string) (*ocsiproxyRun, *proxy) {
	t.Helper()
	return startOcsiproxyRunExt(t, extensionLines, serverXML)
}

func startOcsiproxyRunExt(t testing.TB, ext, serverXML string) (*ocsiproxyRun, *proxy) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "ocsiproxy.conf")
	writeConfExt(t, file, ext, serverXML)
	cfg, err := xmlconf.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := accesslog.OpenLogs(cfg.LogDir, accesslog.Normal, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("ocsiproxy did not stop")
		}
		logs.Close()
	})
	return &ocsiproxyRun{srv: srv, file: file, logs: logs}, &proxy{name: "ocsiproxy", addr: srv.Addrs()[0].String()}
}

func writeConf(t testing.TB, file, serverXML string) {
	t.Helper()
	writeConfExt(t, file, extensionLines, serverXML)
}

func writeConfExt(t testing.TB, file, ext, serverXML string) {
	t.Helper()
	src := "<ocsigen><server>\n" + ext + "\n" + serverXML + "\n</server></ocsigen>\n"
	if err := os.WriteFile(file+".tmp", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port nobody listens on (for the external
// proxies, which cannot report the port they got).
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  client_header_timeout 2s;
  client_body_timeout 2s;
  keepalive_timeout 5s;
  send_timeout 5s;
  client_header_buffer_size 1k;
  large_client_header_buffers 4 8k;
  client_max_body_size 1m;
  proxy_connect_timeout 2s;
  proxy_read_timeout 2s;
  proxy_send_timeout 2s;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream backend { server %[3]s; keepalive 16; }
  server {
    listen 127.0.0.1:%[2]d;
    location /admin { return 403; }
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Forwarded "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`

const haproxyConf = `global
  maxconn 1000
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 2s
  timeout http-request 2s
  timeout http-keep-alive 5s
  timeout tunnel 10s
frontend fe
  bind 127.0.0.1:%[1]d
  http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }
  http-request deny deny_status 403 if { path_beg /admin }
  http-request del-header X-Forwarded-For
  http-request del-header Forwarded
  http-request set-header X-Forwarded-Proto http
  option forwardfor
  default_backend be
backend be
  server s1 %[2]s
`

// startExternal runs a proxy binary in the foreground on loopback and
// kills it, by its PID, when the test ends.
func startExternal(t testing.TB, name, backend string) *proxy {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	dir := t.TempDir()
	port := freePort(t)
	var cmd *exec.Cmd
	switch name {
	case "nginx":
		for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			os.Mkdir(filepath.Join(dir, d), 0o755)
		}
		conf := filepath.Join(dir, "nginx.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, port, backend)), 0o644)
		cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	case "haproxy":
		conf := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(conf, []byte(fmt.Sprintf(haproxyConf, port, backend)), 0o644)
		cmd = exec.Command(bin, "-f", conf, "-db")
	default:
		t.Fatalf("unknown proxy %s", name)
	}
	out, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
		out.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			elog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("%s did not start: %s %s", name, log, elog)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &proxy{name: name, addr: addr}
}

func version(name string) string {
	out, err := exec.Command(name, "-v").CombinedOutput()
	if err != nil && len(out) == 0 {
		return name
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
