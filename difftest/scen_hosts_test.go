package difftest

// hostScenarios cover SPEC 3: choosing a host and a site.
func hostScenarios() []*scenario {
	return []*scenario{
		{
			name: "hostfilter-forms",
			spec: "3 hostfilter",
			hosts: `<host hostfilter="a.example" defaulthostname="a.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-a/\1"/>
    </host>
    <host hostfilter="*.org www.b.example" defaulthostname="b.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-org/\1"/>
    </host>
    <host hostfilter="p.example:{PORT}" defaulthostname="p.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-p-port/\1"/>
    </host>
    <host hostfilter="q.example:1" defaulthostname="q.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-q-port1/\1"/>
    </host>
    <host hostfilter="q.example:*" defaulthostname="q.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-q-any/\1"/>
    </host>
    <host hostfilter="w*d.example" defaulthostname="wd.example">
      <revproxy suburl="(.*)" dest="http://{B}/host-wild/\1"/>
    </host>`,
			reqs: []*request{
				get("/x", "Host: a.example"),
				get("/x", "Host: a.example:{PORT}"),
				get("/x", "Host: a.example.evil"),
				get("/x", "Host: xa.example"),
				get("/x", "Host: A.Example").witness(rowHost).wants(want{status: 200, target: "/host-a/x"}),
				get("/x", "Host: foo.org"),
				get("/x", "Host: .org"),
				get("/x", "Host: org"),
				get("/x", "Host: www.b.example"),
				get("/x", "Host: p.example"),
				get("/x", "Host: p.example:{PORT}"),
				get("/x", "Host: p.example:81"),
				get("/x", "Host: q.example"),
				get("/x", "Host: wd.example"),
				get("/x", "Host: wxyzd.example"),
				get("/x", "Host: w.d.example"),
				get("/x", "Host: nomatch.example"),
				get("/x", "-Host").witness(rowHost).wants(want{status: 400}),
				build("GET", "/x", "HTTP/1.0", "-Host"),
				get("/x", "Host: [::1]:{PORT}"),
				get("/x", "Host: 127.0.0.1:{PORT}"),
			},
		},
		{
			name: "host-fall-through",
			spec: "3 hosts in order",
			hosts: `<host hostfilter="*" defaulthostname="one.example">
      <site path="only"><revproxy suburl="(.*)" dest="http://{B}/first/\1"/></site>
    </host>
    <host hostfilter="*.example" defaulthostname="two.example">
      <site path="second"><revproxy suburl="(.*)" dest="http://{B}/second/\1"/></site>
    </host>
    <host hostfilter="*" defaulthostname="three.example">
      <revproxy suburl="(.*)" dest="http://{B}/third/\1"/>
    </host>`,
			reqs: []*request{
				get("/only/a"),
				get("/second/b"),
				get("/second/b", "Host: other.net"),
				get("/third/c"),
				get("/only", "Host: test.example:{PORT}"),
			},
		},
		{
			name: "site-nesting",
			spec: "3 sites",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="/app/">
        <site path="api/v1">
          <revproxy suburl="(.*)" dest="http://{B}/api-v1/\1"/>
        </site>
        <revproxy suburl="(.*)" dest="http://{B}/app/\1"/>
      </site>
      <site path="a/b">
        <revproxy suburl="(.*)" dest="http://{B}/ab/\1"/>
      </site>
      <revproxy suburl="(.*)" dest="http://{B}/top/\1"/>
    </host>`,
			reqs: []*request{
				get("/app/x"),
				get("/app/api/v1/users?id=3"),
				get("/app/api/v2/users"),
				get("/app/api/v1", "Host: test.example:{PORT}"),
				get("/app/api/v1?x=1", "Host: test.example:{PORT}"),
				get("/app").withNote("Host without port: which port goes into Location?"),
				get("/app?x=1&y=2", "Host: test.example:{PORT}"),
				get("/app/"),
				get("/appx/y"),
				get("/a/b/c"),
				get("/a/bc"),
				get("/a/b", "Host: test.example:{PORT}"),
				get("/a"),
				get("/"),
				get("/app", "Host: h.example:8080"),
				build("GET", "/app", "HTTP/1.0", "-Host"),
				get("/app", "-Host").witness(rowHost).wants(want{status: 400}),
			},
		},
		{
			name:   "usedefaulthostname",
			spec:   "3 defaulthostname",
			server: `<usedefaulthostname/>`,
			hosts: `<host hostfilter="*" defaulthostname="canon.example" defaulthttpport="8080" defaulthttpsport="8443">
      <site path="app"><revproxy suburl="(.*)" dest="http://{B}/\1"/></site>
    </host>`,
			reqs: []*request{
				get("/app"),
				get("/app?q=1"),
				get("/app", "Host: other.example:{PORT}"),
				build("GET", "/app", "HTTP/1.0", "-Host"),
			},
		},
		{
			name:   "defaulthttpport-80",
			spec:   "3 defaulthostname",
			server: `<usedefaulthostname/>`,
			hosts: `<host hostfilter="*" defaulthostname="canon.example" defaulthttpport="80">
      <site path="app"><revproxy suburl="(.*)" dest="http://{B}/\1"/></site>
    </host>`,
			reqs: []*request{
				get("/app"),
			},
		},
	}
}
