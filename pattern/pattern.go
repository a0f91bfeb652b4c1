// Package pattern compiles the regular expressions and the "\1" templates
// of an Ocsigen configuration.
//
// Regexps use PCRE-style syntax through github.com/dlclark/regexp2 with its
// RE2 option: ASCII \d \w \s, (?P<name>...), "$" only at the very end of
// the string. Every match is bounded by a timeout, so a pathological
// pattern cannot hold a request (or a core) for long. An anchored pattern
// that Go's regexp reads the same way is matched by it instead, in linear
// time, and its groups taken from it where both engines choose them
// alike (linear.go).
package pattern

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
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

func init() {
	// The deadline of a match is checked by a clock that ticks every
	// period (100 ms by default in regexp2), so a timeout could overrun by
	// that much. Must be set before any match starts.
	regexp2.SetTimeoutCheckPeriod(10 * time.Millisecond)
}

// Regexp is a compiled pattern with its match time limit.
type Regexp struct {
	// re is the regexp2 form, or nil until the first match that needs it
	// (backtracker) when the pattern is simple or linearGroups: such a
	// pattern needs it only for a subject that is not printable ASCII,
	// so what Compile built to check the pattern is dropped. A
	// configuration of 10,000 rules "svcN/(v1|v2)/(.*)" so keeps 40 MiB
	// of heap instead of 58.
	re       atomic.Pointer[regexp2.Regexp]
	compiled string // what re is compiled from
	source   string
	timeout  time.Duration
	// groups maps PCRE group numbers (capturing groups counted left to
	// right, as Ocsigen numbers them) to regexp2's numbers (which count
	// named groups after unnamed ones, as .NET does).
	groups []int
	// simple, when set, matches without regexp2 (anchored patterns of
	// the shapes parseSimple recognises).
	simple *simple
	// prefix is what every subject an anchored pattern matches starts
	// with (LiteralPrefix, ASCII): a subject without it is refused
	// before regexp2 runs.
	prefix string
	// linear, when set, decides for printable ASCII subjects in linear
	// time (Go's regexp, see linear.go).
	linear *regexp.Regexp
	// linearGroups is whether linear also gives the groups regexp2
	// would (see groupsAlike).
	linearGroups bool
	// needle is what every match of an unanchored pattern starts with
	// (LiteralPrefix): ReplaceAll leaves a string without it alone.
	needle string
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
	names := captureNames(expr)
	groups := []int{0}
	unnamed := 0
	for _, name := range names {
		if name == "" {
			unnamed++
			groups = append(groups, unnamed)
		} else {
			groups = append(groups, re.GroupNumberFromName(name))
		}
	}
	r := &Regexp{compiled: expr, source: expr, timeout: timeout, groups: groups}
	if anchored {
		r.compiled = "^(?:" + expr + ")$"
		if sp, ok := parseSimple(expr); ok {
			r.simple = &sp
		}
		r.prefix = literalPrefix(expr)
		if r.simple == nil {
			r.linear, r.linearGroups = compileLinear(expr, len(groups)-1)
		}
	} else {
		r.needle = literalPrefix(expr)
	}
	if r.simple == nil && !r.linearGroups {
		r.re.Store(re)
	}
	return r, nil
}

// backtracker returns the regexp2 form of r, compiling it on first use.
func (r *Regexp) backtracker() *regexp2.Regexp {
	if re := r.re.Load(); re != nil {
		return re
	}
	// Compile accepted the same expression: it compiles again.
	re := regexp2.MustCompile(r.compiled, regexp2.RE2)
	re.MatchTimeout = r.timeout
	if !r.re.CompareAndSwap(nil, re) {
		return r.re.Load()
	}
	return re
}

// captureNames lists the capturing groups of expr from left to right:
// "" for an unnamed group, the name of a named one ((?P<n>...),
// (?<n>...), (?'n'...)). Escapes, character classes, comments and the
// other (?...) constructs are skipped.
func captureNames(expr string) []string {
	var names []string
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(expr, i)
		case '(':
			rest := expr[i+1:]
			if !strings.HasPrefix(rest, "?") {
				names = append(names, "")
				continue
			}
			rest = rest[1:]
			switch {
			case strings.HasPrefix(rest, "#"):
				if end := strings.IndexByte(rest, ')'); end >= 0 {
					i += 2 + end
				} else {
					i = len(expr)
				}
			case strings.HasPrefix(rest, "P<"):
				names = append(names, groupName(rest[2:], '>'))
			case strings.HasPrefix(rest, "<") && !strings.HasPrefix(rest, "<=") && !strings.HasPrefix(rest, "<!"):
				names = append(names, groupName(rest[1:], '>'))
			case strings.HasPrefix(rest, "'"):
				names = append(names, groupName(rest[1:], '\''))
			}
		}
	}
	return names
}

// classEnd returns the index of the "]" that ends the character class
// opening at expr[i] (len(expr) when it is not closed): the first "]"
// that is not the class's first character; escapes inside are skipped.
func classEnd(expr string, i int) int {
	j := i + 1
	if j < len(expr) && expr[j] == '^' {
		j++
	}
	if j < len(expr) && expr[j] == ']' {
		j++
	}
	for j < len(expr) && expr[j] != ']' {
		if expr[j] == '\\' {
			j++
		}
		j++
	}
	return j
}

func groupName(s string, end byte) string {
	if i := strings.IndexByte(s, end); i >= 0 {
		return s[:i]
	}
	return s
}

func cleanErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// String returns the pattern as written in the configuration.
func (r *Regexp) String() string { return r.source }

// RequiredPrefix returns what every subject an anchored pattern matches
// starts with ("" when unknown, and for an unanchored pattern): Match,
// MatchGroups and MatchString refuse any other subject before running an
// engine.
func (r *Regexp) RequiredPrefix() string { return r.prefix }

// NumGroups returns the number of capturing groups, group 0 excluded.
func (r *Regexp) NumGroups() int { return len(r.groups) - 1 }

// Match matches s. It returns nil, nil when s does not match, and an error
// wrapping [ErrTimeout] when the match ran past the time limit.
func (r *Regexp) Match(s string) (*regexp2.Match, error) {
	if !strings.HasPrefix(s, r.prefix) {
		return nil, nil
	}
	start := time.Now()
	for try := 0; ; try++ {
		m, err := r.backtracker().FindStringMatch(s)
		if err == nil {
			return m, nil
		}
		if !r.spurious(start, try) {
			return nil, r.wrap(err)
		}
	}
}

// spurious reports whether a timeout of the try-th attempt of a match
// started at start is to be ignored and the match run again. regexp2
// checks its deadlines against a clock that a goroutine updates every
// period; on a busy machine that goroutine can be starved and lag, then
// move the clock forward in one step, and a match that has just started
// finds its deadline passed (regexp2 v1.12.0 fixed only the case of a
// stopped clock). A real timeout comes after the time limit has passed;
// one before it is such a jump, and the next attempt sees the clock
// right. Attempts are bounded, and none starts after the limit, so a
// match never runs for much more than twice its limit.
func (r *Regexp) spurious(start time.Time, try int) bool {
	return try < 3 && time.Since(start) < r.timeout
}

// MatchGroups matches s and appends its groups, in PCRE numbering, to
// dst: the whole match first, then every capturing group ("" for a group
// that did not take part). ok is false when s does not match; err wraps
// [ErrTimeout] when the match ran past the time limit. It gives the
// groups [Template.ExpandGroups] takes.
func (r *Regexp) MatchGroups(s string, dst []string) (groups []string, ok bool, err error) {
	// regexp2 reads a string as runes, so the groups it gives replace
	// invalid UTF-8 by U+FFFD: a non-ASCII subject (never a normalised
	// path or query) is left to it.
	if r.simple != nil && isASCII(s) {
		if !r.simple.match(s) {
			return dst, false, nil
		}
		dst = append(dst, s)
		if r.simple.group {
			dst = append(dst, s[len(r.simple.lit):])
		}
		return dst, true, nil
	}
	if r.linear != nil && linearSubject(s) {
		// Decided in linear time; the groups too when the engines
		// choose them alike, else regexp2 runs on a match, for them.
		if !strings.HasPrefix(s, r.prefix) {
			return dst, false, nil
		}
		if len(r.groups) == 1 {
			if !r.linear.MatchString(s) {
				return dst, false, nil
			}
			return append(dst, s), true, nil
		}
		if r.linearGroups {
			loc := r.linear.FindStringSubmatchIndex(s)
			if loc == nil {
				return dst, false, nil
			}
			for i := 0; i < len(loc); i += 2 {
				v := ""
				if loc[i] >= 0 {
					v = s[loc[i]:loc[i+1]]
				}
				dst = append(dst, v)
			}
			return dst, true, nil
		}
		if !r.linear.MatchString(s) {
			return dst, false, nil
		}
	}
	m, err := r.Match(s)
	if err != nil {
		return dst, false, err
	}
	if m == nil {
		return dst, false, nil
	}
	for _, n := range r.groups {
		v := ""
		if n >= 0 {
			if g := m.GroupByNumber(n); g != nil && len(g.Captures) > 0 {
				v = g.String()
			}
		}
		dst = append(dst, v)
	}
	return dst, true, nil
}

// MatchString reports whether s matches.
func (r *Regexp) MatchString(s string) (bool, error) {
	if r.simple != nil {
		return r.simple.match(s), nil
	}
	if !strings.HasPrefix(s, r.prefix) {
		return false, nil
	}
	if r.linear != nil && linearSubject(s) {
		return r.linear.MatchString(s), nil
	}
	start := time.Now()
	for try := 0; ; try++ {
		ok, err := r.backtracker().MatchString(s)
		if err == nil {
			return ok, nil
		}
		if !r.spurious(start, try) {
			return false, r.wrap(err)
		}
	}
}

// ReplaceAll replaces every match of the pattern in s by t expanded with
// the match's groups.
func (r *Regexp) ReplaceAll(s string, t *Template) (string, error) {
	if !strings.Contains(s, r.needle) {
		return s, nil // no match can start anywhere
	}
	start := time.Now()
	for try := 0; ; try++ {
		out, err := r.backtracker().ReplaceFunc(s, func(m regexp2.Match) string { return t.Expand(&m) }, -1, -1)
		if err == nil {
			return out, nil
		}
		if !r.spurious(start, try) {
			return "", r.wrap(err)
		}
	}
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
	group int // regexp2's group number; -1 for a literal part
	pcre  int // the PCRE group number (\N)
}

// ParseTemplate parses tpl for matches of re (nil: a literal template). A
// reference to a group re does not have, or a trailing backslash, is an
// error. Groups are numbered as PCRE (and Ocsigen) number them: capturing
// groups from left to right, named or not.
func ParseTemplate(tpl string, re *Regexp) (*Template, error) {
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
			if re == nil || n >= len(re.groups) || re.groups[n] < 0 {
				return nil, fmt.Errorf("template %q refers to group \\%d, which the regexp does not have", tpl, n)
			}
			flush()
			t.parts = append(t.parts, part{group: re.groups[n], pcre: n})
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

// String returns the template as written.
func (t *Template) String() string { return t.source }

// LiteralPrefix returns the text every expansion starts with: the
// template up to its first group reference, all of it when it has none
// (then constant reports true).
func (t *Template) LiteralPrefix() (prefix string, constant bool) {
	switch {
	case len(t.parts) == 0:
		return "", true
	case t.parts[0].group >= 0:
		return "", false
	}
	return t.parts[0].lit, len(t.parts) == 1
}

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

// ExpandGroups instantiates the template with groups as
// [Regexp.MatchGroups] returns them; a group beyond them is empty.
func (t *Template) ExpandGroups(groups []string) string {
	if len(t.parts) == 1 && t.parts[0].group < 0 {
		return t.parts[0].lit
	}
	n := 0
	for _, p := range t.parts {
		switch {
		case p.group < 0:
			n += len(p.lit)
		case p.pcre < len(groups):
			n += len(groups[p.pcre])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		switch {
		case p.group < 0:
			b.WriteString(p.lit)
		case p.pcre < len(groups):
			b.WriteString(groups[p.pcre])
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
