package xmlconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// memFS is a fileSystem in memory, so that the fuzzer never reads the
// real file system through <extconf>.
type memFS struct{ m fstest.MapFS }

func (f memFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.m.ReadDir(name) }
func (f memFS) ReadFile(name string) ([]byte, error)       { return f.m.ReadFile(name) }

var fuzzFS = memFS{fstest.MapFS{
	"d/a.conf": {Data: []byte(`<ocsigen><server><host hostfilter="a"/><extconf dir="d"/></server></ocsigen>`)},
	"d/b.conf": {Data: []byte(`<ocsigen><server><host></site></server></ocsigen>`)},
	"e/c.conf": {Data: []byte(`<ocsigen><server><bogus/><port>1</port></server></ocsigen>`)},
}}

// rePos is the form every error and warning must have.
var rePos = regexp.MustCompile(`^[^:\n]+:[1-9][0-9]*:[1-9][0-9]*: [^\n]+$`)

// FuzzParse checks that Parse never panics, that every error and warning
// starts with a valid position, and that every element has one.
// Seeds are the testdata configurations; crashers found are kept in
// testdata/fuzz/FuzzParse, which the test runs too.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.conf")
	more, _ := filepath.Glob("testdata/extconf/*/*.conf")
	for _, file := range slices.Concat(files, more) {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<ocsigen><server><extconf dir="d"/><extconf dir="e"/></server></ocsigen>`))
	f.Add([]byte(`<a x="&&<&amp;\"\\'" y='\'&#x26;'>&<![CDATA[&<]]><!--&--></a>`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := parse("fuzz.conf", src, fuzzFS)
		if c == nil {
			t.Fatal("nil Config")
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !rePos.MatchString(line) {
					t.Errorf("badly formed error %q", line)
				}
			}
		}
		for _, w := range c.Warnings {
			if !rePos.MatchString(w) {
				t.Errorf("badly formed warning %q", w)
			}
		}
		var check func(e *Element)
		check = func(e *Element) {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.File == "" {
				t.Errorf("<%s> has position %+v", e.Name, e.Pos)
			}
			for _, c := range e.Children {
				check(c)
			}
		}
		for _, h := range c.Hosts {
			for _, e := range h.Body {
				check(e)
			}
		}
	})
}
