package xmlconf

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  bool
	}{
		{"", Infinite, false}, // as Ocsigen: the empty text is "infinity"
		{"infinity", Infinite, false},
		{"0", 0, false},
		{"10", 10, false},
		{" 10 ", 10, false},
		{"10B", 10, false},
		{"10o", 10, false},
		{"100B", 100, false},
		{"10kB", 10000, false},
		{"10ko", 10000, false},
		{"10kiB", 10240, false},
		{"10kio", 10240, false},
		{"10k", 10240, false},
		{"3MB", 3000000, false},
		{"3Mo", 3000000, false},
		{"3MiB", 3 << 20, false},
		{"3Mio", 3 << 20, false},
		{"3M", 3 << 20, false},
		{"2GB", 2000000000, false},
		{"2Go", 2000000000, false},
		{"2GiB", 2 << 30, false},
		{"2Gio", 2 << 30, false},
		{"2G", 2 << 30, false},
		{"1TB", 1000000000000, false},
		{"1To", 1000000000000, false},
		{"1TiB", 1 << 40, false},
		{"1Tio", 1 << 40, false},
		{"1T", 1 << 40, false},
		{"1_000", 1000, false},
		{"0x400", 1024, false},
		{"0x10kB", 16000, false},
		{"+5", 5, false},
		{"10kb", 0, true}, // units are case-sensitive
		{"10KB", 0, true},
		{"10 kB", 0, true},
		{"1.5MB", 0, true},
		{"k", 0, true},
		{"kB", 0, true},
		{"B", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"-5kB", 0, true},
		{"abc", 0, true},
		{"Infinity", 0, true},
		{"_1", 0, true},
		{"9999999999T", 0, true},                  // overflows
		{"99999999999999999999", 0, true},         // overflows
		{"9223372036854775807", 1<<63 - 1, false}, // the largest
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSizeString(t *testing.T) {
	if s := Infinite.String(); s != "infinity" {
		t.Errorf("Infinite.String() = %q", s)
	}
	if s := Size(8192).String(); s != "8192" {
		t.Errorf("Size(8192).String() = %q", s)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"10", 10, false},
		{"+10", 10, false},
		{"-10", -10, false},
		{"1_000", 1000, false},
		{"1__0", 10, false},
		{"0x1F", 31, false},
		{"0X1f", 31, false},
		{"0o17", 15, false},
		{"0b11", 3, false},
		{"0u5", 5, false},
		{"010", 10, false},
		{"0_1", 1, false},
		{"0", 0, false},
		{"_1", 0, true},
		{"0x_1", 0, true},
		{"0x", 0, true},
		{"", 0, true},
		{"-", 0, true},
		{"0z5", 0, true},
		{" 10", 0, true},
		{"1e3", 0, true},
		{"10.", 0, true},
		{"0x-5", 0, true},
		{"--5", 0, true},
		{"-9223372036854775808", -1 << 63, false},
		{"9223372036854775808", 0, true},
	}
	for _, tt := range tests {
		got, err := parseInt(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseInt(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30", 30 * time.Second, false},
		{"0", 0, false},
		{"0x10", 16 * time.Second, false},
		{"2.5", 2500 * time.Millisecond, false},
		{".5", 500 * time.Millisecond, false},
		{"10.", 10 * time.Second, false},
		{"1e1", 10 * time.Second, false},
		{"1_0.5", 10500 * time.Millisecond, false},
		{"-1", 0, true},
		{"-0.5", 0, true},
		{"inf", 0, true},
		{"nan", 0, true},
		{"30s", 0, true},
		{"", 0, true},
		{"_1.5", 0, true},
		{"1e300", 0, true},
		{"99999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSeconds(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
