package staticmod

import (
	"errors"
	"os/user"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
)

// fakeHomes is a user database for tests: name -> home directory. A name
// absent from it is unknown; "broken" makes the lookup itself fail.
func fakeHomes(homes map[string]string) HomeLookup {
	return func(name string) (string, error) {
		if name == "broken" {
			return "", errors.New("nss: connection refused")
		}
		h, ok := homes[name]
		if !ok {
			return "", user.UnknownUserError(name)
		}
		return h, nil
	}
}

// withHomes compiles the <static> elements of hostXML and makes them look
// homes up in lookup.
func withHomes(t *testing.T, hostXML string, lookup HomeLookup) []stage.Stage {
	t.Helper()
	stages := compileHost(t, "", hostXML)
	for _, s := range stages {
		if st, ok := s.(*Static); ok {
			st.home = lookup
		}
	}
	return stages
}

func TestUserDirectories(t *testing.T) {
	files := tree(t, map[string]string{
		"alice/public_html/index.html": "alice home",
		"alice/public_html/a.txt":      "alice a",
		"alice/private.txt":            "private",
		"bob/public_html/b.txt":        "bob b",
		"slash/public_html/s.txt":      "slash s",
		"404.html":                     "error page",
		"jail/inside/j.txt":            "jailed j",
	})
	lookup := fakeHomes(map[string]string{
		"alice":  files + "/alice",
		"bob":    files + "/bob",
		"slash":  files + "/slash/",
		"rel":    "alice",
		"dotdot": files + "/bob/../alice",
		"empty":  "",
		"jailed": "/inside",
	})
	userdir := `<static regexp="~([^/]*)(.*)" dest="$u(\1)/public_html\2"/>`
	tests := []struct {
		name, host, target string
		status, left       int
		body               string
		wantErr            string // the request fails with this error
	}{
		{"user file", userdir, "/~alice/a.txt", 200, 0, "alice a", ""},
		{"user index", userdir, "/~alice/", 200, 0, "alice home", ""},
		{"other user", userdir, "/~bob/b.txt", 200, 0, "bob b", ""},
		{"home with a trailing slash", userdir, "/~slash/s.txt", 200, 0, "slash s", ""},
		{"unknown user: next, 404", userdir, "/~carol/a.txt", 0, 404, "", ""},
		{"empty user name: next", userdir, "/~/a.txt", 0, 404, "", ""},
		{"unknown user: next instruction answers", userdir + `<static code="404" dest="` + files + `/404.html"/>`, "/~carol/a.txt", 404, 0, "error page", ""},
		{"relative home refused", userdir, "/~rel/a.txt", 0, 404, "", ""},
		{"home with .. refused", userdir, "/~dotdot/a.txt", 0, 404, "", ""},
		{"empty home refused", userdir, "/~empty/a.txt", 0, 404, "", ""},
		{"lookup failure: 500", userdir, "/~broken/a.txt", 0, 0, "", "nss: connection refused"},
		{"user name with a slash refused", `<static regexp="u/(.*)/f/(.*)" dest="$u(\1)/\2"/>`, "/u/alice/public_html/f/a.txt", 0, 404, "", ""},
		{"user name .. refused", `<static regexp="u/([^/]*)-([^/]*)/(.*)" dest="$u(\1\2)/\3"/>`, "/u/.-./alice/public_html/a.txt", 0, 404, "", ""},
		{"literal user", `<static regexp="(.*)" dest="$u(alice)/public_html/\1"/>`, "/a.txt", 200, 0, "alice a", ""},
		{"text before $u", `<static regexp="(.*)" dest="` + files + `/jail$u(jailed)/\1"/>`, "/j.txt", 200, 0, "jailed j", ""},
		{"root with $u bounds the file", `<static regexp="~([^/]*)/(.*)" dest="$u(\1)/public_html/\2" root="$u(\1)/public_html"/>`, "/~alice/a.txt", 200, 0, "alice a", ""},
		{"root with $u: outside root 403", `<static regexp="~([^/]*)/(.*)" dest="$u(\1)/\2" root="$u(\1)/public_html"/>`, "/~alice/private.txt", 0, 403, "", ""},
		{"root names an unknown user: next", `<static regexp="~([^/]*)/(.*)" dest="` + files + `/alice/public_html/\2" root="$u(nobody\1)"/>`, "/~alice/a.txt", 0, 404, "", ""},
		{"code form keeps the status", `<static code="404" dest="$u(alice)/public_html/a.txt"/>`, "/missing", 404, 0, "alice a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := withHomes(t, tt.host, lookup)
			st := stagetest.State(t, "GET", tt.target, "files.example", "")
			_, err := stagetest.Run(t, st, stages...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || stage.StatusOf(err) != 500 {
					t.Fatalf("GET %s: error %v (status %d), want a 500 error containing %q", tt.target, err, stage.StatusOf(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET %s: %v", tt.target, err)
			}
			var r result
			if st.Answer == nil {
				r.left = st.Status
			} else {
				w := stagetest.Write(st)
				r = result{status: w.Code, body: w.Body.String()}
			}
			if r.status != tt.status || r.left != tt.left {
				t.Fatalf("GET %s: answered %d (left %d), want %d (left %d)", tt.target, r.status, r.left, tt.status, tt.left)
			}
			if r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
		})
	}
}

func TestParseUserTemplate(t *testing.T) {
	re, err := pattern.Compile(`~([^/]*)(.*)`, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in             string
		before, user   string // the parts as written; user "" for no $u
		after, wantErr string
	}{
		{in: `/srv/\1\2`, before: `/srv/\1\2`},
		{in: `$u(\1)/public_html\2`, user: `\1`, after: `/public_html\2`},
		{in: `/jail$u(\1)/www`, before: `/jail`, user: `\1`, after: `/www`},
		{in: `$u(www-data)`, user: `www-data`},
		{in: `$u(user\2`, wantErr: `without a closing ")"`},
		{in: `$u(\1)/$u(\1)`, wantErr: `more than one $u(...)`},
		{in: `$u(a$u(b))`, wantErr: `more than one $u(...)`},
		{in: `$u()/x`, wantErr: `names no user`},
		{in: `$u(a/b)/x`, wantErr: `"a/b" is not a user name`},
		{in: `$u(..)/x`, wantErr: `".." is not a user name`},
		{in: `$u(\3)/x`, wantErr: `group \3`},
		{in: `$u(\1)\`, wantErr: `backslash`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := parseUserTemplate(tt.in, re)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotUser, gotAfter string
			if u.user != nil {
				gotUser, gotAfter = u.user.String(), u.after.String()
			}
			if u.before.String() != tt.before || gotUser != tt.user || gotAfter != tt.after {
				t.Errorf("parts %q %q %q, want %q %q %q", u.before, gotUser, gotAfter, tt.before, tt.user, tt.after)
			}
		})
	}
}

// TestSystemHome checks the default lookup against the user running the
// test, whoever that is, and a name no user database has.
func TestSystemHome(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current user: %v", err)
	}
	re, err := pattern.Compile(`~([^/]*)(.*)`, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUserTemplate(`$u(\1)/public_html\2`, re)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string
		noUser     bool
	}{
		{"~" + me.Username + "/x.html", strings.TrimRight(me.HomeDir, "/") + "/public_html/x.html", false},
		{"~ocsiproxy-no-such-user-7f3a/x.html", "", true},
	}
	for _, tt := range tests {
		groups, ok, err := re.MatchGroups(tt.path, nil)
		if err != nil || !ok {
			t.Fatalf("%s: no match (%v)", tt.path, err)
		}
		got, err := u.expand(groups, systemHome)
		if tt.noUser {
			if !errors.Is(err, errNoUser) {
				t.Errorf("%s: got %q, %v; want errNoUser", tt.path, got, err)
			}
			continue
		}
		if !validHome(me.HomeDir) {
			t.Skipf("the current user's home %q is not a clean absolute path", me.HomeDir)
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}
