package difftest

// configScenarios cover SPEC 2: the XML dialect and extconf.
func configScenarios() []*scenario {
	return []*scenario{
		{
			name: "extconf",
			spec: "2 extconf",
			server: `<extconf dir="{DIR}/extconf"/>
    <host hostfilter="*" defaulthostname="dflt.example">
      <site path="main"><revproxy suburl="(.*)" dest="http://{B}/main/\1"/></site>
    </host>`,
			extconf: map[string]string{
				"10-a.conf": `<ocsigen><server>
  <host hostfilter="*" defaulthostname="dflt.example">
    <site path="a"><revproxy suburl="(.*)" dest="http://{B}/ext-a/\1"/></site>
    <site path="shared"><revproxy suburl="(.*)" dest="http://{B}/ext-a-shared/\1"/></site>
  </host>
</server></ocsigen>`,
				"20-b.conf": `<ocsigen><server>
  <host hostfilter="*" defaulthostname="dflt.example">
    <site path="shared"><revproxy suburl="(.*)" dest="http://{B}/ext-b-shared/\1"/></site>
  </host>
</server></ocsigen>`,
				"30-broken.conf": `<ocsigen><server><host hostfilter="*"><site path="broken"></host></server></ocsigen>`,
				"40-c.txt":       `<ocsigen><server><host hostfilter="*"><site path="txt"><revproxy suburl="(.*)" dest="http://{B}/txt"/></site></host></server></ocsigen>`,
			},
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="(.*)" dest="http://{B}/after/\1"/>
    </host>`,
			reqs: []*request{
				get("/main/x"),
				get("/a/x"),
				get("/shared/x"),
				get("/broken/x"),
				get("/txt/x"),
				get("/other/x"),
			},
		},
		{
			name: "xml-dialect",
			spec: "2 XML dialect",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <!-- a comment -->
      <site path="amp"><revproxy suburl="(.*)" dest="http://{B}/amp?a=1&amp;b=\1"/></site>
      <site path="rawamp"><revproxy suburl="(.*)" dest="http://{B}/rawamp?a=1&b=\1"/></site>
      <site path="num"><revproxy suburl="(.*)" dest="http://{B}/num&#38;\1"/></site>
      <site path='single'><revproxy suburl='(.*)' dest='http://{B}/single/\1'/></site>
      <site path="bs"><revproxy suburl="x\\.(.*)" dest="http://{B}/bs/\\1"/></site>
    </host>`,
			reqs: []*request{
				get("/amp/x").witness(rowPEntities).wants(want{status: 200, target: "/amp?a=1&b=x"}),
				get("/rawamp/x"),
				get("/num/x").witness(rowPEntities).wants(want{status: 200, target: "/num&x"}),
				get("/single/x"),
				get("/bs/x.y"),
				get("/bs/xzy"),
			},
		},
		{
			name: "attribute-values",
			spec: "2 (values Ocsigen ignores)",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="kh"><revproxy suburl="(.*)" dest="http://{B}/kh/\1" keephost="no"/></site>
      <site path="np"><revproxy suburl="(.*)" dest="http://{B}/np/\1" nopipeline="yes"/></site>
      <site path="tmp"><redirect suburl="(.*)" dest="/t/\1" temporary="yes"/></site>
    </host>`,
			reqs: []*request{
				get("/kh/x", "Host: {DECOY}"),
				get("/np/x"),
				get("/tmp/x"),
			},
		},
		{
			name:     "xml-named-group",
			spec:     "2 XML dialect",
			startRow: rowPRawLT,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="(?P<n>z+)" dest="http://{B}/named/\1"/>
    </host>`,
			reqs: []*request{
				get("/zz"),
			},
		},
		{
			name:     "template-missing-group",
			spec:     "2, 4 templates",
			startRow: rowPLateConfig,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="(.*)" dest="http://{B}/seven/\9"/>
    </host>`,
			reqs: []*request{
				get("/x"),
			},
		},
		{
			name:     "template-trailing-backslash",
			spec:     "2, 4 templates",
			startRow: rowPLateConfig,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="(.*)" dest="http://{B}/x\\"/>
    </host>`,
			reqs: []*request{
				get("/x"),
			},
		},
		{
			name:     "dest-malformed",
			spec:     "2 malformed dest",
			startRow: rowPLateConfig,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="ftp"><revproxy suburl="(.*)" dest="ftp://{B}/\1"/></site>
      <site path="rel"><revproxy suburl="(.*)" dest="/relative/\1"/></site>
      <site path="empty"><revproxy suburl="(.*)" dest=""/></site>
    </host>`,
			reqs: []*request{
				get("/ftp/x"),
				get("/rel/x"),
				get("/empty/x"),
			},
		},
	}
}

// refusedScenarios are configs Ocsigen refuses; ocsiproxy must refuse them
// too (exit non-zero before listening).
func refusedScenarios() []*scenario {
	bad := func(name, hosts string) *scenario {
		return &scenario{name: "refused-" + name, spec: "2 start-up errors", refuse: true, hosts: hosts}
	}
	h := func(inner string) string {
		return `<host hostfilter="*" defaulthostname="dflt.example">` + inner + `</host>`
	}
	return []*scenario{
		bad("unknown-element", h(`<frobnicate/>`)),
		bad("revproxy-no-dest", h(`<revproxy suburl="(.*)"/>`)),
		bad("revproxy-no-regexp", h(`<revproxy dest="http://{B}/"/>`)),
		bad("revproxy-unknown-attr", h(`<revproxy suburl="(.*)" dest="http://{B}/" colour="red"/>`)),
		bad("bad-regexp", h(`<revproxy suburl="(.*" dest="http://{B}/"/>`)),
		bad("redirect-no-dest", h(`<redirect suburl="(.*)"/>`)),
		bad("rewrite-no-url", h(`<rewrite regexp="(.*)"/>`)),
		bad("outputfilter-regexp-and-replace", h(`<outputfilter header="X" regexp="a" dest="b" replace="true"/>`)),
		bad("outputfilter-no-dest", h(`<outputfilter header="X"/>`)),
		bad("outputfilter-bad-replace", h(`<outputfilter header="X" dest="b" replace="yes"/>`)),
		bad("sethttpcode-bad", h(`<sethttpcode code="abc"/>`)),
		bad("sethttpcode-unknown", h(`<sethttpcode code="299"/>`)),
		bad("if-no-then", h(`<if><method value="GET"/></if>`)),
		bad("bad-ip", h(`<if><ip value="not-an-ip"/><then><forbidden/></then></if>`)),
		bad("bad-condition", h(`<if><weather value="sunny"/><then><forbidden/></then></if>`)),
		bad("not-two-children", h(`<if><not><ssl/><ssl/></not><then><forbidden/></then></if>`)),
		bad("host-unknown-attr", `<host hostfilter="*" colour="red"><revproxy suburl="(.*)" dest="http://{B}/"/></host>`),
		bad("host-bad-port", `<host hostfilter="a.example:xx"><revproxy suburl="(.*)" dest="http://{B}/"/></host>`),
		bad("host-bad-defaulthostname", `<host hostfilter="*" defaulthostname="bad host!"><revproxy suburl="(.*)" dest="http://{B}/"/></host>`),
		bad("malformed-xml", h(`<site path="x"><revproxy suburl="(.*)" dest="http://{B}/"></site>`)),
		{
			name: "refused-extension-not-loaded", spec: "2 extensions", refuse: true,
			config: `<ocsigen><server>
    <port>127.0.0.1:{PORT}</port>
    <logdir>{DIR}/log</logdir><datadir>{DIR}/data</datadir><commandpipe>{DIR}/command</commandpipe>
    <findlib path="/usr/lib/ocaml"/>
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <host hostfilter="*" defaulthostname="dflt.example"><redirect suburl="(.*)" dest="/x"/></host>
  </server></ocsigen>`,
		},
		{
			name: "refused-unknown-server-element", spec: "2", refuse: true,
			server: `<frobnicate/>`,
			hosts:  h(`<revproxy suburl="(.*)" dest="http://{B}/"/>`),
		},
	}
}
