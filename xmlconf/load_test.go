package xmlconf

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "update golden files")

// parseServer parses a configuration whose <server> holds inner.
func parseServer(t *testing.T, inner string) (*Config, error) {
	t.Helper()
	return Parse("t.conf", []byte("<ocsigen><server>\n"+inner+"\n</server></ocsigen>"))
}

func TestDefaults(t *testing.T) {
	c, err := parseServer(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:               "t.conf",
		MaxConnected:       350,
		Timeout:            30 * time.Second,
		KeepAliveTimeout:   30 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		NetBufferSize:      8192,
		FileBufferSize:     8192,
		MaxRequestBodySize: Infinite,
		MaxUploadFileSize:  2000000,
		MaxRetries:         10,
		MinThreads:         10,
		MaxThreads:         30,
		MaxDetached:        1000,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\ngot  %+v\nwant %+v", c, want)
	}
}

func TestServerOptions(t *testing.T) {
	tests := []struct {
		xml  string
		get  func(c *Config) any
		want any
		note string // the Option of the one Note expected, if any
	}{
		{`<logdir>/var/log/o</logdir>`, func(c *Config) any { return c.LogDir }, "/var/log/o", ""},
		{`<logdir></logdir>`, func(c *Config) any { return c.LogDir }, "", ""},
		{`<syslog/>`, func(c *Config) any { return []any{c.Syslog, c.SyslogFacility} }, []any{true, ""}, ""},
		{`<syslog>Local3</syslog>`, func(c *Config) any { return c.SyslogFacility }, "local3", ""},
		{`<syslog>daemon</syslog>`, func(c *Config) any { return c.SyslogPos }, Pos{"t.conf", 2, 1}, ""},
		{`<datadir>/var/lib/o</datadir>`, func(c *Config) any { return c.DataDir }, "/var/lib/o", "datadir"},
		{`<user>www</user>`, func(c *Config) any { return c.User }, "www", ""},
		{`<group>www</group>`, func(c *Config) any { return c.Group }, "www", ""},
		{`<charset>latin1</charset>`, func(c *Config) any { return c.Charset }, "latin1", "charset"},
		{`<findlib path="/usr/lib/ocaml"/>`, func(c *Config) any { return len(c.Extensions) }, 0, "findlib"},
		{`<commandpipe>/run/cmd</commandpipe>`, func(c *Config) any { return c.CommandPipe }, "/run/cmd", ""},
		{`<mimefile>/etc/mime.types</mimefile>`, func(c *Config) any { return c.MimeFile }, "/etc/mime.types", "mimefile"},
		{`<uploaddir>/tmp</uploaddir>`, func(c *Config) any { return c.UploadDir }, "/tmp", "uploaddir"},
		{`<maxconnected>20</maxconnected>`, func(c *Config) any { return c.MaxConnected }, 20, ""},
		{`<timeout>5</timeout>`, func(c *Config) any { return c.Timeout }, 5 * time.Second, ""},
		{`<timeout>0.25</timeout>`, func(c *Config) any { return c.Timeout }, 250 * time.Millisecond, ""},
		{`<clienttimeout>7</clienttimeout>`, func(c *Config) any { return c.Timeout }, 7 * time.Second, ""},
		{`<servertimeout>7</servertimeout>`, func(c *Config) any { return c.ServerTimeout }, 7 * time.Second, "servertimeout"},
		{`<keepalivetimeout>3</keepalivetimeout>`, func(c *Config) any { return c.KeepAliveTimeout }, 3 * time.Second, ""},
		{`<shutdowntimeout>1.5</shutdowntimeout>`, func(c *Config) any { return c.ShutdownTimeout }, 1500 * time.Millisecond, ""},
		{`<shutdowntimeout>notimeout</shutdowntimeout>`, func(c *Config) any { return c.ShutdownTimeout < 0 }, true, ""},
		{`<netbuffersize>4096</netbuffersize>`, func(c *Config) any { return c.NetBufferSize }, Size(4096), ""},
		{`<netbuffersize>16k</netbuffersize>`, func(c *Config) any { return c.NetBufferSize }, Size(16384), ""},
		{`<filebuffersize>1024</filebuffersize>`, func(c *Config) any { return c.FileBufferSize }, Size(1024), "filebuffersize"},
		{`<maxrequestbodysize>10MB</maxrequestbodysize>`, func(c *Config) any { return c.MaxRequestBodySize }, Size(10000000), ""},
		{`<maxrequestbodysize>infinity</maxrequestbodysize>`, func(c *Config) any { return c.MaxRequestBodySize }, Infinite, ""},
		{`<maxuploadfilesize>1kio</maxuploadfilesize>`, func(c *Config) any { return c.MaxUploadFileSize }, Size(1024), "maxuploadfilesize"},
		{`<maxretries>3</maxretries>`, func(c *Config) any { return c.MaxRetries }, 3, ""},
		{`<maxretries>0</maxretries>`, func(c *Config) any { return c.MaxRetries }, 0, ""},
		{`<minthreads>2</minthreads>`, func(c *Config) any { return c.MinThreads }, 2, "minthreads"},
		{`<maxthreads>4</maxthreads>`, func(c *Config) any { return c.MaxThreads }, 4, "maxthreads"},
		{`<maxdetachedcomputationsqueued>9</maxdetachedcomputationsqueued>`, func(c *Config) any { return c.MaxDetached }, 9, "maxdetachedcomputationsqueued"},
		{`<debugmode/>`, func(c *Config) any { return c.DebugMode }, true, ""},
		{`<debugmode> </debugmode>`, func(c *Config) any { return c.DebugMode }, true, ""},
		{`<usedefaulthostname/>`, func(c *Config) any { return c.UseDefaultHostname }, true, ""},
		{`<respectpipeline/>`, func(c *Config) any { return c.RespectPipeline }, true, "respectpipeline"},
		{`<disablepartialrequests/>`, func(c *Config) any { return c.DisablePartialRequests }, true, "disablepartialrequests"},
		{`<ssl><certificate>c.pem</certificate><privatekey>k.pem</privatekey></ssl>`,
			func(c *Config) any { return *c.SSL }, SSL{Certificate: "c.pem", PrivateKey: "k.pem", Pos: Pos{"t.conf", 2, 1}}, ""},
		{`<ssl><ciphers>HIGH</ciphers><dhfile>dh</dhfile><curve>c</curve></ssl>`,
			func(c *Config) any { return *c.SSL }, SSL{Ciphers: "HIGH", DHFile: "dh", Curve: "c", Pos: Pos{"t.conf", 2, 1}}, "ciphers dhfile curve"},
		{`<extension findlib-package="ocsigenserver.ext.revproxy"/>`,
			func(c *Config) any { return c.HasExtension("ocsigenserver.ext.revproxy") }, true, ""},
		{`<require module="x.cmxs"/>`,
			func(c *Config) any { e := c.Extensions[0]; return []string{e.Name, e.Attr, e.Element.Name} }, []string{"x.cmxs", "module", "require"}, ""},
		{`<library name="m"/>`,
			func(c *Config) any { e := c.Extensions[0]; return []string{e.Name, e.Attr, e.Element.Name} }, []string{"m", "name", "library"}, ""},
		{`<extension findlib-package="ocsigenserver.ext.revproxy"><pool workers="4"/></extension>`,
			func(c *Config) any { return c.Extensions[0].Element.Children[0].Name }, "pool", ""},
		{"<timeout>5</timeout>\n<timeout>6</timeout>", func(c *Config) any { return c.Timeout }, 6 * time.Second, ""}, // the last one wins
	}
	for _, tt := range tests {
		c, err := parseServer(t, tt.xml)
		if err != nil {
			t.Errorf("%s: %v", tt.xml, err)
			continue
		}
		if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.xml, got, tt.want)
		}
		var notes []string
		for _, n := range c.Notes {
			notes = append(notes, n.Option)
			if n.Reason == "" || n.Pos.Line != 2 {
				t.Errorf("%s: note %+v", tt.xml, n)
			}
		}
		if want := strings.Fields(tt.note); !reflect.DeepEqual(notes, want) && (len(notes) > 0 || len(want) > 0) {
			t.Errorf("%s: notes %q, want %q", tt.xml, notes, want)
		}
		if len(c.Warnings) > 0 {
			t.Errorf("%s: warnings %q", tt.xml, c.Warnings)
		}
	}
}

func TestServerOptionErrors(t *testing.T) {
	tests := []struct {
		xml  string
		want string
	}{
		{`<bogus/>`, `unknown element <bogus> in <server>`},
		{`<logdir x="1">/l</logdir>`, `<logdir>: unknown attribute "x"`},
		{`<logdir><a/></logdir>`, `<logdir>: unexpected element <a>; want text`},
		{`<syslog>nope</syslog>`, `<syslog>: unknown facility "nope"`},
		{"<user>a</user>\n<user>b</user>", `<user>: only one <user> is allowed`},
		{"<group>a</group>\n<group>b</group>", `<group>: only one <group> is allowed`},
		{`<findlib/>`, `<findlib>: missing attribute "path"`},
		{`<findlib path="p">x</findlib>`, `<findlib>: unexpected text "x"`},
		{`<extension/>`, `<extension>: missing attribute "findlib-package" or "module"`},
		{`<extension findlib-package="a" module="b"/>`, `<extension>: only one of "findlib-package", "module" and "name" is allowed`},
		{`<extension package="a"/>`, `<extension>: missing attribute "findlib-package" or "module"`},
		{`<extconf/>`, `<extconf>: missing attribute "dir"`},
		{`<maxconnected>many</maxconnected>`, `<maxconnected>: "many" is not an integer`},
		{`<maxretries>-1</maxretries>`, `<maxretries>: "-1" is negative`},
		{`<maxthreads>99999999999</maxthreads>`, `<maxthreads>: "99999999999" is too large`},
		{`<timeout>30s</timeout>`, `<timeout>: "30s": not a number of seconds`},
		{`<timeout></timeout>`, `<timeout>: "": not a number of seconds`},
		{`<keepalivetimeout>-1</keepalivetimeout>`, `<keepalivetimeout>: "-1": a duration cannot be negative`},
		{`<shutdowntimeout>never</shutdowntimeout>`, `<shutdowntimeout>: "never": not a number of seconds`},
		{`<maxrequestbodysize>10kb</maxrequestbodysize>`, `<maxrequestbodysize>: "10kb": not a valid size`},
		{`<maxuploadfilesize>-1</maxuploadfilesize>`, `<maxuploadfilesize>: "-1": a size cannot be negative`},
		{`<netbuffersize>infinity</netbuffersize>`, `<netbuffersize>: "infinity": a size in bytes is needed`},
		{`<debugmode>yes</debugmode>`, `<debugmode>: unexpected text "yes"`},
		{`<debugmode on="1"/>`, `<debugmode>: unknown attribute "on"`},
		{`<usedefaulthostname><x/></usedefaulthostname>`, `<usedefaulthostname>: unexpected element <x>`},
		{"<ssl/>\n<ssl/>", `<ssl>: only one <ssl> is allowed`},
		{`<ssl><password>x</password></ssl>`, `unknown element <password> in <ssl>`},
		{`<ssl><certificate>a</certificate><certificate>b</certificate></ssl>`, `<ssl>: only one <certificate> is allowed`},
		{`<ssl>text</ssl>`, `<ssl>: unexpected text "text"`},
		{`text`, `<server>: unexpected text "text"`},
	}
	for _, tt := range tests {
		_, err := parseServer(t, tt.xml)
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 {
			t.Errorf("%s: got %v, want one error %q", tt.xml, err, tt.want)
			continue
		}
		if list[0].Msg != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.xml, list[0].Msg, tt.want)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		addr string
		port int
		err  string
	}{
		{"80", ":80", 80, ""},
		{" 8080 ", ":8080", 8080, ""},
		{"0x50", ":80", 80, ""}, // OCaml integer syntax, as in Ocsigen
		{"0", ":0", 0, ""},
		{"*:80", ":80", 80, ""},
		{"127.0.0.1:80", "127.0.0.1:80", 80, ""},
		{"[::]:80", "[::]:80", 80, ""},
		{"[2001:db8::1]:80", "[2001:db8::1]:80", 80, ""},
		{"[2001:DB8:0::1]:443", "[2001:db8::1]:443", 443, ""},
		{"[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]:80", 80, ""},
		{"65535", ":65535", 65535, ""},
		{"65536", "", 0, "port 65536 out of range"},
		{"-1", "", 0, "port -1 out of range"},
		{"localhost:80", "", 0, `bad port "localhost:80"; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT`},
		{"http", "", 0, `bad port "http"; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT`},
		{"", "", 0, `bad port ""; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT`},
		{"1.2.3:80", "", 0, `bad IPv4 address "1.2.3"`},
		{"1.2.3.400:80", "", 0, `bad IPv4 address "1.2.3.400"`},
		{"[1.2.3.4]:80", "", 0, `bad IPv6 address "1.2.3.4"`},
		{"[::g]:80", "", 0, `bad port "[::g]:80"; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT`},
		{"[::1]:", "", 0, `bad port "[::1]:"; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT`},
		{"*:99999", "", 0, "port 99999 out of range"},
	}
	for _, tt := range tests {
		addr, port, err := ParsePort(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if addr != tt.addr || port != tt.port || gotErr != tt.err {
			t.Errorf("ParsePort(%q) = %q, %d, %q; want %q, %d, %q", tt.in, addr, port, gotErr, tt.addr, tt.port, tt.err)
		}
	}
}

func TestPorts(t *testing.T) {
	c, err := parseServer(t, `<port>80</port><port protocol="http">127.0.0.1:81</port>`+
		`<port protocol="HTTPS">[::]:443</port><port protocol="https">8443</port>`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Port{
		{Addr: ":80", Port: 80, Pos: Pos{"t.conf", 2, 1}},
		{Addr: "127.0.0.1:81", Port: 81, Pos: Pos{"t.conf", 2, 16}},
		{Addr: "[::]:443", Port: 443, HTTPS: true, Pos: Pos{"t.conf", 2, 57}},
		{Addr: ":8443", Port: 8443, HTTPS: true, Pos: Pos{"t.conf", 2, 95}},
	}
	if !reflect.DeepEqual(c.Ports, want) {
		t.Errorf("got  %+v\nwant %+v", c.Ports, want)
	}
	_, err = parseServer(t, `<port protocol="FTP">21</port>`)
	if err == nil || !strings.HasSuffix(err.Error(), `<port>: protocol "FTP"; want HTTP or HTTPS`) {
		t.Errorf("protocol FTP: %v", err)
	}
}

func TestHosts(t *testing.T) {
	c, err := parseServer(t, `<port>8080</port><port>8081</port><port protocol="HTTPS">8443</port>
<host hostfilter="*.example.org a.example:8080 b.example:80 c.example" charset="utf-8">
  <site path="x"><revproxy suburl="(.*)" dest="http://b/\1"/></site>
  <redirect suburl="y" dest="z"/>
</host>
<host defaulthostname="www.example" defaulthttpport="80" defaulthttpsport="0x1bb" defaultprotocol="HTTPS"/>
<host hostfilter="">
</host>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts) != 3 {
		t.Fatalf("got %d hosts", len(c.Hosts))
	}
	h := c.Hosts[0]
	if h.Filter != "*.example.org a.example:8080 b.example:80 c.example" || h.DefaultHostname != "b.example" ||
		h.DefaultHTTPPort != 8081 || h.DefaultHTTPSPort != 8443 || h.DefaultProtocol != "" || h.DefaultHTTPS ||
		h.Charset != "utf-8" || !h.HasCharset || h.Pos != (Pos{"t.conf", 3, 1}) {
		t.Errorf("host 0: %+v", h)
	}
	if len(h.Body) != 2 || h.Body[0].Name != "site" || h.Body[1].Name != "redirect" ||
		h.Body[0].Children[0].Pos != (Pos{"t.conf", 4, 18}) {
		t.Errorf("host 0 body: %+v", h.Body)
	}
	h = c.Hosts[1]
	if h.Filter != "*" || h.DefaultHostname != "www.example" || h.DefaultHTTPPort != 80 ||
		h.DefaultHTTPSPort != 443 || h.DefaultProtocol != "HTTPS" || !h.DefaultHTTPS || h.HasCharset {
		t.Errorf("host 1: %+v", h)
	}
	h = c.Hosts[2]
	if h.Filter != "" || h.DefaultHostname != machineHostname() || len(h.Body) != 0 {
		t.Errorf("host 2: %+v", h)
	}
	if len(c.Notes) != 1 || c.Notes[0].Option != "host" || c.Notes[0].Pos != c.Hosts[0].Pos ||
		c.Notes[0].Reason != "charset= "+reasonStaticOnly {
		t.Errorf("notes: %+v", c.Notes)
	}
	// charset="" is given, and means no charset.
	c, err = parseServer(t, `<host charset=""/>`)
	if err != nil || len(c.Hosts) != 1 || !c.Hosts[0].HasCharset || c.Hosts[0].Charset != "" {
		t.Errorf("charset=\"\": %v %+v", err, c)
	}

	for filter, want := range map[string]string{
		"my_site.example b.example":  "b.example", // Ocsigen refuses the file; ocsiproxy skips the name
		"a.example:8080 *.b.example": machineHostname(),
		"a.example:80":               "a.example",
		"a.example:*":                "a.example",
		"*":                          machineHostname(),
	} {
		c, err := parseServer(t, `<host hostfilter="`+filter+`"/>`)
		if err != nil || c.Hosts[0].DefaultHostname != want {
			t.Errorf("hostfilter %q: %v, default host name %q, want %q", filter, err, c.Hosts[0].DefaultHostname, want)
		}
	}

	c, err = parseServer(t, `<host hostfilter="*"/>`)
	if err != nil || c.Hosts[0].DefaultHTTPPort != 80 || c.Hosts[0].DefaultHTTPSPort != 443 {
		t.Errorf("default ports: %v %+v", err, c.Hosts[0])
	}
}

func TestExtconf(t *testing.T) {
	c, err := parseServer(t, `<port>80</port>
<host hostfilter="main.example"/>
<extconf dir="testdata/extconf/good"/>
<host hostfilter="last.example"/>`)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, h := range c.Hosts {
		hosts = append(hosts, h.Filter+"@"+h.Pos.String())
	}
	want := []string{
		"main.example@t.conf:3:1",
		"first.example@" + filepath.Join("testdata/extconf/good/10-first.conf") + ":4:5",
		"second.example@" + filepath.Join("testdata/extconf/good/20-second.conf") + ":5:5",
		"last.example@t.conf:5:1",
	}
	if !reflect.DeepEqual(hosts, want) {
		t.Errorf("hosts:\ngot  %q\nwant %q", hosts, want)
	}
	if len(c.Ports) != 1 || c.MaxRetries != 3 || !c.HasExtension("ocsigenserver.ext.redirectmod") {
		t.Errorf("ports %+v, maxretries %d, extensions %+v", c.Ports, c.MaxRetries, c.Extensions)
	}
	if len(c.Hosts[1].Body) != 1 || c.Hosts[1].Body[0].Pos.String() != "testdata/extconf/good/10-first.conf:5:7" {
		t.Errorf("extconf host body: %+v", c.Hosts[1].Body)
	}
	if len(c.Notes) != 1 || c.Notes[0].Option != "port" || c.Notes[0].Reason != reasonExtconfOnly {
		t.Errorf("notes: %+v", c.Notes)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if want := []string{"testdata/extconf/good"}; !reflect.DeepEqual(c.ExtconfDirs, want) {
		t.Errorf("ExtconfDirs %q, want %q", c.ExtconfDirs, want)
	}
}

func TestExtconfLoop(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.conf"), `<ocsigen><server><host hostfilter="a"/><extconf dir="`+sub+`"/></server></ocsigen>`)
	write(filepath.Join(sub, "b.conf"), `<ocsigen><server><host hostfilter="b"/><extconf dir="`+dir+`"/></server></ocsigen>`)
	write(filepath.Join(dir, "skipped.txt"), `not read`)
	write(filepath.Join(dir, "xconf"), `<ocsigen><server><host hostfilter="x"/></server></ocsigen>`) // as Ocsigen: the name ends in "conf"
	c, err := parseServer(t, `<extconf dir="`+dir+`"/>`)
	want := filepath.Join(sub, "b.conf") + `:1:40: <extconf>: directory "` + dir + `" includes itself`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var hosts []string
	for _, h := range c.Hosts {
		hosts = append(hosts, h.Filter)
	}
	if strings.Join(hosts, " ") != "a b x" {
		t.Errorf("hosts %q", hosts)
	}
	// Each directory once, in the order met; the one refused as a loop
	// is not listed again.
	if want := []string{dir, sub}; !reflect.DeepEqual(c.ExtconfDirs, want) {
		t.Errorf("ExtconfDirs %q, want %q", c.ExtconfDirs, want)
	}
}

// TestErrorsGolden checks the whole output of every testdata/errors/*.conf
// file against its .golden file: the errors, then the warnings. Run with
// -update to rewrite the golden files.
func TestErrorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			var b strings.Builder
			if err != nil {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error is %T, not an ErrorList: %v", err, err)
				}
				b.WriteString(err.Error() + "\n")
			}
			for _, w := range c.Warnings {
				b.WriteString("warning: " + w + "\n")
			}
			got := b.String()
			golden := strings.TrimSuffix(file, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot\n%s\nwant\n%s", file, got, want)
			}
		})
	}
}

func TestFacilityCode(t *testing.T) {
	tests := []struct {
		name string
		code int
		ok   bool
	}{
		{"kernel", 0, true}, {"user", 1, true}, {"daemon", 3, true}, {"authpriv", 10, true},
		{"security", 13, true}, {"console", 14, true}, {"local0", 16, true}, {"local7", 23, true},
		{"Local0", 0, false}, {"", 0, false}, {"local8", 0, false},
	}
	for _, tt := range tests {
		code, ok := FacilityCode(tt.name)
		if code != tt.code || ok != tt.ok {
			t.Errorf("FacilityCode(%q) = %d, %v; want %d, %v", tt.name, code, ok, tt.code, tt.ok)
		}
	}
}

func TestFullConfig(t *testing.T) {
	c, err := Load("testdata/ok/full.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if len(c.Ports) != 5 || c.Ports[4].Addr != "[2001:db8::1]:8443" || !c.Ports[4].HTTPS {
		t.Errorf("ports: %+v", c.Ports)
	}
	if c.SSL == nil || c.SSL.Curve != "prime256v1" || c.SyslogFacility != "local0" || c.Timeout != 45*time.Second ||
		c.KeepAliveTimeout != 2500*time.Millisecond || c.ShutdownTimeout >= 0 || c.MaxRequestBodySize != 10<<20 ||
		c.MaxUploadFileSize != 2000000 || !c.DebugMode || !c.UseDefaultHostname || !c.RespectPipeline ||
		!c.DisablePartialRequests || c.MaxRetries != 5 {
		t.Errorf("config: %+v", c)
	}
	if len(c.Extensions) != 4 || !c.HasExtension("accesscontrol") {
		t.Errorf("extensions: %+v", c.Extensions)
	}
	rp := c.Hosts[0].Body[0].Children[0]
	if dest, _ := rp.Attr("dest"); dest != `http://127.0.0.1:9000/\1?a=1&b=2` {
		t.Errorf("dest = %q", dest)
	}
	// Every option present has a note, except those ocsiproxy honours.
	honoured := map[string]bool{"port": true, "user": true, "group": true, "commandpipe": true, "maxconnected": true, "logdir": true, "syslog": true, "extension": true, "require": true, "library": true,
		"timeout": true, "keepalivetimeout": true, "netbuffersize": true, "maxrequestbodysize": true,
		"maxretries": true, "debugmode": true, "usedefaulthostname": true, "host": true,
		"ssl": true, "shutdowntimeout": true}
	noted := map[string]bool{}
	for _, n := range c.Notes {
		noted[n.Option] = true
	}
	src, _ := os.ReadFile("testdata/ok/full.conf")
	root := readOne(t, string(src))
	for _, e := range root.Children[0].Children {
		if !honoured[e.Name] && !noted[e.Name] {
			t.Errorf("<%s> is neither honoured nor noted", e.Name)
		}
	}
}
