package pattern

import (
	"regexp"
	"strings"
)

// Linear-time matching. regexp2 backtracks: a pattern such as "(a+)+b"
// takes exponential time on "aaa...ac", and each such request burns a
// core for the whole match timeout, so a few concurrent attackers slow
// every other request down. Go's regexp (RE2) decides in time linear in
// the subject whether it matches, and whether an anchored pattern matches
// a string does not depend on the engine. So an anchored pattern whose
// syntax means the same to both engines is also compiled with Go's
// regexp, which decides for ASCII subjects without control characters
// (every normalised path and query, every valid Host, and the header
// values net/http accepts): MatchString uses it alone, MatchGroups runs
// regexp2 only on a subject it matches, for the groups (the engines may
// choose groups differently where a repeated part can match the empty
// string). Patterns that need backtracking (back-references,
// lookarounds, atomic groups, possessive quantifiers) or syntax the
// engines read differently stay with regexp2 and its timeout.

// linearSyntax reports whether expr uses only syntax that Go's regexp
// and regexp2 (RE2 option) read the same way; regexp.Compile must accept
// it too.
func linearSyntax(expr string) bool {
	if strings.Contains(expr, "[:") || strings.Contains(expr, "-[") || strings.Contains(expr, "{,") {
		return false // POSIX classes, .NET class subtraction, "{,n}"
	}
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c >= 0x80:
			return false
		case c == '\\':
			if i+1 == len(expr) {
				return false
			}
			i++
			d := expr[i]
			switch {
			case strings.IndexByte("dDwWsSbBtnrfvxpPAz", d) >= 0:
			case d >= '0' && d <= '9', d >= 'a' && d <= 'z', d >= 'A' && d <= 'Z':
				return false // references, \Q..\E, \G, \Z, \k, \u, ...
			}
		case c == '(' && i+1 < len(expr) && expr[i+1] == '?':
			rest := expr[i+2:]
			switch {
			case strings.HasPrefix(rest, ":"), strings.HasPrefix(rest, "P<"), strings.HasPrefix(rest, "i)"), strings.HasPrefix(rest, "i:"):
			case strings.HasPrefix(rest, "<") && !strings.HasPrefix(rest, "<=") && !strings.HasPrefix(rest, "<!"):
			default:
				return false // lookarounds, atomic groups, comments, other flags
			}
		}
	}
	return true
}

// compileLinear returns the linear-time form of the anchored pattern
// expr with ngroups capturing groups, nil when there is none.
func compileLinear(expr string, ngroups int) *regexp.Regexp {
	if !linearSyntax(expr) {
		return nil
	}
	if _, err := regexp.Compile(expr); err != nil {
		return nil // alone first: a ")" must not close the anchoring group
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil || re.NumSubexp() != ngroups {
		return nil
	}
	seen := map[string]bool{}
	for _, name := range re.SubexpNames() {
		if name != "" && seen[name] {
			return nil // regexp2 makes one group of same-named ones
		}
		seen[name] = true
	}
	return re
}

// linearSubject reports whether s is printable ASCII (tabs allowed): the
// subjects on which both engines agree byte for byte.
func linearSubject(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}
