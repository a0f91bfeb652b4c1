package xmlconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Load reads and checks the configuration file at path, with the
// <extconf> files it names. See [Parse].
//
// If the file cannot be read, the Config is nil and the error is the one
// from the file system, prefixed with "xmlconf: ".
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xmlconf: %w", err)
	}
	return Parse(path, src)
}

// Parse reads and checks a configuration file whose contents are src;
// name is the file name used in positions.
//
// <extconf dir="D"/> directories are read from the file system; as in
// Ocsigen, a relative D is relative to the current directory, not to the
// file's. Their files are spliced in where the <extconf> stands; one that
// does not parse is skipped with a warning.
//
// The error, when there is one, is an [ErrorList] holding every problem
// found, sorted by position, each "name:line:col: message". The returned
// Config is never nil: with an error it holds what could be read, and its
// Warnings and Notes are still meaningful.
func Parse(name string, src []byte) (*Config, error) {
	return parse(name, src, osFS{})
}

// fileSystem is what <extconf> needs from the file system; tests and the
// fuzzer replace it.
type fileSystem interface {
	// ReadDir returns the entries of a directory sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	ReadFile(name string) ([]byte, error)
}

type osFS struct{}

func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }

// Default values of the options, Ocsigen 5.0.1's where it has one.
const (
	DefaultMaxConnected       = 350
	DefaultTimeout            = 30 * time.Second
	DefaultKeepAliveTimeout   = 30 * time.Second
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultNetBufferSize      = Size(8192)
	DefaultFileBufferSize     = Size(8192)
	DefaultMaxRequestBodySize = Infinite
	DefaultMaxUploadFileSize  = Size(2000000)
	DefaultMaxRetries         = 10
	DefaultMinThreads         = 10
	DefaultMaxThreads         = 30
	DefaultMaxDetached        = 1000
	DefaultHTTPPort           = 80
	DefaultHTTPSPort          = 443
)

// maxExtconfDepth bounds <extconf> directories read from <extconf> files.
const maxExtconfDepth = 8

// loader holds the state of one Parse.
type loader struct {
	cfg  *Config
	errs ErrorList
	fs   fileSystem
	// extconf lists the directories being read, outermost first, to
	// refuse loops.
	extconf []string
	// hostPorts records which hosts set defaulthttpport and
	// defaulthttpsport, whose defaults depend on the <port> elements.
	hostPorts map[*Host][2]bool
	ssl       bool
	user      bool
	group     bool
}

// parse reads a configuration from src, named name, with the files of
// <extconf> read from fsys.
func parse(name string, src []byte, fsys fileSystem) (*Config, error) {
	l := newLoader(name, fsys)
	root := readTree(name, src, &l.errs)
	if root != nil {
		if server := l.document(root, &l.errs); server != nil {
			l.server(server, false)
		}
	}
	l.hostDefaults()
	return l.cfg, l.errs.Err()
}

// newLoader returns a loader of a configuration named name, whose
// options have Ocsigen's defaults until read.
func newLoader(name string, fsys fileSystem) *loader {
	return &loader{
		fs:        fsys,
		hostPorts: map[*Host][2]bool{},
		cfg: &Config{
			File:               name,
			MaxConnected:       DefaultMaxConnected,
			Timeout:            DefaultTimeout,
			KeepAliveTimeout:   DefaultKeepAliveTimeout,
			ShutdownTimeout:    DefaultShutdownTimeout,
			NetBufferSize:      DefaultNetBufferSize,
			FileBufferSize:     DefaultFileBufferSize,
			MaxRequestBodySize: DefaultMaxRequestBodySize,
			MaxUploadFileSize:  DefaultMaxUploadFileSize,
			MaxRetries:         DefaultMaxRetries,
			MinThreads:         DefaultMinThreads,
			MaxThreads:         DefaultMaxThreads,
			MaxDetached:        DefaultMaxDetached,
		},
	}
}

// document checks the <ocsigen><server> structure of a file and returns
// its <server> element, or nil. Problems go to errs; content after the
// first <server> is ignored with a warning, as Ocsigen does.
func (l *loader) document(root *Element, errs *ErrorList) *Element {
	if root.Name != "ocsigen" {
		errs.Add(root.Pos, "root element is <%s>; want <ocsigen>", root.Name)
		return nil
	}
	root.CheckAttrs(errs, nil, nil)
	if root.Text != "" {
		errs.Add(root.Pos, "<ocsigen>: unexpected text %s; want <server>", quoteText(root.Text))
	}
	for i, c := range root.Children {
		if c.Name != "server" {
			errs.Add(c.Pos, "<ocsigen>: unexpected <%s>; want <server>", c.Name)
			continue
		}
		c.CheckAttrs(errs, nil, nil)
		for _, after := range root.Children[i+1:] {
			l.warn(after.Pos, "<ocsigen>: <%s> after the first <server> is ignored (Ocsigen reads one <server>)", after.Name)
		}
		return c
	}
	errs.Add(root.Pos, "<ocsigen>: missing <server>")
	return nil
}

// warn records a warning at pos.
func (l *loader) warn(pos Pos, format string, args ...any) {
	l.cfg.Warnings = append(l.cfg.Warnings, pos.String()+": "+fmt.Sprintf(format, args...))
}

// note records an option accepted with no effect.
func (l *loader) note(e *Element, reason string) {
	l.cfg.Notes = append(l.cfg.Notes, Note{Pos: e.Pos, Option: e.Name, Reason: reason})
}

// extconfDir reads the files of an <extconf dir="D"/> element and splices
// their <server> children in.
//
// As in Ocsigen 5.0.1 (ocsigen_parseconfig.ml, later_pass_extconf):
//   - D is used as written: a relative D is relative to the current
//     directory, not to the configuration file's;
//   - the files read are those whose name ends in "conf" (Ocsigen's
//     Filename.check_suffix s "conf", so "x.conf" and also "xconf"), in
//     byte order of their names;
//   - a directory that cannot be read, and a file that cannot be read, is
//     not well-formed, or is not an <ocsigen><server> document, are
//     warnings and are skipped; mistakes inside a well-formed file's
//     <server> are errors.
//
// <extconf> elements inside those files are followed too, up to a depth
// of 8; a directory that includes itself is an error.
func (l *loader) extconfDir(e *Element) {
	if !e.CheckAttrs(&l.errs, []string{"dir"}, nil) || !l.empty(e) {
		return
	}
	dir, _ := e.Attr("dir")
	if !slices.Contains(l.cfg.ExtconfDirs, dir) {
		l.cfg.ExtconfDirs = append(l.cfg.ExtconfDirs, dir)
	}
	key := dir
	if abs, err := filepath.Abs(dir); err == nil {
		key = abs
	}
	if slices.Contains(l.extconf, key) {
		l.errs.Add(e.Pos, "<extconf>: directory %q includes itself", dir)
		return
	}
	if len(l.extconf) >= maxExtconfDepth {
		l.errs.Add(e.Pos, "<extconf>: more than %d levels of <extconf>", maxExtconfDepth)
		return
	}
	entries, err := l.fs.ReadDir(dir)
	if err != nil {
		l.warn(e.Pos, "<extconf>: cannot read directory %q: %s (ignored)", dir, clean(fsError(err)))
		return
	}
	l.extconf = append(l.extconf, key)
	defer func() { l.extconf = l.extconf[:len(l.extconf)-1] }()
	names := make([]string, 0, len(entries))
	for _, ent := range entries {
		if strings.HasSuffix(ent.Name(), "conf") {
			names = append(names, ent.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		path := filepath.Join(dir, n)
		src, err := l.fs.ReadFile(path)
		if err != nil {
			l.warn(e.Pos, "<extconf>: cannot read file %q: %s (file skipped)", path, clean(fsError(err)))
			continue
		}
		var ferrs ErrorList
		var server *Element
		if root := readTree(path, src, &ferrs); root != nil {
			server = l.document(root, &ferrs)
		}
		if len(ferrs) > 0 || server == nil {
			ferrs.Sort()
			for _, fe := range ferrs {
				l.warn(fe.Pos, "%s (file skipped)", fe.Msg)
			}
			continue
		}
		l.server(server, true)
	}
}

// fsError returns the message of a file system error without the path,
// which the caller quotes.
func fsError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// quoteText quotes text for a message, shortened if long.
func quoteText(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "..."
	}
	return fmt.Sprintf("%q", s)
}
