package pattern

import (
	"regexp"
	"regexp/syntax"
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
// values net/http accepts): MatchString uses it alone. MatchGroups uses
// it alone too when the engines choose the same groups (groupsAlike),
// and otherwise runs regexp2 only on a subject it matches, for the
// groups. Patterns that need backtracking (back-references, lookarounds,
// atomic groups, possessive quantifiers) or syntax the engines read
// differently stay with regexp2 and its timeout.

// linearSyntax reports whether expr uses only syntax that Go's regexp
// and regexp2 (RE2 option) read the same way; regexp.Compile must accept
// it too.
func linearSyntax(expr string) bool {
	if strings.Contains(expr, "[:") || strings.Contains(expr, "-[") || strings.Contains(expr, "{,") {
		return false // POSIX classes, .NET class subtraction, "{,n}"
	}
	if strings.Contains(expr, "(?i") && strings.Contains(expr, `\W`) {
		return false // regexp2's "(?i)[\W]" matches "i" and "I", Go's does not
	}
	inClass := false // between the brackets of a character class
	first := 0       // where the class's characters start
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c >= 0x80:
			return false
		case c == '[' && !inClass:
			inClass = true
			if i+1 < len(expr) && expr[i+1] == '^' {
				i++
			}
			first = i + 1
			if i+1 < len(expr) && expr[i+1] == ']' {
				i++ // a "]" first in a class is the character
			}
		case c == ']' && inClass:
			inClass = false
		case c == '\\':
			if i+1 == len(expr) {
				return false
			}
			if inClass && rangeEnd(expr, i, first) {
				return false // "[ -\-]": a range to or from an escape is read apart
			}
			i++
			d := expr[i]
			switch {
			case d == 'x' && i+1 < len(expr) && expr[i+1] == '{':
				return false // "\x{17F}": a non-ASCII letter may fold to ASCII differently
			case d == 'p' || d == 'P':
				return false // Unicode classes: regexp2 has "\PC" miss "!"
			case strings.IndexByte("dDwWsSbBtnrfvxAz", d) >= 0:
			case d >= '0' && d <= '9', d >= 'a' && d <= 'z', d >= 'A' && d <= 'Z':
				return false // references, \Q..\E, \G, \Z, \k, \u, ...
			case d == '<' || d == '\'':
				return false // "\<name>", "\'name'": references in regexp2, text in Go's
			}
		case c == '{' && leadingZeroCount(expr[i+1:]):
			return false // "{01}" repeats once in regexp2, is literal in Go's
		case c == '(' && i+1 < len(expr) && expr[i+1] == '?':
			rest := expr[i+2:]
			switch {
			case strings.HasPrefix(rest, "P<") && numericName(rest[2:]), strings.HasPrefix(rest, "<") && numericName(rest[1:]):
				return false // "(?P<1>a)": regexp2 makes it group 1, Go's regexp the next one
			case strings.HasPrefix(rest, ":"), strings.HasPrefix(rest, "P<"), strings.HasPrefix(rest, "i)"), strings.HasPrefix(rest, "i:"):
			case strings.HasPrefix(rest, "<") && !strings.HasPrefix(rest, "<=") && !strings.HasPrefix(rest, "<!"):
			default:
				return false // lookarounds, atomic groups, comments, other flags
			}
		}
	}
	return true
}

// rangeEnd reports whether the escape at i, in a character class whose
// characters start at first, ends or starts a range: a "-" before it
// that is not the class's first character, or one after it that is not
// its last ("[\w-]" and "[-\w]" have no range).
func rangeEnd(expr string, i, first int) bool {
	if i-1 > first && expr[i-1] == '-' {
		return true
	}
	return i+3 < len(expr) && expr[i+2] == '-' && expr[i+3] != ']'
}

// numericName reports whether the group name that s starts with starts
// with a digit.
func numericName(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// leadingZeroCount reports whether s, what follows a "{", starts with
// the counts of a repetition ("1", "1,", "1,2") one of which is written
// with a leading zero.
func leadingZeroCount(s string) bool {
	start := true // at the start of a count
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ',':
			start = true
		case c >= '0' && c <= '9':
			if start && c == '0' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				return true
			}
			start = false
		default:
			return false
		}
	}
	return false
}

// compileLinear returns the linear-time form of the anchored pattern
// expr with ngroups capturing groups, nil when there is none, and whether
// it also gives the groups regexp2 would (groupsAlike).
func compileLinear(expr string, ngroups int) (re *regexp.Regexp, groups bool) {
	if !linearSyntax(expr) {
		return nil, false
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false // alone first: a ")" must not close the anchoring group
	}
	re, err = regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil || re.NumSubexp() != ngroups {
		return nil, false
	}
	seen := map[string]bool{}
	for _, name := range re.SubexpNames() {
		if name != "" && seen[name] {
			return nil, false // regexp2 makes one group of same-named ones
		}
		seen[name] = true
	}
	return re, groupsAlike(tree)
}

// groupsAlike reports whether Go's regexp chooses the groups of a match
// of re as regexp2 does. Both prefer what a backtracking engine tries
// first (leftmost-first), but they part where a repeated part can match
// the empty string: "(a?)+" on "a" gives group 1 "a" in Go's regexp and
// "" in regexp2, which stops a loop after an empty turn; and where a
// group is inside a loop inside another. A pattern without such
// repetitions ("(.*)", "([^/]+)/(v1|v2)/(.*)", "((?:[^/]+/)*)(.*)") is
// read alike; TestLinearAsRegexp2 and FuzzLinearGroups compare the two.
func groupsAlike(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		if matchesEmpty(re.Sub[0]) {
			return false
		}
		if has(re.Sub[0], syntax.OpCapture) && hasRepeat(re.Sub[0]) {
			// "(?:(a|b+)+){2}": regexp2 backtracks nested loops in an
			// order of its own (Go's regexp chooses as Perl does).
			return false
		}
	}
	for _, sub := range re.Sub {
		if !groupsAlike(sub) {
			return false
		}
	}
	return true
}

// has reports whether re or a part of it is an op.
func has(re *syntax.Regexp, op syntax.Op) bool {
	if re.Op == op {
		return true
	}
	for _, sub := range re.Sub {
		if has(sub, op) {
			return true
		}
	}
	return false
}

// hasRepeat reports whether re or a part of it is a repetition.
func hasRepeat(re *syntax.Regexp) bool {
	return has(re, syntax.OpStar) || has(re, syntax.OpPlus) || has(re, syntax.OpQuest) || has(re, syntax.OpRepeat)
}

// matchesEmpty reports whether re can match the empty string (at some
// position: assertions count as empty).
func matchesEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return false
	case syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || matchesEmpty(re.Sub[0])
	case syntax.OpPlus, syntax.OpCapture:
		return matchesEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !matchesEmpty(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if matchesEmpty(sub) {
				return true
			}
		}
		return false
	}
	return true // the empty match, line and text boundaries, \b and \B
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
