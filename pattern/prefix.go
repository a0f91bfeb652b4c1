package pattern

import "strings"

// LiteralPrefix returns a string that every input matched by the anchored
// regexp must start with: the pattern's leading literal characters. It is
// conservative: a pattern with an alternation, an inline option, or any
// construct it does not understand before its first literal gives "".
// An optional or repeatable last character is left out ("ab?c" gives
// "a").
func (r *Regexp) LiteralPrefix() string {
	return literalPrefix(r.source)
}

func literalPrefix(expr string) string {
	if strings.ContainsRune(expr, '|') {
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
			// the rest after it is not literal anyway).
			if c == '?' || c == '*' || c == '{' {
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
