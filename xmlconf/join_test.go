package xmlconf

import (
	"errors"
	"testing"
)

func TestJoin(t *testing.T) {
	a := &Error{Pos: Pos{"f.conf", 3, 1}, Msg: "a"}
	b := &Error{Pos: Pos{"f.conf", 1, 5}, Msg: "b"}
	other := errors.New("other")
	tests := []struct {
		name string
		errs []error
		want string
	}{
		{"none", []error{nil, nil}, ""},
		{"one list", []error{nil, ErrorList{a}}, "f.conf:3:1: a"},
		{"merged and sorted", []error{ErrorList{a}, nil, ErrorList{b}}, "f.conf:1:5: b\nf.conf:3:1: a"},
		{"same problem once", []error{ErrorList{a, b}, ErrorList{{Pos: a.Pos, Msg: "a"}}}, "f.conf:1:5: b\nf.conf:3:1: a"},
		{"other errors after", []error{other, ErrorList{a}}, "f.conf:3:1: a\nother"},
		{"other alone", []error{other}, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Join(tt.errs...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Join = %q, want %q", got, tt.want)
			}
		})
	}
}
