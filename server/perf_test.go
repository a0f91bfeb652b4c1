package server

import (
	"net/http"
	"strconv"
	"testing"
)

func TestIsDecimal(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 64, 65536, 1<<63 - 1} {
		s := strconv.FormatInt(n, 10)
		if !isDecimal(s, n) {
			t.Errorf("isDecimal(%q, %d) = false", s, n)
		}
		for _, bad := range []string{"0" + s, "+" + s, s + " ", " " + s, s + "0", "", "-" + s} {
			if isDecimal(bad, n) {
				t.Errorf("isDecimal(%q, %d) = true", bad, n)
			}
		}
	}
	if isDecimal("99999999999999999999", 1<<63-1) {
		t.Errorf("overflowing value accepted")
	}
	resp := &http.Response{ContentLength: 12, Header: http.Header{"Content-Length": {"012"}}}
	if got := contentLength(resp); len(got) != 1 || got[0] != "12" {
		t.Errorf("contentLength = %q, want [12]", got)
	}
}
