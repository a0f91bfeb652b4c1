package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/pipeline"
)

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Secret", "close, x-other"},
		"X-Secret":            {"1"},
		"X-Other":             {"2"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Connection":    {"keep-alive"},
		"Proxy-Authorization": {"Basic x"},
		"Proxy-Authenticate":  {"Basic"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-T"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"h2c"},
		"X-Kept":              {"yes"},
		"Set-Cookie":          {"a=1", "b=2"},
	}
	RemoveHopByHop(h)
	want := http.Header{"X-Kept": {"yes"}, "Set-Cookie": {"a=1", "b=2"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after RemoveHopByHop: %v, want %v", h, want)
	}
}

func TestNewRequestHeaders(t *testing.T) {
	tests := []struct {
		name      string
		in        http.Header
		forwarded []string
		secure    bool
		wantXFF   string
		wantProto string
		wantUA    []string
	}{
		{"client XFF dropped", http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"https"}}, nil, false, "192.0.2.7", "http", nil},
		{"accepted chain kept", http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1"}}, []string{"198.51.100.1"}, true, "198.51.100.1, 192.0.2.7", "https", nil},
		{"user agent kept", http.Header{"User-Agent": {"curl/8"}}, nil, false, "192.0.2.7", "http", []string{"curl/8"}},
		{"forwarded stripped", http.Header{"Forwarded": {"for=6.6.6.6"}}, nil, false, "192.0.2.7", "http", nil},
		{"connection cannot strip XFF", http.Header{"Connection": {"X-Forwarded-For"}}, nil, false, "192.0.2.7", "http", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httptest.NewRequest("GET", "/x", nil)
			in.Header = tt.in
			st := &pipeline.State{In: in, Method: "GET", Peer: netip.MustParseAddr("192.0.2.7"), Forwarded: tt.forwarded, Secure: tt.secure}
			out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b:8080", Path: "/y", RawQuery: "q=1", HasQuery: true}, "b:8080")
			if got := out.Header.Get("X-Forwarded-For"); got != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tt.wantXFF)
			}
			if got := out.Header.Get("X-Forwarded-Proto"); got != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tt.wantProto)
			}
			if got := out.Header["User-Agent"]; !reflect.DeepEqual(got, tt.wantUA) {
				t.Errorf("User-Agent = %q, want %q", got, tt.wantUA)
			}
			if out.Header.Get("Forwarded") != "" {
				t.Errorf("Forwarded passed on")
			}
			if got := out.URL.RequestURI(); got != "/y?q=1" {
				t.Errorf("request target = %q, want /y?q=1", got)
			}
			if in.Header.Get("X-Forwarded-Proto") != tt.in.Get("X-Forwarded-Proto") {
				t.Errorf("inbound request modified")
			}
		})
	}
}
