package difftest

// ruleScenarios cover SPEC 4: path normalisation, matched strings, regexps,
// templates, revproxy, redirect and rewrite.
func ruleScenarios() []*scenario {
	return []*scenario{
		{
			name: "path-encoding",
			spec: "4 normalisation",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="app"><revproxy suburl="(.*)" dest="http://{B}/in-app/\1"/></site>
      <revproxy suburl="(.*)" dest="http://{B}/top/\1"/>
    </host>`,
			reqs: []*request{
				get("/app/a%20b").witness(rowTwice),
				get("/top/a%20b"),
				get("/app/a%2Fb"),
				get("/app/%7Euser"),
				get("/app/caf%C3%A9"),
				get("/app/café"),
				get("/app/x%3Fy"),
				get("/app/x%23y"),
				get("/app/a+b"),
				get("/app/./x"),
				get("/app/x/./y"),
				get("/app/../x"),
				get("/app/x/../y"),
				get("/app/%2e%2e/x"),
				get("/app/%2E/x"),
				get("/app/x/%2e%2e/y"),
				get("/app//x"),
				get("//app/x").witness(rowRSlashes).wants(want{status: 200, target: "/in-app/x"}),
				get("//x"),
				get("/x//y").witness(rowRSlashes).wants(want{status: 200, target: "/top/x/y"}),
				get("/../x").witness(rowPClimb).wants(want{status: 400}),
				get("/app/../../x").witness(rowPClimb).wants(want{status: 400}),
				get("/a/b/../../../x").witness(rowPClimb).wants(want{status: 400}),
				get("/%2e%2e/x").witness(rowPClimb).wants(want{status: 400}),
				get("/x?a=%20b&c=d%3Fe"),
				get("/x?"),
				get("/x?a=1?b=2"),
				get("/x#frag").witness(rowRTarget).wants(want{status: 400}),
				get("http://test.example/absolute-form"),
				get("*").witness(rowRTarget).wants(want{status: 400}),
				get("/app/%zz").witness(rowRTarget).wants(want{status: 400}),
				get("/%00x").witness(rowRTarget).wants(want{status: 400}),
			},
		},
		{
			name: "matched-strings",
			spec: "4 suburl fullurl regexp",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="app">
        <revproxy suburl="sub/([^?]*)\?(.*)" dest="http://{B}/subq/\1/\2"/>
        <revproxy suburl="sub/(.*)" dest="http://{B}/sub/\1"/>
        <revproxy fullurl="http://([^/]*)/app/full/(.*)" dest="http://{B}/full/\1/\2"/>
        <revproxy regexp="http://([^/:]*)(:[0-9]+)?/app/re/(.*)" dest="http://{B}/re/\1/\3"/>
        <revproxy suburl="dir/(.*)\.html" dest="http://{B}/html/\1"/>
      </site>
    </host>`,
			reqs: []*request{
				get("/app/sub/x?a=b"),
				get("/app/sub/x/y"),
				get("/app/full/z?k=v"),
				get("/app/full/z", "Host: full.example:{PORT}"),
				get("/app/full/z", "Host: Full.Example"),
				build("GET", "/app/full/z", "HTTP/1.0", "-Host"),
				get("/app/re/w"),
				get("/app/re/w", "Host: re.example:{PORT}"),
				get("/app/dir/a/b.html"),
				get("/app/dir/a/b.html?q=1"),
				get("/app/dir/a/b.htm"),
			},
		},
		{
			name: "templates",
			spec: "4 templates, 2 XML dialect",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="t0/(z)(z)?(q)?" dest="http://{B}/zero/\0"/>
      <revproxy suburl="t1/(z)(z)?(q)?" dest="http://{B}/one/\1/\12/\3/end"/>
      <revproxy suburl="t2/(z)" dest="http://{B}/two/\\1/\\\\1/$1/$$"/>
      <revproxy suburl="t3/(z)" dest="http://{B}/three/a\b\$"/>
      <revproxy suburl="t4/((?:z)+)" dest="http://{B}/four/\1"/>
      <revproxy suburl="t5/(\d+)-(\w+)" dest="http://{B}/five/\2/\1"/>
      <revproxy suburl="t6/(.*)" dest="http://{B}/six/\1?x=1&z=3"/>
    </host>`,
			reqs: []*request{
				get("/t0/zz"),
				get("/t1/zz"),
				get("/t1/zq"),
				get("/t2/z"),
				get("/t3/z"),
				get("/t4/zzz"),
				get("/t5/42-abc"),
				get("/t5/٣-abc"),
				get("/t6/x").witness(rowQuery),
			},
		},
		{
			name: "anchoring-and-order",
			spec: "4 regexps, rule order",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="alt"><revproxy suburl="e|f/(.*)" dest="http://{B}/alt/\1"/></site>
      <site path="multi"><revproxy suburl="a.*$" dest="http://{B}/dollar"/></site>
      <site path="order">
        <revproxy suburl="x/(.*)" dest="http://{B}/first/\1"/>
        <revproxy suburl="x/y" dest="http://{B}/second"/>
        <revproxy suburl="(.*)" dest="http://{B}/third/\1"/>
      </site>
      <site path="ci"><revproxy suburl="abc" dest="http://{B}/ci"/></site>
    </host>`,
			reqs: []*request{
				get("/alt/e"),
				get("/alt/f/zz"),
				get("/alt/eee").witness(rowAnchor).wants(want{status: 404}),
				get("/alt/xf/zz").withNote("^e|f/(.*)$: the f/ branch is unanchored at the start"),
				get("/multi/abc"),
				get("/multi/abc%0Ad"),
				get("/order/x/y"),
				get("/order/z"),
				get("/ci/ABC"),
				get("/ci/abc"),
			},
		},
		{
			name: "dest-forms",
			spec: "4 revproxy dest",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="nopath"><revproxy suburl="(.*)" dest="http://{B}"/></site>
      <site path="upper"><revproxy suburl="(.*)" dest="HTTP://{B}/up/\1"/></site>
      <site path="query"><revproxy suburl="(.*)" dest="http://{B}/q?path=\1"/></site>
      <site path="slash"><revproxy suburl="(.*)" dest="http://{B}/"/></site>
      <site path="https"><revproxy suburl="(.*)" dest="https://{B}/tls/\1"/></site>
      <site path="keephost"><revproxy suburl="(.*)" dest="http://{B}/kh/\1" keephost="keephost"/></site>
      <site path="nopipe"><revproxy suburl="(.*)" dest="http://{B}/np/\1" nopipeline="nopipeline"/></site>
    </host>`,
			reqs: []*request{
				get("/nopath/x").witness(rowDest).wants(want{status: 200, target: "/"}),
				get("/upper/x").witness(rowDest).wants(want{status: 200, target: "/up/x"}),
				get("/query/x").witness(rowQuery),
				get("/query/x?a=1").witness(rowQuery),
				get("/slash/x"),
				get("/https/x").witness(rowScheme),
				get("/keephost/x", "Host: {DECOY}").witness(rowKeephost),
				get("/keephost/x", "Host: {DECOY}:{PORT}").witness(rowKeephost),
				get("/nopipe/x"),
			},
		},
		{
			name: "redirect",
			spec: "4 redirect",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="r">
        <redirect suburl="perm/(.*)" dest="http://new.example/p/\1"/>
        <redirect suburl="temp/(.*)" dest="/t/\1" temporary="temporary"/>
        <redirect fullurl="http://([^/]*)/r/full/(.*)" dest="https://\1/f/\2"/>
        <redirect regexp="both/(.*)" dest="http://both.example/sub/\1"/>
        <redirect regexp="http://[^/]*/r/bothfull/(.*)" dest="http://both.example/full/\1"/>
        <redirect suburl="ab" dest="http://prefix.example/"/>
        <redirect suburl="raw/(.*)" dest="http://x.example/a b?c=\1&amp;d"/>
        <revproxy suburl="(.*)" dest="http://{B}/after/\1"/>
      </site>
    </host>`,
			reqs: []*request{
				get("/r/perm/x?y=1"),
				get("/r/temp/x"),
				get("/r/full/x"),
				get("/r/full/x", "Host: h.example:{PORT}"),
				get("/r/both/x"),
				get("/r/bothfull/x"),
				get("/r/abc").withNote("suburl attribute: is it anchored?"),
				get("/r/ab"),
				get("/r/raw/v").witness(rowPEntities).wants(want{status: 301, location: "http://x.example/a b?c=v&d"}),
				get("/r/other"),
				build("POST", "/r/perm/x", "HTTP/1.1", "", "data"),
			},
		},
		{
			name: "rewrite",
			spec: "4 rewrite",
			hosts: `<host hostfilter="test.example" defaulthostname="test.example">
      <site path="rw">
        <rewrite regexp="old/(.*)" url="new/\1"/>
        <revproxy suburl="(.*)" dest="http://{B}/rw/\1"/>
      </site>
      <site path="new"><revproxy suburl="(.*)" dest="http://{B}/new-site/\1"/></site>
      <site path="tohost"><rewrite regexp="(.*)" url="hostcheck/\1"/></site>
      <site path="hostcheck"><revproxy fullurl="http://([^/]*)/hostcheck/(.*)" dest="http://{B}/host-\1/\2"/></site>
      <site path="abs"><rewrite regexp="(.*)" url="/new/abs-\1"/></site>
      <revproxy suburl="(.*)" dest="http://{B}/top/\1"/>
    </host>
    <host hostfilter="cont.example" defaulthostname="cont.example">
      <site path="c1">
        <rewrite regexp="cont/(.*)" url="c1/cnew/\1" continue="continue"/>
        <revproxy suburl="(.*)" dest="http://{B}/c1/\1"/>
      </site>
      <site path="c2">
        <rewrite regexp="cont/(.*)" url="cnew/\1" continue="continue"/>
        <revproxy suburl="(.*)" dest="http://{B}/c2/\1"/>
      </site>
      <rewrite regexp="hcont/(.*)" url="hnew/\1" continue="continue"/>
      <revproxy suburl="(.*)" dest="http://{B}/ctop/\1"/>
    </host>`,
			reqs: []*request{
				get("/rw/old/x").withNote("restart with the new URL"),
				get("/rw/old/x?q=1"),
				get("/abs/y"),
				get("/rw/plain").witness(rowRewrite).wants(want{status: 200, target: "/rw/plain"}),
				get("/tohost/a").witness(rowRewrite).withNote("the host is kept across the restart").
					wants(want{status: 200, target: "/host-test.example:{PORT}/a"}),
				get("/c1/cont/y", "Host: cont.example").witness(rowRewrite).withNote("continue: later rules see the new URL").
					wants(want{status: 200, target: "/c1/cnew/y"}),
				get("/c2/cont/y", "Host: cont.example").witness(rowRewrite).
					withNote("continue, new path outside the site: the host's later rules see it").
					wants(want{status: 200, target: "/ctop/cnew/y"}),
				get("/hcont/y", "Host: cont.example").withNote("continue at host level"),
			},
		},
		{
			name:   "rewrite-loop",
			spec:   "4 rewrite maxretries",
			server: `<maxretries>3</maxretries>`,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <rewrite regexp="loop/(.*)" url="/loop/\1"/>
      <rewrite regexp="(.*)" url="/\1"/>
    </host>`,
			reqs: []*request{
				get("/loop/x"),
			},
		},
	}
}
