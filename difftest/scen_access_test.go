package difftest

// accessScenarios cover SPEC 6: accesscontrol conditions, actions,
// allow-forward-for and allow-forward-proto.
func accessScenarios() []*scenario {
	ok := `<revproxy suburl="(.*)" dest="http://{B}/ok/\1"/>`
	return []*scenario{
		{
			name: "access-conditions",
			spec: "6 conditions",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="ip"><if><ip value="127.0.0.2"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="ipnet"><if><ip value="127.0.0.0/24"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="ipother"><if><ip value="10.0.0.0/8"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="ip6"><if><ip value="::1"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="port"><if><port value="{PORT}"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="port80"><if><port value="80"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="ssl"><if><ssl/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="header"><if><header name="X-Key" regexp="se(cr)?et"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="method"><if><method value="POST"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="proto"><if><protocol value="HTTP/1.0"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="path"><if><path regexp="pub/.*"/><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="and"><if><and><method value="GET"/><header name="X-A" regexp="1"/></and><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="or"><if><or><method value="PUT"/><header name="X-A" regexp="1"/></or><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="not"><if><not><method value="GET"/></not><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="emptyand"><if><and></and><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="emptyor"><if><or></or><then>` + ok + `</then><else><forbidden/></else></if></site>
      <site path="noelse"><if><method value="PUT"/><then><forbidden/></then></if>` + ok + `</site>
    </host>`,
			reqs: []*request{
				get("/ip/x"),
				get("/ipnet/x"),
				get("/ipother/x"),
				get("/ip6/x"),
				get("/port/x"),
				get("/port80/x"),
				get("/ssl/x"),
				get("/header/x", "X-Key: secret"),
				get("/header/x", "X-Key: seet"),
				get("/header/x", "X-Key: secrets"),
				get("/header/x", "X-Key: a", "X-Key: secret"),
				get("/header/x", "X-Key: a, secret"),
				get("/header/x"),
				build("POST", "/method/x", "HTTP/1.1", "", "b"),
				get("/method/x"),
				build("GET", "/proto/x", "HTTP/1.0"),
				get("/proto/x"),
				get("/path/pub/a"),
				get("/path/pub/a?x=1"),
				get("/path/priv/a"),
				get("/path/pub"),
				get("/and/x", "X-A: 1"),
				get("/and/x"),
				get("/or/x", "X-A: 1"),
				build("PUT", "/or/x", "HTTP/1.1", "", "b"),
				get("/or/x"),
				get("/not/x"),
				build("DELETE", "/not/x", "HTTP/1.1"),
				get("/emptyand/x"),
				get("/emptyor/x"),
				get("/noelse/x"),
				build("PUT", "/noelse/x", "HTTP/1.1", "", "b"),
			},
		},
		{
			name: "access-actions",
			spec: "6 actions",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="nf"><notfound/>` + ok + `</site>
      <site path="fb">` + ok + `<forbidden/></site>
      <site path="nextsite1"><nextsite/>` + ok + `</site>
      <site path="nextsite1"><revproxy suburl="(.*)" dest="http://{B}/nextsite-target/\1"/></site>
      <site path="answered">` + ok + `<nextsite/><revproxy suburl="(.*)" dest="http://{B}/never/\1"/></site>
      <site path="nexthost"><nexthost/>` + ok + `</site>
      <site path="stop"><stop/>` + ok + `</site>
      <site path="stopafter">` + ok + `<stop/><outputfilter header="X-After-Stop" dest="1"/></site>
      <site path="iffound">` + ok + `<iffound><outputfilter header="X-Found" dest="1"/></iffound></site>
      <site path="iffound404"><iffound><forbidden/></iffound>` + ok + `</site>
      <site path="ifnotfound"><ifnotfound><revproxy suburl="(.*)" dest="http://{B}/inf/\1"/></ifnotfound></site>
      <site path="ifnfcode"><if><method value="PUT"/><then><forbidden/></then></if><ifnotfound code="40[34]"><revproxy suburl="(.*)" dest="http://{B}/infc/\1"/></ifnotfound></site>
      <site path="ifnfcode2"><ifnotfound code="403"><revproxy suburl="(.*)" dest="http://{B}/never/\1"/></ifnotfound></site>
      <site path="nested"><if><method value="GET"/><then><if><header name="X-B" regexp="1"/><then>` + ok + `</then><else><notfound/></else></if></then></if></site>
    </host>
    <host hostfilter="*" defaulthostname="second.example">
      <revproxy suburl="(.*)" dest="http://{B}/second-host/\1"/>
    </host>`,
			reqs: []*request{
				get("/nf/x"),
				get("/fb/x"),
				get("/nextsite1/x"),
				get("/answered/x"),
				get("/nexthost/x"),
				get("/stop/x"),
				get("/stopafter/x"),
				get("/iffound/x"),
				get("/iffound404/x"),
				get("/ifnotfound/x"),
				get("/ifnfcode/x"),
				build("PUT", "/ifnfcode/x", "HTTP/1.1", "", "b"),
				get("/ifnfcode2/x"),
				get("/nested/x", "X-B: 1"),
				get("/nested/x"),
				get("/elsewhere/x"),
			},
		},
		{
			name: "allow-forward-for",
			spec: "6 allow-forward-for, 7 X-Forwarded-For",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="aff">
        <if><ip value="127.0.0.2"/><then><allow-forward-for/></then></if>
        <if><ip value="198.51.100.0/24"/><then><revproxy suburl="(.*)" dest="http://{B}/from-doc-net/\1"/></then></if>
        <revproxy suburl="(.*)" dest="http://{B}/aff/\1"/>
      </site>
      <site path="eq">
        <allow-forward-for check-equal-ip="true"/>
        <revproxy suburl="(.*)" dest="http://{B}/eq/\1"/>
      </site>
      <site path="untrusted">
        <if><ip value="10.0.0.1"/><then><allow-forward-for/></then></if>
        <revproxy suburl="(.*)" dest="http://{B}/untrusted/\1"/>
      </site>
    </host>`,
			reqs: []*request{
				get("/aff/none"),
				get("/aff/one", "X-Forwarded-For: 203.0.113.7").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/one", backend: map[string]string{"X-Forwarded-For": "203.0.113.7, " + clientIP}}),
				get("/aff/two", "X-Forwarded-For: 203.0.113.7, 198.51.100.1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/from-doc-net/two", backend: map[string]string{"X-Forwarded-For": "198.51.100.1, " + clientIP}}),
				get("/aff/forged", "X-Forwarded-For: 198.51.100.1, 203.0.113.7").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/forged", backend: map[string]string{"X-Forwarded-For": "203.0.113.7, " + clientIP}}),
				get("/aff/lines", "X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 198.51.100.1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/from-doc-net/lines", backend: map[string]string{"X-Forwarded-For": "198.51.100.1, " + clientIP}}),
				get("/aff/garbage", "X-Forwarded-For: nonsense, 203.0.113.7").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/garbage", backend: map[string]string{"X-Forwarded-For": "203.0.113.7, " + clientIP}}),
				get("/aff/garbage2", "X-Forwarded-For: 203.0.113.7, nonsense").withNote("not an IP: header ignored").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/garbage2", backend: map[string]string{"X-Forwarded-For": clientIP}}),
				get("/aff/spaces", "X-Forwarded-For: 203.0.113.7 ,198.51.100.1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/from-doc-net/spaces", backend: map[string]string{"X-Forwarded-For": "198.51.100.1, " + clientIP}}),
				get("/aff/three", "X-Forwarded-For: 192.0.2.1, 203.0.113.7, 198.51.100.1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/from-doc-net/three", backend: map[string]string{"X-Forwarded-For": "198.51.100.1, " + clientIP}}),
				get("/aff/v6", "X-Forwarded-For: 2001:db8::1, 198.51.100.1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/from-doc-net/v6", backend: map[string]string{"X-Forwarded-For": "198.51.100.1, " + clientIP}}),
				get("/aff/v6last", "X-Forwarded-For: 198.51.100.1, 2001:db8::1").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/v6last", backend: map[string]string{"X-Forwarded-For": "2001:db8::1, " + clientIP}}),
				get("/eq/x", "X-Forwarded-For: 203.0.113.7, "+clientIP),
				get("/eq/x", "X-Forwarded-For: 203.0.113.7, 192.0.2.1"),
				get("/untrusted/x", "X-Forwarded-For: 203.0.113.7, 198.51.100.1"),
				get("/aff/realip", "X-Forwarded-For: 203.0.113.7", "X-Real-IP: 192.0.2.9", "True-Client-IP: 203.0.113.7", "X-Forwarded-Host: front.example").
					withNote("trusted proxy: its client-address fields pass, X-Real-IP is the client").witness(rowXFFEntry).
					wants(want{status: 200, target: "/aff/realip", backend: map[string]string{"X-Forwarded-For": "203.0.113.7, " + clientIP,
						"X-Real-IP": "203.0.113.7", "True-Client-IP": "203.0.113.7", "X-Forwarded-Host": "front.example"}}),
				get("/untrusted/realip", "X-Forwarded-For: 203.0.113.7", "X-Real-IP: 192.0.2.9", "CF-Connecting-IP: 192.0.2.9", "X-Forwarded-Host: evil.example").
					withNote("untrusted peer: client-address fields removed, X-Forwarded-Host replaced"),
			},
		},
		{
			name: "allow-forward-proto",
			spec: "6 allow-forward-proto",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="p">
        <allow-forward-proto/>
        <if><ssl/><then><revproxy suburl="(.*)" dest="http://{B}/secure/\1"/></then></if>
        <revproxy suburl="(.*)" dest="http://{B}/plain/\1"/>
      </site>
      <site path="full">
        <allow-forward-proto/>
        <revproxy fullurl="(https?)://[^/]*/full/(.*)" dest="http://{B}/scheme-\1/\2"/>
      </site>
      <site path="dir">
        <allow-forward-proto/>
        <site path="inner"><revproxy suburl="(.*)" dest="http://{B}/inner/\1"/></site>
      </site>
    </host>`,
			reqs: []*request{
				get("/p/x", "X-Forwarded-Proto: https").witness(rowScheme),
				get("/p/x", "X-Forwarded-Proto: HTTPS").witness(rowScheme),
				get("/p/x", "X-Forwarded-Proto: http"),
				get("/p/x", "X-Forwarded-Proto: ftp"),
				get("/p/x"),
				get("/full/x", "X-Forwarded-Proto: https").witness(rowScheme),
				get("/full/x"),
				get("/dir/inner", "X-Forwarded-Proto: https", "Host: test.example:{PORT}").witness(rowPGenScheme).
					wants(want{status: 301, location: "https://test.example:{PORT}/dir/inner/"}),
			},
		},
	}
}
