package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// wsServe answers a WebSocket-style upgrade with 101, then its name and
// ":", then echoes every byte; any other request gets 400.
func wsServe(name string) func(c *rawConn) {
	return func(c *rawConn) {
		req, _, err := c.request()
		if err != nil {
			return
		}
		if req.Header.Get("Upgrade") != "websocket" {
			c.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		c.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + name + ":")
		io.Copy(c.Conn, c.br)
	}
}

// upgradeVia opens an upgrade to url through rt, checks that its tunnel
// echoes, closes it, and returns the name of the server that answered,
// "503" for an [*UnavailableError] or "error".
func upgradeVia(t *testing.T, rt http.RoundTripper, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := rt.RoundTrip(req)
	if errors.As(err, new(*UnavailableError)) {
		return "503"
	}
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade to %s: status %d", url, resp.StatusCode)
	}
	tun, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("upgrade to %s: the body %T is no tunnel", url, resp.Body)
	}
	br := bufio.NewReader(tun)
	name, err := br.ReadString(':')
	if err != nil {
		t.Fatalf("upgrade to %s: %v", url, err)
	}
	io.WriteString(tun, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("upgrade to %s: echo %q, %v", url, got, err)
	}
	return strings.TrimSuffix(name, ":")
}

// TestGroupUpgrade: an upgrade to a group goes to a server its balancer
// picks, skipping the servers that are down or drained and retrying on
// another one after a refused connection; it counts in flight until its
// tunnel is closed; an upgrade to a host goes to that host.
func TestGroupUpgrade(t *testing.T) {
	a := newRawBackend(t, wsServe("a"))
	b := newRawBackend(t, wsServe("b"))
	bk := newRawBackend(t, wsServe("backup"))
	refused := refusedAddr(t)
	tests := []struct {
		name, servers string
		setup         func(p *Pool)
		url           string // default http://api/ws
		want          string // the servers that answered, in order
		wantStates    string // the servers' states after
	}{
		{"round robin", `<server url="http://` + a.addr + `"/><server url="http://` + b.addr + `"/>`,
			nil, "", "a b a b", "up up"},
		{"weights", `<server url="http://` + a.addr + `" weight="2"/><server url="http://` + b.addr + `"/>`,
			nil, "", "a b a a b a", "up up"},
		// The refused server is tried once, then out: its try is
		// repeated on b.
		{"refused: retried, then skipped", `<server url="http://` + refused + `" fail_timeout="1h"/><server url="http://` + b.addr + `"/>`,
			nil, "", "b b b", "down up"},
		{"drained", `<server url="http://` + a.addr + `"/><server url="http://` + b.addr + `"/>`,
			func(p *Pool) { p.SetDrained("api", "0", true) }, "", "b b", "draining up"},
		{"backup", `<server url="http://` + a.addr + `"/><server url="http://` + bk.addr + `" backup="true"/>`,
			func(p *Pool) { p.SetDrained("api", "0", true) }, "", "backup backup", "draining up"},
		{"all drained", `<server url="http://` + a.addr + `"/>`,
			func(p *Pool) { p.SetDrained("api", "0", true) }, "", "503", "draining"},
		{"a host, not the group", `<server url="http://` + a.addr + `"/>`,
			nil, "http://" + b.addr + "/ws", "b", "up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := groupPool(t, `<upstream name="api" balance="round_robin">`+tt.servers+`</upstream>`)
			if tt.setup != nil {
				tt.setup(p)
			}
			rt := p.Upgrader(hang)
			url := tt.url
			if url == "" {
				url = "http://api/ws"
			}
			var got []string
			for range len(strings.Fields(tt.want)) {
				got = append(got, upgradeVia(t, rt, url))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("answered by %q, want %q", g, tt.want)
			}
			var states []string
			for _, s := range p.GroupStates()[0].Servers {
				states = append(states, s.State)
				if s.InFlight != 0 {
					t.Errorf("server %s: %d in flight after the tunnels were closed", s.URL, s.InFlight)
				}
			}
			if g := strings.Join(states, " "); g != tt.wantStates {
				t.Errorf("states %q, want %q", g, tt.wantStates)
			}
		})
	}
}

// TestGroupUpgradeInFlight: a tunnel counts in flight on its server until
// it is closed, so least_conn sends the next upgrade elsewhere.
func TestGroupUpgradeInFlight(t *testing.T) {
	a := newRawBackend(t, wsServe("a"))
	b := newRawBackend(t, wsServe("b"))
	p := groupPool(t, `<upstream name="api" balance="least_conn"><server url="http://`+a.addr+`"/><server url="http://`+b.addr+`"/></upstream>`)
	rt := p.Upgrader(hang)
	req, _ := http.NewRequest("GET", "http://api/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("first upgrade: %v %v", resp, err)
	}
	if s := p.GroupStates()[0].Servers; s[0].InFlight+s[1].InFlight != 1 {
		t.Errorf("with a tunnel open: in flight %d and %d, want 1 in all", s[0].InFlight, s[1].InFlight)
	}
	first, _ := bufio.NewReader(resp.Body).ReadString(':')
	for range 3 {
		if got := upgradeVia(t, rt, "http://api/ws"); got+":" == first {
			t.Errorf("an upgrade went to %s, which has a tunnel open", got)
		}
	}
	resp.Body.Close()
	if s := p.GroupStates()[0].Servers; s[0].InFlight+s[1].InFlight != 0 {
		t.Errorf("after the tunnel was closed: in flight %d and %d", s[0].InFlight, s[1].InFlight)
	}
}

// TestGroupUpgradeTLS: an upgrade to an https server of a group is made
// with the server's TLS settings (here a cacertfile, without which the
// certificate would not verify).
func TestGroupUpgradeTLS(t *testing.T) {
	certPEM, keyPEM := genCert(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(hang))
				wsServe("tls")(&rawConn{Conn: c, br: bufio.NewReader(c)})
			}()
		}
	}()
	addr := ln.Addr().String()
	for _, tt := range []struct {
		name, tls, want string
	}{
		{"its cacertfile", `<tls cacertfile="` + ca + `"/>`, "tls"},
		{"the system roots", ``, "error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := groupPool(t, `<upstream url="https://`+addr+`">`+tt.tls+`</upstream>
<upstream name="api"><server url="https://`+addr+`"/></upstream>`)
			if got := upgradeVia(t, p.Upgrader(hang), "http://api/ws"); got != tt.want {
				t.Errorf("answered by %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCloseClosesUpgradeIdle: an upgrade request answered without a
// switch leaves its connection idle in the Upgrader's transport; closing
// the pool (a reload replaces it) closes that connection.
func TestCloseClosesUpgradeIdle(t *testing.T) {
	var opened, closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "no switch here")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := testPool(t, nil)
	rt := p.Upgrader(0)
	for range 2 {
		req, _ := http.NewRequest("GET", srv.URL+"/ws", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d connections opened, want 1 (kept idle between the requests)", n)
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d connections closed before the pool, want 0", n)
	}
	p.Close()
	waitFor(t, "the idle upgrade connection closed", func() bool { return closed.Load() == 1 })
}
