package xmlconf

import (
	"strconv"
	"strings"
	"time"
)

// InfiniteDuration is the duration written "infinity": no bound.
const InfiniteDuration time.Duration = -1

// ParseDuration reads a duration the way ocsiproxy's own options spell
// it (MongooseIM's style): a bare integer is in milliseconds ("5000");
// otherwise a Go duration ("5s", "1.5s", "250ms", "2m"); "infinity" gives
// [InfiniteDuration]. Surrounding white space is ignored. Negative
// durations, and bare integers above 2^40 milliseconds, are refused (ok
// false).
func ParseDuration(s string) (d time.Duration, ok bool) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return InfiniteDuration, true
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return 0, false
		}
		return time.Duration(n) * time.Millisecond, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
