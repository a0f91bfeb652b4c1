package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/internal/syncbuf"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// syslogSocket opens a Unix datagram socket for a test, standing for
// /dev/log, in a short temporary directory (socket paths are short).
func syslogSocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// datagram is one syslog message received: its <PRI> and the rest.
type datagram struct {
	pri  int
	text string
}

var priRE = regexp.MustCompile(`(?s)^<(\d+)>(.*)$`)

// readUntil reads datagrams until one matches each pattern (then it
// returns them all) or until the deadline.
func readUntil(t *testing.T, c *net.UnixConn, patterns ...string) []datagram {
	t.Helper()
	var got []datagram
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		all := true
		for _, p := range patterns {
			found := false
			for _, d := range got {
				if regexp.MustCompile(p).MatchString(d.text) {
					found = true
					break
				}
			}
			all = all && found
		}
		if all {
			return got
		}
		n, err := c.Read(buf)
		if err != nil {
			var texts []string
			for _, d := range got {
				texts = append(texts, fmt.Sprintf("<%d>%s", d.pri, d.text))
			}
			t.Fatalf("reading syslog: %v; want %q, got:\n%s", err, patterns, strings.Join(texts, "\n"))
		}
		m := priRE.FindSubmatch(buf[:n])
		if m == nil {
			t.Fatalf("datagram without <PRI>: %q", buf[:n])
		}
		pri, _ := strconv.Atoi(string(m[1]))
		got = append(got, datagram{pri, strings.TrimSuffix(string(m[2]), "\n")})
	}
}

// TestSyslog serves requests with <syslog> and checks the datagrams: the
// facility of <syslog> (daemon by default), the priority of each kind of
// line, the tag, and that no file is written in <logdir>.
func TestSyslog(t *testing.T) {
	b := newBackend(t, nil)
	const (
		severityErr, severityWarning, severityInfo, severityDebug = 3, 4, 6, 7
	)
	tests := []struct {
		name     string
		syslog   string
		level    int
		facility int
	}{
		{"default facility", `<syslog/>`, accesslog.Normal, 3},
		{"local3", `<syslog>Local3</syslog>`, accesslog.Normal, 19},
		{"security, -vv", `<syslog>security</syslog>`, accesslog.VeryVerbose, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock, path := syslogSocket(t)
			dir := t.TempDir()
			stderr := &syncbuf.Buffer{}
			r := startWith(t, dir, `<port>127.0.0.1:0</port><logdir>`+dir+`</logdir>`+tt.syslog+`
<host><revproxy suburl="ok" dest="`+b.URL+`/ok"/><revproxy suburl="down" dest="http://127.0.0.1:1/"/></host>`,
				func(cfg *xmlconf.Config) (*accesslog.Logs, error) {
					return accesslog.OpenSyslog(cfg, "unixgram", path, tt.level, stderr)
				})
			get(t, r.addr(0), "/ok", "h", "User-Agent: syslog-test")
			get(t, r.addr(0), "/down", "h")
			raw(t, r.addr(0), "GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n") // no Host: 400

			tag := `^\w{3} [ \d]\d \d\d:\d\d:\d\d ocsiproxy\[` + strconv.Itoa(os.Getpid()) + `\]: `
			access200 := tag + `127\.0\.0\.1 - - \[[^]]+\] "GET /ok HTTP/1\.1" 200 \d+ "-" "syslog-test" rule=\S+:\d+ ms=`
			access502 := tag + `127\.0\.0\.1 - - \[[^]]+\] "GET /down HTTP/1\.1" 502 `
			errLine := tag + `error: 127\.0\.0\.1 GET "/down": 502: `
			warnLine := tag + `warning: 127\.0\.0\.1 GET "/ok": 400: HTTP/1\.1 request without Host`
			decision := tag + `debug: #1 127\.0\.0\.1 "GET /ok": host "\*" rule \S+: proxy GET `
			want := map[string]int{access200: severityInfo, access502: severityInfo, errLine: severityErr, warnLine: severityWarning}
			if tt.level >= accesslog.VeryVerbose {
				want[decision] = severityDebug
			}
			var patterns []string
			for p := range want {
				patterns = append(patterns, p)
			}
			got := readUntil(t, sock, patterns...)
			for p, sev := range want {
				for _, d := range got {
					if regexp.MustCompile(p).MatchString(d.text) {
						if wantPri := tt.facility*8 + sev; d.pri != wantPri {
							t.Errorf("<%d>%s: priority %d, want %d (facility %d, severity %d)", d.pri, d.text, d.pri, wantPri, tt.facility, sev)
						}
					}
				}
			}
			for _, d := range got {
				if tt.level < accesslog.VeryVerbose && d.pri%8 == severityDebug {
					t.Errorf("debug line at the default level: <%d>%s", d.pri, d.text)
				}
			}
			for _, f := range []string{"access.log", "errors.log", "warnings.log"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s written in <logdir> with <syslog>", f)
				}
			}
			// Warnings and errors are copied to stderr, access lines not.
			if s := stderr.String(); !strings.Contains(s, `error: 127.0.0.1 GET "/down": 502`) || !strings.Contains(s, "warning: 127.0.0.1 GET \"/ok\": 400") || strings.Contains(s, `"GET /ok HTTP/1.1" 200`) {
				t.Errorf("stderr:\n%s", s)
			}
		})
	}
}

// TestSyslogUnreachable checks that a syslog that cannot be reached at
// start is an error naming the position of <syslog>.
func TestSyslogUnreachable(t *testing.T) {
	_, live := syslogSocket(t)
	tests := []struct {
		name          string
		network, addr string
		want          string
	}{
		{"no socket", "unixgram", filepath.Join(t.TempDir(), "nothing"), `t.conf:2:1: <syslog>: cannot reach syslog at /\S+/nothing: dial unixgram`},
		{"stream to a datagram socket", "unix", live, `t.conf:2:1: <syslog>: cannot reach syslog at \S+: dial unix`},
	}
	cfg, err := xmlconf.Parse("t.conf", []byte("<ocsigen><server>\n<syslog>local0</syslog><port>80</port></server></ocsigen>"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, err := accesslog.OpenSyslog(cfg, tt.network, tt.addr, accesslog.Normal, io.Discard)
			if err == nil {
				logs.Close()
				t.Fatalf("accesslog.OpenSyslog(%s %s) succeeded", tt.network, tt.addr)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

// TestSyslogNeverBlocks fills the socket of a syslog that reads nothing:
// logging goes on without waiting, the lines beyond the queue are dropped
// and counted, and when syslog reads again it gets the count. Then the
// socket goes away: requests are still served, and the failure is
// reported once on stderr.
func TestSyslogNeverBlocks(t *testing.T) {
	sock, path := syslogSocket(t)
	sock.SetReadBuffer(4096)
	dir := t.TempDir()
	stderr := &syncbuf.Buffer{}
	b := newBackend(t, nil)
	r := startWith(t, dir, `<port>127.0.0.1:0</port><syslog/>
<host><revproxy suburl="ok" dest="`+b.URL+`/ok"/></host>`,
		func(cfg *xmlconf.Config) (*accesslog.Logs, error) {
			return accesslog.OpenSyslog(cfg, "unixgram", path, accesslog.Normal, stderr)
		})
	// Far more lines than the queue holds, while nothing reads them: if a
	// write waited for syslog, this would never end.
	for i := range 3 * accesslog.SyslogQueueLen {
		r.srv.Logs.Warnf("filler %d", i)
	}
	if resp, _ := get(t, r.addr(0), "/ok", "h"); resp.StatusCode != 200 {
		t.Fatalf("request while syslog is full: %d", resp.StatusCode)
	}
	readUntil(t, sock, `warning: syslog: \d+ lines dropped: too many waiting to be sent`)

	sock.Close()
	os.Remove(path)
	for i := range 3 {
		if resp, _ := get(t, r.addr(0), "/ok", "h"); resp.StatusCode != 200 {
			t.Fatalf("request %d with syslog gone: %d", i, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "ocsiproxy: syslog: ") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(stderr.String(), "ocsiproxy: syslog: "); n != 1 {
		t.Errorf("stderr reports the syslog failure %d times, want once:\n%s", n, stderr.String())
	}
}
