package xmlconf

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5000", 5 * time.Second, true},
		{"0", 0, true},
		{"250ms", 250 * time.Millisecond, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"infinity", InfiniteDuration, true},
		{" 2m ", 2 * time.Minute, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"5 s", 0, false},
		{"forever", 0, false},
		{"1099511627777", 0, false},
	}
	for _, tt := range tests {
		d, ok := ParseDuration(tt.in)
		if ok != tt.ok || (ok && d != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %t; want %v, %t", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}
