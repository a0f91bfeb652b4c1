package pattern

import "strings"

// simple is an anchored pattern that needs no regexp engine: a literal
// followed by nothing, by ".*" or ".+", or by the group "(.*)" or "(.+)",
// the shapes most revproxy, redirect and rewrite rules have ("(.*)",
// "app/(.*)", "old\.html"). "." matches any character but a line feed,
// as in regexp2. Matching one is a prefix test: no regexp2 run, no
// allocation, and no match timeout that a busy machine could trip.
type simple struct {
	lit      string
	rest     bool // something may follow lit
	nonEmpty bool // at least one character must follow lit
	group    bool // what follows lit is group 1
}

// parseSimple recognises a simple pattern; ok is false for any other.
func parseSimple(expr string) (s simple, ok bool) {
	var b strings.Builder
	i := 0
	for ; i < len(expr); i++ {
		c := expr[i]
		if c >= 0x80 {
			return s, false
		}
		if c == '\\' {
			// An escaped punctuation character is that character; an
			// escaped letter or digit is a class, a reference or an
			// anchor.
			if i+1 >= len(expr) || isAlnum(expr[i+1]) || expr[i+1] >= 0x80 {
				return s, false
			}
			i++
			b.WriteByte(expr[i])
			continue
		}
		if strings.IndexByte(".[](){}^$|?*+", c) >= 0 {
			break
		}
		b.WriteByte(c)
	}
	s.lit = b.String()
	switch expr[i:] {
	case "":
	case ".*":
		s.rest = true
	case ".+":
		s.rest, s.nonEmpty = true, true
	case "(.*)":
		s.rest, s.group = true, true
	case "(.+)":
		s.rest, s.nonEmpty, s.group = true, true, true
	default:
		return s, false
	}
	return s, true
}

// match reports whether the whole of in matches.
func (s *simple) match(in string) bool {
	if !strings.HasPrefix(in, s.lit) {
		return false
	}
	tail := in[len(s.lit):]
	if !s.rest {
		return tail == ""
	}
	if s.nonEmpty && tail == "" {
		return false
	}
	return strings.IndexByte(tail, '\n') < 0
}
