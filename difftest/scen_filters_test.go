package difftest

// filterScenarios cover SPEC 5: outputfilter and sethttpcode.
func filterScenarios() []*scenario {
	return []*scenario{
		{
			name: "outputfilter",
			spec: "5",
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="loc">
        <outputfilter header="X-Before" dest="never"/>
        <revproxy suburl="(.*)" dest="http://{B}/loc/\1"/>
        <outputfilter header="location" regexp="http://127\.0\.0\.1:[0-9]+/(.*)" dest="https://public.example/\1"/>
      </site>
      <site path="multi">
        <revproxy suburl="(.*)" dest="http://{B}/multi/\1"/>
        <outputfilter header="Set-Cookie" regexp="=(\d)" dest="=v\1"/>
        <outputfilter header="X-Multi" regexp="o" dest="0"/>
        <outputfilter header="X-Absent" regexp="a" dest="b"/>
      </site>
      <site path="add">
        <revproxy suburl="(.*)" dest="http://{B}/add/\1"/>
        <outputfilter header="X-Added" dest="a1"/>
        <outputfilter header="Content-Type" dest="never/used"/>
        <outputfilter header="X-Multi" dest="three" replace="false"/>
        <outputfilter header="X-Recorder-Copy" dest="c" replace="true"/>
        <outputfilter header="X-Multi" dest="only" replace="true"/>
      </site>
      <site path="code">
        <revproxy suburl="(.*)" dest="http://{B}/code/\1"/>
        <sethttpcode code="418"/>
      </site>
      <site path="codefirst">
        <sethttpcode code="418"/>
        <revproxy suburl="(.*)" dest="http://{B}/codefirst/\1"/>
      </site>
      <site path="gen">
        <redirect suburl="(.*)" dest="http://gen.example/\1"/>
        <outputfilter header="Location" regexp="gen" dest="GEN"/>
        <outputfilter header="X-Gen" dest="yes"/>
      </site>
      <site path="nf">
        <outputfilter header="X-On-404" dest="yes"/>
        <sethttpcode code="200"/>
      </site>
    </host>`,
			reqs: []*request{
				get("/loc/x", "X-Want: location"),
				get("/loc/x"),
				get("/multi/x", "X-Want: cookies").witness(rowPReorder),
				get("/multi/x"),
				get("/add/x"),
				get("/add/x", "X-Want: cookies"),
				get("/code/x"),
				get("/code/x", "X-Want: status-404"),
				get("/codefirst/x"),
				get("/gen/y"),
				get("/nf/z"),
			},
		},
	}
}
