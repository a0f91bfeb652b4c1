package cors

import (
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
)

func TestCORS(t *testing.T) {
	full := `<cors max_age="86400" credentials="true" exposed_headers="X-A ,X-B,
	  X-C" methods="GET, POST"/>`
	tests := []struct {
		name     string
		xml      string
		method   string
		headers  []string
		answered bool // an answer exists before <cors>
		// want is the answer's status (0: none) and headers ("" value:
		// absent).
		status int
		want   map[string]string
	}{
		{"preflight", full, "OPTIONS", []string{"Origin: https://app.example", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: X-Token, Content-Type"}, false, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "X-Token, Content-Type",
			"Access-Control-Max-Age": "86400", "Access-Control-Expose-Headers": "X-A, X-B, X-C", "Vary": "Origin",
		}},
		{"preflight, method refused", full, "OPTIONS", []string{"Origin: https://app.example", "Access-Control-Request-Method: DELETE"}, false, 0, nil},
		{"preflight, methods case-sensitive", full, "OPTIONS", []string{"Origin: https://app.example", "Access-Control-Request-Method: post"}, false, 0, nil},
		{"OPTIONS without Origin", full, "OPTIONS", nil, false, 0, nil},
		{"GET unanswered", full, "GET", []string{"Origin: https://app.example"}, false, 0, nil},
		{"answer gets the headers", full, "GET", []string{"Origin: https://app.example"}, true, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "", "Vary": "Origin",
		}},
		{"answer without Origin", full, "GET", nil, true, 200, map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{"answer, method refused", full, "GET", []string{"Origin: https://app.example", "Access-Control-Request-Method: PUT"}, true, 200, map[string]string{
			"Access-Control-Allow-Origin": "", "Vary": "Origin",
		}},
		{"defaults", `<cors/>`, "OPTIONS", []string{"Origin: https://app.example", "Access-Control-Request-Method: PATCH"}, false, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "PATCH",
			"Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "", "Access-Control-Expose-Headers": "",
		}},
		{"answer's own CORS headers replaced", `<cors/>`, "GET", []string{"Origin: https://app.example"}, true, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://app.example",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stagetest.Compile(t, Compile, tt.xml)
			st := stagetest.State(t, tt.method, "/api/x", "h", "", tt.headers...)
			if tt.answered {
				st.SetAnswer(stagetest.Answer(200, "body", "Access-Control-Allow-Origin: *", "Vary: Accept-Encoding"), st.AnswerPos)
			}
			stagetest.Run(t, st, s)
			if st.Answer == nil {
				if tt.status != 0 {
					t.Fatalf("not answered, want %d", tt.status)
				}
				return
			}
			if st.Answer.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", st.Answer.StatusCode, tt.status)
			}
			for k, v := range tt.want {
				got := st.Answer.Header.Values(k)
				if k == "Vary" {
					if !contains(got, v) {
						t.Errorf("Vary %q lacks %q", got, v)
					}
					continue
				}
				if k == "Access-Control-Allow-Origin" && v == "" && tt.answered {
					// The backend's own value is kept.
					if len(got) != 1 || got[0] != "*" {
						t.Errorf("%s: %q, want the answer's own", k, got)
					}
					continue
				}
				if (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestVaryNotDuplicated(t *testing.T) {
	s := stagetest.Compile(t, Compile, `<cors/>`)
	for _, vary := range []string{"origin", "Accept-Encoding, Origin", "*"} {
		st := stagetest.State(t, "GET", "/", "h", "", "Origin: https://a.example")
		st.SetAnswer(stagetest.Answer(200, "", "Vary: "+vary), st.AnswerPos)
		stagetest.Run(t, st, s)
		if got := st.Answer.Header.Values("Vary"); len(got) != 1 {
			t.Errorf("Vary %q: became %q", vary, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<cors credentials="yes"/>`, `credentials="yes"`},
		{`<cors max_age="long"/>`, `max_age="long"`},
		{`<cors origin="*"/>`, `unknown attribute "origin"`},
		{`<cors><x/></cors>`, `unexpected content`},
	}
	for _, tt := range tests {
		err := stagetest.CompileErr(t, Compile, tt.xml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.xml, err, tt.want)
		}
	}
}
