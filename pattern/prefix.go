package pattern

import "strings"

// LiteralPrefix returns a string that every input matched by the anchored
// regexp must start with: the pattern's leading literal characters. It is
// conservative: a pattern with an alternation at its top level, an inline
// option, or any construct it does not understand before its first
// literal gives "". An alternation inside a group ("svc/(v1|v2)/.*")
// does not end the prefix before the group. An optional or repeatable
// last character is left out ("ab?c" gives "a").
func (r *Regexp) LiteralPrefix() string {
	return literalPrefix(r.source)
}

// literalPrefix returns the literal text every match of expr starts
// with, "" when there is none.
func literalPrefix(expr string) string {
	if !groupedAlternations(expr) {
		return "" // "a|b" anchored as a whole has no common prefix
	}
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		var lit byte
		switch {
		case c == '\\':
			if i+1 >= len(expr) {
				return b.String()
			}
			d := expr[i+1]
			// An escaped punctuation character is that character; an
			// escaped letter or digit is a class or a reference.
			if isAlnum(d) || d >= 0x80 {
				return b.String()
			}
			lit = d
			i++
		case strings.IndexByte(".[](){}^$|?*+#", c) >= 0 || c >= 0x80 || c == ' ' || c == '\t' || c == '\n':
			// A quantifier makes the previous literal optional or
			// repeated: drop it (for "+", keeping it would be right, but
			// the rest after it is not literal anyway). So can one after
			// a construct that takes no room, such as a comment:
			// "a(?#c)*" is "a*".
			if c == '?' || c == '*' || c == '{' || c == '(' && strings.HasPrefix(expr[i+1:], "?") {
				s := b.String()
				if len(s) > 0 {
					return s[:len(s)-1]
				}
			}
			return b.String()
		default:
			lit = c
		}
		// Look ahead: a quantifier on this literal drops it.
		if i+1 < len(expr) && strings.IndexByte("?*{", expr[i+1]) >= 0 {
			return b.String()
		}
		b.WriteByte(lit)
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// groupedAlternations reports whether every "|" of expr is inside a
// group, so that the pattern as a whole is not an alternation. Escapes,
// character classes and (?#...) comments are skipped. A pattern that may
// turn on extended mode ((?x): "#" comments that could hide parentheses)
// is refused.
func groupedAlternations(expr string) bool {
	depth := 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(expr, i)
		case '(':
			rest := expr[i+1:]
			if strings.HasPrefix(rest, "?#") {
				end := strings.IndexByte(rest, ')')
				if end < 0 {
					return false
				}
				i += 1 + end
				continue
			}
			if strings.HasPrefix(rest, "?") {
				opts := rest[1:]
				if k := strings.IndexAny(opts, ":)"); k >= 0 && strings.Trim(opts[:k], "imnsx-") == "" && strings.ContainsRune(opts[:k], 'x') {
					return false
				}
			}
			depth++
		case ')':
			depth--
		case '|':
			if depth <= 0 {
				return false
			}
		}
	}
	return true
}
