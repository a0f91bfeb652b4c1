package xmlconf

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Multipliers of Ocsigen's size units.
const (
	kilo = 1000
	mega = 1000 * kilo
	giga = 1000 * mega
	tera = 1000 * giga
	kibi = 1024
	mebi = 1024 * kibi
	gibi = 1024 * mebi
	tebi = 1024 * gibi
)

// sizeUnits lists the suffixes of Ocsigen 5.0.1's parse_size
// (ocsigen_parseconfig.ml) in the order it tries them: a one-letter
// suffix is binary ("10k" is 10240), a two-letter one decimal ("10kB",
// "10ko"), a three-letter one binary ("10kiB", "10kio").
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"T", tebi}, {"G", gibi}, {"M", mebi}, {"k", kibi},
	{"To", tera}, {"TB", tera}, {"Go", giga}, {"GB", giga},
	{"Mo", mega}, {"MB", mega}, {"ko", kilo}, {"kB", kilo},
	{"Tio", tebi}, {"TiB", tebi}, {"Gio", gibi}, {"GiB", gibi},
	{"Mio", mebi}, {"MiB", mebi}, {"kio", kibi}, {"kiB", kibi},
	{"o", 1}, {"B", 1},
}

// ParseSize reads a byte count the way Ocsigen 5.0.1 does: a number
// (OCaml integer syntax: "10", "1_000", "0x400") optionally followed by a
// unit, "B" or "o" for bytes, "kB"/"ko", "MB"/"Mo", "GB"/"Go", "TB"/"To"
// for powers of 1000, "kiB"/"kio", "MiB"/"Mio", "GiB"/"Gio", "TiB"/"Tio"
// or the bare letters "k", "M", "G", "T" for powers of 1024. "infinity",
// and the empty string as in Ocsigen, give [Infinite]. Units are
// case-sensitive ("10kb" is refused, as in Ocsigen). Surrounding white
// space is ignored. Negative sizes, and sizes that overflow an int64, are
// refused.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "infinity" {
		return Infinite, nil
	}
	num, mult := s, int64(1)
	// Ocsigen tries one-letter suffixes only when the string has at least
	// two bytes, two-letter ones with at least three, and so on.
	for _, u := range sizeUnits {
		if len(s) > len(u.suffix) && strings.HasSuffix(s, u.suffix) {
			num, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := parseInt(num)
	if err != nil {
		return 0, errors.New("not a valid size")
	}
	if n < 0 {
		return 0, errors.New("a size cannot be negative")
	}
	hi, lo := bits.Mul64(uint64(n), uint64(mult))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, errors.New("size too large")
	}
	return Size(lo), nil
}

// String returns the size in bytes, or "infinity".
func (s Size) String() string {
	if s == Infinite {
		return "infinity"
	}
	return strconv.FormatInt(int64(s), 10)
}

// parseInt reads an integer in OCaml's int_of_string syntax, which Ocsigen
// uses for its numeric options: an optional sign, an optional base prefix
// (0x, 0o, 0b, 0u), then digits, with "_" allowed after the first digit.
// Unlike OCaml it refuses values that do not fit an int64 instead of
// wrapping them.
func parseInt(s string) (int64, error) {
	errSyntax := errors.New("not an integer")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	if len(s) > 2 && s[0] == '0' {
		prefixed := true
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		case 'u', 'U':
		default:
			prefixed = false
		}
		if prefixed {
			s = s[2:]
		}
	}
	if s == "" || s[0] == '_' {
		return 0, errSyntax
	}
	digits := strings.ReplaceAll(s, "_", "")
	if digits == "" {
		return 0, errSyntax
	}
	u, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errors.New("number too large")
		}
		return 0, errSyntax
	}
	if neg {
		if u > 1<<63 {
			return 0, errors.New("number too large")
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, errors.New("number too large")
	}
	return int64(u), nil
}

// parseSeconds reads a non-negative number of seconds: an integer in
// OCaml syntax (what Ocsigen 5.0.1 takes for <timeout>) or a decimal
// number such as "0.5" or "1e3" (what it takes for <shutdowntimeout>).
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := parseInt(s); err == nil {
		if n < 0 {
			return 0, errors.New("a duration cannot be negative")
		}
		if n > int64(math.MaxInt64/time.Second) {
			return 0, errors.New("duration too large")
		}
		return time.Duration(n) * time.Second, nil
	}
	// OCaml's float_of_string accepts "_" between digits.
	if s == "" || s[0] == '_' {
		return 0, errors.New("not a number of seconds")
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a number of seconds")
	}
	if f < 0 {
		return 0, errors.New("a duration cannot be negative")
	}
	if f*float64(time.Second) >= math.MaxInt64 {
		return 0, errors.New("duration too large")
	}
	return time.Duration(f * float64(time.Second)), nil
}
