// Package pattern compiles the regular expressions and the "\1" templates
// of an Ocsigen configuration.
//
// Regexps use PCRE-style syntax through github.com/dlclark/regexp2 with its
// RE2 option: ASCII \d \w \s, (?P<name>...), "$" only at the very end of
// the string. Every match is bounded by a timeout, so a pathological
// pattern cannot hold a request (or a core) for long.
package pattern

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// DefaultMatchTimeout is the time limit of one match when the
// configuration does not set one.
const DefaultMatchTimeout = 100 * time.Millisecond

// ErrTimeout is returned, wrapped, when a match runs past its time limit.
// The error never contains the input.
var ErrTimeout = errors.New("regexp match timed out")

// Regexp is a compiled pattern with its match time limit.
type Regexp struct {
	re      *regexp2.Regexp
	source  string
	timeout time.Duration
}

// Compile compiles expr. When anchored is true the whole string must match
// (^(?:expr)$ semantics), as for suburl, fullurl and access-control
// patterns; output filters use unanchored patterns. A timeout of 0 means
// [DefaultMatchTimeout].
func Compile(expr string, anchored bool, timeout time.Duration) (*Regexp, error) {
	if timeout <= 0 {
		timeout = DefaultMatchTimeout
	}
	// Compile the pattern alone first, so that an unbalanced ")" cannot
	// close the anchoring group and change what the pattern means.
	re, err := regexp2.Compile(expr, regexp2.RE2)
	if err != nil {
		return nil, fmt.Errorf("bad regexp %q: %s", expr, cleanErr(err))
	}
	if anchored {
		re, err = regexp2.Compile("^(?:"+expr+")$", regexp2.RE2)
		if err != nil {
			return nil, fmt.Errorf("bad regexp %q: %s", expr, cleanErr(err))
		}
	}
	re.MatchTimeout = timeout
	return &Regexp{re: re, source: expr, timeout: timeout}, nil
}

func cleanErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// String returns the pattern as written in the configuration.
func (r *Regexp) String() string { return r.source }

// Groups returns the numbers of the pattern's capturing groups, 0 included.
func (r *Regexp) Groups() []int { return r.re.GetGroupNumbers() }

// Match matches s. It returns nil, nil when s does not match, and an error
// wrapping [ErrTimeout] when the match ran past the time limit.
func (r *Regexp) Match(s string) (*regexp2.Match, error) {
	m, err := r.re.FindStringMatch(s)
	if err != nil {
		return nil, r.wrap(err)
	}
	return m, nil
}

// MatchString reports whether s matches.
func (r *Regexp) MatchString(s string) (bool, error) {
	ok, err := r.re.MatchString(s)
	if err != nil {
		return false, r.wrap(err)
	}
	return ok, nil
}

// ReplaceAll replaces every match of the pattern in s by t expanded with
// the match's groups.
func (r *Regexp) ReplaceAll(s string, t *Template) (string, error) {
	out, err := r.re.ReplaceFunc(s, func(m regexp2.Match) string { return t.Expand(&m) }, -1, -1)
	if err != nil {
		return "", r.wrap(err)
	}
	return out, nil
}

// wrap hides the regexp2 error, whose text contains the whole input.
func (r *Regexp) wrap(error) error {
	return fmt.Errorf("%w after %v", ErrTimeout, r.timeout)
}

// Template is a parsed Ocsigen destination template ("http://b/\1"):
// \0..\9 are the match's groups (one digit: \10 is group 1 then "0"), a
// group that did not take part is empty, a backslash before any other
// character is that character, and "$" is literal.
type Template struct {
	source string
	parts  []part
}

type part struct {
	lit   string
	group int // -1 for a literal part
}

// ParseTemplate parses tpl. groups lists the group numbers the template
// may use (nil allows none but a literal template); a reference to another
// group, or a trailing backslash, is an error.
func ParseTemplate(tpl string, groups []int) (*Template, error) {
	t := &Template{source: tpl}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String(), group: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(tpl); {
		c := tpl[i]
		if c != '\\' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 == len(tpl) {
			return nil, fmt.Errorf("template %q ends with a backslash", tpl)
		}
		if d := tpl[i+1]; d >= '0' && d <= '9' {
			n := int(d - '0')
			if !hasGroup(groups, n) {
				return nil, fmt.Errorf("template %q refers to group \\%d, which the regexp does not have", tpl, n)
			}
			flush()
			t.parts = append(t.parts, part{group: n})
			i += 2
			continue
		}
		_, size := utf8.DecodeRuneInString(tpl[i+1:])
		lit.WriteString(tpl[i+1 : i+1+size])
		i += 1 + size
	}
	flush()
	return t, nil
}

func hasGroup(groups []int, n int) bool {
	for _, g := range groups {
		if g == n {
			return true
		}
	}
	return false
}

// String returns the template as written.
func (t *Template) String() string { return t.source }

// Expand instantiates the template with m's groups; m may be nil for a
// template without group references.
func (t *Template) Expand(m *regexp2.Match) string {
	if len(t.parts) == 1 && t.parts[0].group < 0 {
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.group < 0 {
			b.WriteString(p.lit)
			continue
		}
		if m == nil {
			continue
		}
		if g := m.GroupByNumber(p.group); g != nil && len(g.Captures) > 0 {
			b.WriteString(g.String())
		}
	}
	return b.String()
}
