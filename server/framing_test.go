package server

import (
	"errors"
	"reflect"
	"testing"
)

func TestFramingVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []error
	}{
		{"plain GETs", "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", []error{nil, nil}},
		{"CL body skipped", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + "GET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"body that looks like a head", "POST / HTTP/1.1\r\nContent-Length: 38\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n" + "GET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"chunked with extension and trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"CL and TE", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", []error{errCLAndTE}},
		{"TE and CL, mixed case", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-LENGTH: 3\r\n\r\n", []error{errCLAndTE}},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", []error{errTE10}},
		{"folded CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\n 4\r\n\r\n", []error{errFoldedTE}},
		{"bare LF", "GET / HTTP/1.1\nHost: h\n\nGET /2 HTTP/1.1\n\n", []error{nil, nil}},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", []error{nil}},
	}
	for _, tt := range tests {
		f := framing{max: 1 << 16}
		f.feed([]byte(tt.stream))
		if !reflect.DeepEqual(f.verdicts, tt.want) {
			t.Errorf("%s: verdicts %v, want %v", tt.name, f.verdicts, tt.want)
		}
	}
}

// FuzzFraming checks that the framing tracker never panics and that how
// the stream is cut into reads never changes its verdicts.
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint16(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		whole := framing{max: 256}
		whole.feed(stream)
		split := framing{max: 256}
		c := int(cut) % (len(stream) + 1)
		split.feed(stream[:c])
		split.feed(stream[c:])
		if len(whole.verdicts) != len(split.verdicts) {
			t.Fatalf("cut at %d: %d verdicts, whole stream %d", c, len(split.verdicts), len(whole.verdicts))
		}
		for i := range whole.verdicts {
			if !errors.Is(split.verdicts[i], whole.verdicts[i]) {
				t.Fatalf("cut at %d: verdict %d = %v, whole stream %v", c, i, split.verdicts[i], whole.verdicts[i])
			}
		}
		if whole.state != fsStopped && len(whole.line) > whole.max {
			t.Fatalf("line buffer %d over its bound %d", len(whole.line), whole.max)
		}
	})
}
