package filters

import (
	"reflect"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
)

// TestOutputFilter checks the header each kind of <outputfilter> leaves,
// run twice on fresh answers, and that the values given are not modified.
func TestOutputFilter(t *testing.T) {
	for _, tt := range []struct {
		xml  string
		in   []string // the answer's X-H values, nil for none
		want []string
	}{
		{`<outputfilter header="X-H" dest="v"/>`, nil, []string{"v"}},
		{`<outputfilter header="X-H" dest="v"/>`, []string{"a"}, []string{"a"}},
		{`<outputfilter header="X-H" dest="v" replace="true"/>`, []string{"a", "b"}, []string{"v"}},
		{`<outputfilter header="X-H" dest="v" replace="false"/>`, []string{"a"}, []string{"a", "v"}},
		{`<outputfilter header="X-H" dest="v" replace="false"/>`, nil, []string{"v"}},
		{`<outputfilter header="X-H" regexp="b+" dest="[\0]"/>`, nil, nil},
		{`<outputfilter header="X-H" regexp="b+" dest="[\0]"/>`, []string{"a", "c"}, []string{"a", "c"}},
		{`<outputfilter header="X-H" regexp="b+" dest="[\0]"/>`, []string{"a", "abbc", "b"}, []string{"a", "a[bb]c", "[b]"}},
		{`<outputfilter header="X-H" regexp="(b)" dest="\1"/>`, []string{"abc"}, []string{"abc"}},
	} {
		f := stagetest.Compile(t, CompileOutputFilter, tt.xml)
		for range 2 {
			st := stagetest.State(t, "GET", "/", "h", "")
			st.Answer = stagetest.Answer(200, "")
			var orig []string
			if tt.in != nil {
				orig = append([]string(nil), tt.in...)
				for _, v := range tt.in {
					st.Answer.Header.Add("X-H", v)
				}
			}
			if _, err := stagetest.Run(t, st, f); err != nil {
				t.Fatal(err)
			}
			if got := st.Answer.Header.Values("X-H"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s on %q: %q, want %q", tt.xml, tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(tt.in, orig) {
				t.Errorf("%s: values modified in place: %q, were %q", tt.xml, tt.in, orig)
			}
			// A later filter appending must not write into a shared list.
			st.Answer.Header.Add("X-H", "later")
		}
	}
}
