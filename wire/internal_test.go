package wire

import (
	"net/http"
	"reflect"
	"testing"
)

// TestCopyTo checks that CopyTo replaces the values hh holds for each of
// h's names by h's values, in order, even when a name's fields are apart,
// and leaves hh's other names alone.
func TestCopyTo(t *testing.T) {
	var h Header
	h.Add("Set-Cookie", "a=1")
	h.Add("Content-Type", "text/plain")
	h.Add("Set-Cookie", "b=2")
	h.Add("Set-Cookie", "c=3")
	h.Add("Connection", "keep-alive")
	hh := http.Header{"Connection": {"close"}, "X-Own": {"kept"}, "Set-Cookie": {"old"}}
	h.CopyTo(hh)
	want := http.Header{
		"Set-Cookie":   {"a=1", "b=2", "c=3"},
		"Content-Type": {"text/plain"},
		"Connection":   {"keep-alive"},
		"X-Own":        {"kept"},
	}
	if !reflect.DeepEqual(hh, want) {
		t.Errorf("CopyTo gave %q, want %q", hh, want)
	}
	// Appending to one name's values must not write into another's.
	hh["Content-Type"] = append(hh["Content-Type"], "x")
	if got := hh["Set-Cookie"]; !reflect.DeepEqual(got, want["Set-Cookie"]) {
		t.Errorf("Set-Cookie became %q", got)
	}
	var empty Header
	empty.CopyTo(hh)
	if len(hh) != 4 {
		t.Errorf("an empty header changed %q", hh)
	}
}

// TestAppendValues checks that AppendValues appends a name's values in
// order after dst's, and allocates nothing when dst has room.
func TestAppendValues(t *testing.T) {
	var h Header
	h.Add("Content-Length", "5")
	h.Add("X-Other", "x")
	h.Add("content-length", "5")
	var buf [2]string
	got := h.AppendValues(append(buf[:0], "first"), "CONTENT-LENGTH")
	if want := []string{"first", "5", "5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AppendValues = %q, want %q", got, want)
	}
	if got := h.AppendValues(nil, "Missing"); got != nil {
		t.Errorf("AppendValues of a missing name = %q, want nil", got)
	}
	if n := testing.AllocsPerRun(100, func() {
		var buf [2]string
		if len(h.AppendValues(buf[:0], "Content-Length")) != 2 {
			t.Fatal("values lost")
		}
	}); n != 0 {
		t.Errorf("AppendValues into a caller's array: %v allocations, want 0", n)
	}
}

// TestDelFunc checks that DelFunc drops the fields it is told to, keeps
// the others in order, and clears the dropped ones from the array.
func TestDelFunc(t *testing.T) {
	var buf [4]Field
	h := MakeHeader(buf[:])
	h.Add("A", "1")
	h.Add("B", "2")
	h.Add("A", "3")
	h.Add("C", "4")
	h.DelFunc(func(name string) bool { return name == "A" })
	if want := []Field{{"B", "2"}, {"C", "4"}}; !reflect.DeepEqual(h.Fields(), want) {
		t.Errorf("after DelFunc: %q, want %q", h.Fields(), want)
	}
	if buf[2] != (Field{}) || buf[3] != (Field{}) {
		t.Errorf("dropped fields left in the array: %q", buf)
	}
}
