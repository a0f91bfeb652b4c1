package staticmod

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/pattern"
)

// userMark opens a user-directory reference in dest= and root=.
const userMark = "$u("

// HomeLookup returns the home directory of the user called name. An
// unknown user is reported as a [user.UnknownUserError].
type HomeLookup func(name string) (home string, err error)

// systemHome looks name up in the system's user database with
// [user.Lookup] (getpwnam, so NSS sources such as LDAP count when the
// binary is built with cgo; /etc/passwd otherwise).
func systemHome(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// userTemplate is a dest= or root= of <static regexp=>, as Ocsigen's
// parse_user_dir splits it: the template before "$u(", the one between
// "$u(" and the next ")" (the user name), and the one after. user is nil
// when the attribute has no "$u(": before is then the whole template.
type userTemplate struct {
	before, user, after *pattern.Template
}

// parseUserTemplate parses s, whose "\N" refer to the groups of re. At
// most one "$u(NAME)" is allowed, NAME must not be empty, and a NAME
// without group references must be a possible user name (see
// [validUserName]).
func parseUserTemplate(s string, re *pattern.Regexp) (*userTemplate, error) {
	i := strings.Index(s, userMark)
	if i < 0 {
		t, err := pattern.ParseTemplate(s, re)
		if err != nil {
			return nil, err
		}
		return &userTemplate{before: t}, nil
	}
	rest := s[i+len(userMark):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return nil, fmt.Errorf("%q: %q without a closing \")\"", s, userMark)
	}
	name, after := rest[:j], rest[j+1:]
	if strings.Contains(name, userMark) || strings.Contains(after, userMark) {
		return nil, fmt.Errorf("%q: more than one $u(...)", s)
	}
	if name == "" {
		return nil, fmt.Errorf("%q: $u() names no user", s)
	}
	var u userTemplate
	var err error
	if u.before, err = pattern.ParseTemplate(s[:i], re); err != nil {
		return nil, err
	}
	if u.user, err = pattern.ParseTemplate(name, re); err != nil {
		return nil, err
	}
	if u.after, err = pattern.ParseTemplate(after, re); err != nil {
		return nil, err
	}
	if lit, constant := u.user.LiteralPrefix(); constant && !validUserName(lit) {
		return nil, fmt.Errorf("%q: %q is not a user name", s, lit)
	}
	return &u, nil
}

// errNoUser is the error of a $u(...) that names no usable user: the
// request is passed on, as Ocsigen does for an unknown user
// (Ocsigen_extensions.NoSuchUser).
var errNoUser = errors.New("no such user")

// expand instantiates the template with the groups of a match, as
// [pattern.Regexp.MatchGroups] gives them. For $u(NAME), NAME is
// replaced by the home directory lookup gives for it. The error wraps
// errNoUser when NAME is not a user name, the user is unknown, or the home
// directory is not an absolute path free of "." and ".." segments (so
// that no expansion leaves the home directory by a trick of the user
// database); any other error is the lookup's own.
func (u *userTemplate) expand(groups []string, lookup HomeLookup) (string, error) {
	if u.user == nil {
		return u.before.ExpandGroups(groups), nil
	}
	name := u.user.ExpandGroups(groups)
	if !validUserName(name) {
		return "", fmt.Errorf("%q is not a user name: %w", name, errNoUser)
	}
	home, err := lookup(name)
	if err != nil {
		if _, unknown := errors.AsType[user.UnknownUserError](err); unknown {
			return "", fmt.Errorf("user %q: %w", name, errNoUser)
		}
		return "", fmt.Errorf("user %q: %w", name, err)
	}
	if !validHome(home) {
		return "", fmt.Errorf("user %q: home directory %q is not a clean absolute path: %w", name, home, errNoUser)
	}
	if home != "/" {
		home = strings.TrimRight(home, "/")
	}
	return u.before.ExpandGroups(groups) + home + u.after.ExpandGroups(groups), nil
}

// validUserName reports whether name can be looked up as a user: not
// empty, not "." or "..", and without "/", ":" or control characters,
// which no user database entry has and which could make a file name out
// of it.
func validUserName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c == ':' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// validHome reports whether home is an absolute path without NUL and
// without "." or ".." segments.
func validHome(home string) bool {
	if !filepath.IsAbs(home) || strings.ContainsRune(home, 0) {
		return false
	}
	for seg := range strings.SplitSeq(home, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
