package authbasic

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
	"github.com/ocsiproxy/ocsiproxy/stage"
)

func basic(userpass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func TestAuthBasic(t *testing.T) {
	s := stagetest.Compile(t, Compile, `<authbasic realm="Admin &quot;area&quot;">
	  <plain login="admin" password="s3cret"/>
	  <plain login="ops" password="pa:ss"/>
	</authbasic>`)
	tests := []struct {
		name   string
		header string
		want   int // 0: let through; else the answer's or error's status
	}{
		{"no credentials", "", 401},
		{"right", basic("admin:s3cret"), 0},
		{"second user, colon in the password", basic("ops:pa:ss"), 0},
		{"wrong password", basic("admin:s3cre"), 401},
		{"password of another user", basic("admin:pa:ss"), 401},
		{"longer password", basic("admin:s3cret!"), 401},
		{"empty", basic(":"), 401},
		{"scheme case-insensitive", "Authorization: basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret")), 0},
		{"other scheme", "Authorization: Bearer abc", 401},
		{"malformed base64", "Authorization: Basic !!!", 400},
		{"no colon", basic("admin"), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdrs []string
			if tt.header != "" {
				hdrs = append(hdrs, tt.header)
			}
			st := stagetest.State(t, "GET", "/admin/x", "h", "", hdrs...)
			_, err := stagetest.Run(t, st, s)
			switch {
			case err != nil:
				if stage.StatusOf(err) != tt.want {
					t.Fatalf("error %v (status %d), want %d", err, stage.StatusOf(err), tt.want)
				}
			case st.Answer == nil:
				if tt.want != 0 {
					t.Fatalf("let through, want %d", tt.want)
				}
			default:
				if st.Answer.StatusCode != tt.want {
					t.Fatalf("answered %d, want %d", st.Answer.StatusCode, tt.want)
				}
				if got := st.Answer.Header.Get("WWW-Authenticate"); got != `Basic realm="Admin \"area\""` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
	}
	// An answer given before <authbasic> is left alone.
	st := stagetest.State(t, "GET", "/", "h", "")
	st.SetAnswer(stagetest.Answer(200, "x"), st.AnswerPos)
	stagetest.Run(t, st, s)
	if st.Answer.StatusCode != 200 {
		t.Errorf("answered request: status changed to %d", st.Answer.StatusCode)
	}
}

func TestCheckIsExhaustive(t *testing.T) {
	// check compares with every user whatever the position of the match:
	// the first and the last user both work.
	a := stagetest.Compile(t, Compile, `<authbasic realm="r"><plain login="a" password="1"/><plain login="b" password="2"/><plain login="c" password="3"/></authbasic>`).(*Auth)
	for _, c := range []struct {
		l, p, want string
		ok         bool
	}{{"a", "1", "a", true}, {"c", "3", "c", true}, {"b", "3", "", false}, {"", "", "", false}} {
		got, ok := a.check(c.l, c.p)
		if got != c.want || ok != c.ok {
			t.Errorf("check(%q, %q) = %q, %v; want %q, %v", c.l, c.p, got, ok, c.want, c.ok)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<authbasic><plain login="a" password="b"/></authbasic>`, `missing attribute "realm"`},
		{`<authbasic realm="r"/>`, `missing <plain`},
		{`<authbasic realm="r"><htpasswd file="x"/></authbasic>`, `unknown authentication method <htpasswd>`},
		{`<authbasic realm="r"><plain login="a"/></authbasic>`, `missing attribute "password"`},
		{`<authbasic realm="r"><plain login="a:b" password="c"/></authbasic>`, `cannot contain ":"`},
		{`<authbasic realm="r" extra="1"><plain login="a" password="c"/></authbasic>`, `unknown attribute "extra"`},
	}
	for _, tt := range tests {
		err := stagetest.CompileErr(t, Compile, tt.xml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.xml, err, tt.want)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	c := &stagetest.Compiler{}
	a := Compile(c, stagetest.Element(b, `<authbasic realm="r"><plain login="admin" password="s3cret"/></authbasic>`)).(*Auth)
	for b.Loop() {
		a.check("admin", "wrong")
	}
}
