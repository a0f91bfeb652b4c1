// Package staticmod serves files, as Ocsigen's staticmod extension
// (ocsigenserver.ext.staticmod) does with <static>, under the
// file-serving settings of Ocsigen's extendconfiguration extension
// (ocsigenserver.ext.extendconfiguration): <listdirs>, <defaultindex>,
// <hidefile>, <forbidfile>, <followsymlinks>, <contenttype>, <charset>.
//
// A file answer is written with [net/http.ServeContent], so conditional
// requests (If-Modified-Since, If-Unmodified-Since) and ranges are
// answered; its headers are in the answer for the filters after <static>
// to see and change. No request path reaches a file outside the
// configured directory: the path is normalised before any instruction
// runs, and a segment that decodes to a "/", a NUL, "." or ".." is never
// turned into a file name.
package staticmod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// server holds what <static> takes from the <server> options.
type server struct {
	types        map[string]string // extension -> type: <mimefile>, or the builtin table
	charset      string            // <charset>; "" means none (also when absent)
	noPartial    bool              // <disablepartialrequests/>
	mimeFileName string
}

// serverOptions reads the <server> options of the configuration, when the
// compiler gives it.
func serverOptions(c stage.Compiler) (*server, error) {
	s := &server{types: builtinTypes}
	cs, ok := c.(stage.ConfigSource)
	if !ok || cs.Config() == nil {
		return s, nil
	}
	cfg := cs.Config()
	s.charset, s.noPartial, s.mimeFileName = cfg.Charset, cfg.DisablePartialRequests, cfg.MimeFile
	if cfg.MimeFile != "" {
		m, err := mimeTable(cfg.MimeFile)
		if err != nil {
			return s, fmt.Errorf("<mimefile> %s: %w", cfg.MimeFile, err)
		}
		s.types = m
	}
	return s, nil
}

// Configure checks the <extension> line of staticmod or
// extendconfiguration: they take no options. For staticmod it also reads
// the <mimefile>, so that a missing one is reported at start-up.
func Configure(c stage.Compiler, ext *xmlconf.Extension) {
	if ext.Element != nil {
		for _, ch := range ext.Element.Children {
			c.Errors().Add(ch.Pos, "<%s>: %s takes no options", ch.Name, ext.Name)
		}
	}
	if strings.Contains(ext.Name, "staticmod") {
		if _, err := serverOptions(c); err != nil {
			c.Errors().Add(ext.Pos, "%v", err)
		}
	}
}

// Static is a compiled <static>.
type Static struct {
	pos   xmlconf.Pos
	dir   string          // dir=, without a trailing slash; "" for the regexp form
	re    *pattern.Regexp // regexp= (".*" when only code= is given)
	dest  *userTemplate   // dest=
	root  *userTemplate   // root=; nil when absent
	home  HomeLookup      // the home directories of $u(...); systemHome
	code  *pattern.Regexp // code=; nil when absent
	cache *int            // cache= in seconds (0 for "no"); nil when absent
	srv   *server
}

// Compile compiles <static dir="D"/> (the site's sub-path looked up under
// D) or <static regexp="RE" dest="FILE" [code="RE"] [root="DIR"]/> (the
// decoded sub-path matched by RE, FILE expanded with its groups; with
// code, only a request whose status so far matches, answered with that
// status; root bounds the symbolic-link checks and the file names), or
// <static code="RE" dest="FILE"/>. Both take cache="seconds|no".
//
// In dest and root, "$u(NAME)" (at most one, NAME expanded with the
// groups first) is replaced by the home directory of user NAME, as in
// Ocsigen: dest="$u(\1)/public_html\2" for regexp="~([^/]*)(.*)". A
// request naming an unknown user, or a user whose home directory is not a
// clean absolute path, is passed on with its status unchanged (404 when
// nothing else answers), as Ocsigen passes on an unknown user. A "$u("
// without ")", a second "$u(", an empty NAME, or a NAME without groups
// that cannot be a user name is a configuration error.
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !e.CheckAttrs(errs, nil, []string{"dir", "regexp", "code", "dest", "root", "cache"}) || !noChildren(errs, e) || !noText(errs, e) {
		return nil
	}
	srv, err := serverOptions(c)
	if err != nil {
		// Reported once, at the <extension> line, by Configure.
		srv = &server{types: builtinTypes}
	}
	s := &Static{pos: e.Pos, srv: srv}
	dir, hasDir := e.Attr("dir")
	reS, hasRe := e.Attr("regexp")
	codeS, hasCode := e.Attr("code")
	dest, hasDest := e.Attr("dest")
	root, hasRoot := e.Attr("root")
	switch {
	case hasDir && !hasRe && !hasCode && !hasDest && !hasRoot:
		if dir == "" {
			errs.Add(e.Pos, "<static>: empty dir")
			return nil
		}
		s.dir = strings.TrimRight(dir, "/")
		if s.dir == "" {
			s.dir = "/"
		}
	case hasDir:
		errs.Add(e.Pos, "<static>: dir cannot be combined with regexp, code, dest or root")
		return nil
	case !hasRe && !hasCode:
		errs.Add(e.Pos, "<static>: missing attribute \"dir\", \"regexp\" or \"code\"")
		return nil
	case !hasDest:
		errs.Add(e.Pos, "<static>: missing attribute \"dest\"")
		return nil
	case hasRoot && !hasRe:
		errs.Add(e.Pos, "<static>: root needs regexp")
		return nil
	default:
		if !hasRe {
			reS = ".*"
		}
		re, err := pattern.Compile(reS, true, c.MatchTimeout())
		if err != nil {
			errs.Add(e.Pos, "<static>: regexp: %v", err)
			return nil
		}
		s.re = re
		if s.dest, err = parseUserTemplate(dest, re); err != nil {
			errs.Add(e.Pos, "<static>: dest: %v", err)
			return nil
		}
		if hasRoot {
			if s.root, err = parseUserTemplate(root, re); err != nil {
				errs.Add(e.Pos, "<static>: root: %v", err)
				return nil
			}
		}
		s.home = systemHome
		if hasCode {
			if s.code, err = pattern.Compile(codeS, true, c.MatchTimeout()); err != nil {
				errs.Add(e.Pos, "<static>: code: %v", err)
				return nil
			}
		}
	}
	if v, ok := e.Attr("cache"); ok {
		n := 0
		if v != "no" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				errs.Add(e.Pos, "<static>: cache=%q: want a number of seconds or \"no\"", v)
				return nil
			}
		}
		s.cache = &n
	}
	return s
}

func (s *Static) describe() string {
	if s.dir != "" {
		return fmt.Sprintf("static dir=%q", s.dir)
	}
	d := "static"
	if s.code != nil {
		d += fmt.Sprintf(" code=\"%s\"", s.code)
	}
	if s.code == nil || s.re.String() != ".*" {
		d += fmt.Sprintf(" regexp=\"%s\"", s.re)
	}
	return d
}

// Run answers an unanswered request with the file its sub-path names, if
// there is one.
func (s *Static) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	if s.code != nil {
		ok, err := s.code.MatchString(strconv.Itoa(st.Status))
		if err != nil {
			return stage.Next, stage.Errorf(http.StatusInternalServerError, "static at %s: %v", s.pos, err)
		}
		if !ok {
			st.Tracef(s.pos, "%s: status %d does not match", s.describe(), st.Status)
			return stage.Next, nil
		}
	}
	sub, ok := decodeSubPath(st.SubPath)
	if !ok {
		st.Tracef(s.pos, "%s: sub-path %q names no file (an encoded \"/\", NUL or dot segment)", s.describe(), st.SubPath)
		return stage.Next, nil
	}
	var filename, root string
	if s.dir != "" {
		filename, root = s.dir+"/"+sub, s.dir
		if s.dir == "/" {
			filename = "/" + sub
		}
	} else {
		groups, ok, err := s.re.MatchGroups(sub, nil)
		if err != nil {
			return stage.Next, stage.Errorf(http.StatusInternalServerError, "static at %s: %v", s.pos, err)
		}
		if !ok {
			st.Tracef(s.pos, "%s: no match on %q", s.describe(), sub)
			return stage.Next, nil
		}
		filename, err = s.dest.expand(groups, s.home)
		if err == nil && s.root != nil {
			root, err = s.root.expand(groups, s.home)
		}
		if errors.Is(err, errNoUser) {
			st.Tracef(s.pos, "%s: %v (next)", s.describe(), err)
			return stage.Next, nil
		}
		if err != nil {
			return stage.Next, stage.Errorf(http.StatusInternalServerError, "static at %s: %v", s.pos, err)
		}
		if s.root != nil {
			root = strings.TrimRight(root, "/")
			if root == "" {
				root = "/"
			}
			if !within(filename, root) {
				st.Status = http.StatusForbidden
				st.Tracef(s.pos, "%s: %s is outside root %s -> 403 (next)", s.describe(), filename, root)
				return stage.Next, nil
			}
		}
	}
	return s.serve(st, filename, root)
}

// decodeSubPath percent-decodes a normalised sub-path segment by segment.
// ok is false when a segment decodes to something that is not a plain
// file name: it contains "/" or NUL, or is "." or "..".
func decodeSubPath(sub string) (string, bool) {
	if !strings.Contains(sub, "%") {
		for seg := range strings.SplitSeq(sub, "/") {
			if seg == "." || seg == ".." {
				return "", false
			}
		}
		return sub, true
	}
	segs := strings.Split(sub, "/")
	for i, seg := range segs {
		d, err := url.PathUnescape(seg)
		if err != nil || d == "." || d == ".." || strings.ContainsAny(d, "/\x00") {
			return "", false
		}
		segs[i] = d
	}
	return strings.Join(segs, "/"), true
}

// within reports whether name lies in dir, lexically.
func within(name, dir string) bool {
	name = filepath.Clean(name)
	dir = filepath.Clean(dir)
	return name == dir || dir == "/" || strings.HasPrefix(name, dir+"/")
}

// outcome of looking a file name up.
type lookupResult int

const (
	found     lookupResult = iota
	notFound               // 404, or not concerned: the request stays as it was
	forbidden              // 403: the status becomes 403
	isDir                  // a directory named without its trailing slash: 301
	listing                // a directory without index, listed
)

// serve answers with the file filename under root, or passes the
// request on (with its status) when there is none to serve.
func (s *Static) serve(st *stage.State, filename, root string) (stage.Result, error) {
	set := settingsOf(st)
	res, name, fi, why, err := resolve(filename, root, set)
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusInternalServerError, "static at %s: %v", s.pos, err)
	}
	switch res {
	case notFound:
		st.Tracef(s.pos, "%s: %s: %s (next)", s.describe(), filename, why)
		return stage.Next, nil
	case forbidden:
		st.Status = http.StatusForbidden
		st.Tracef(s.pos, "%s: %s: %s -> 403 (next)", s.describe(), filename, why)
		return stage.Next, nil
	case isDir:
		loc := directoryURL(st)
		st.Tracef(s.pos, "%s: %s is a directory -> redirect 301 Location: %s", s.describe(), filename, loc)
		resp := newResponse(http.StatusMovedPermanently, http.NoBody, 0)
		resp.Header.Add("Location", loc)
		st.SetAnswer(resp, s.pos)
		return stage.Next, nil
	}
	if !methodAllowed(st.Method) {
		st.Tracef(s.pos, "%s: %s: method %s -> answer 405", s.describe(), name, st.Method)
		body := "405 Method Not Allowed\n"
		resp := newResponse(http.StatusMethodNotAllowed, io.NopCloser(strings.NewReader(body)), int64(len(body)))
		resp.Header.Add("Allow", "GET, HEAD")
		resp.Header.Add("Content-Type", "text/plain; charset=utf-8")
		st.SetAnswer(resp, s.pos)
		return stage.Next, nil
	}
	status := http.StatusOK
	if s.code != nil {
		status = st.Status
	}
	if res == listing {
		page, err := listDir(name, st.Path, set)
		if err != nil {
			st.Status = http.StatusForbidden
			st.Tracef(s.pos, "%s: %s: cannot list: %v -> 403 (next)", s.describe(), name, err)
			return stage.Next, nil
		}
		st.Tracef(s.pos, "%s: %s: directory listing -> answer %d", s.describe(), name, status)
		resp := newResponse(status, io.NopCloser(strings.NewReader(page)), int64(len(page)))
		resp.Header.Add("Content-Type", "text/html; charset=utf-8")
		s.cacheHeaders(&resp.Header)
		st.SetAnswer(resp, s.pos)
		return stage.Next, nil
	}
	ctype, err := s.contentType(name, set)
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusInternalServerError, "static at %s: %v", s.pos, err)
	}
	mod := fi.ModTime()
	body := &fileBody{name: name, modtime: mod, size: fi.Size(), ranges: !s.srv.noPartial}
	resp := newResponse(status, body, fi.Size())
	h := &resp.Header
	h.Add("Content-Type", ctype)
	if !isZeroTime(mod) && status == http.StatusOK {
		h.Add("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	if body.ranges && status == http.StatusOK {
		h.Add("Accept-Ranges", "bytes")
	}
	s.cacheHeaders(h)
	f, err := openRegular(name)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			st.Status = http.StatusForbidden
			st.Tracef(s.pos, "%s: %s: %v -> 403 (next)", s.describe(), name, err)
		} else {
			st.Tracef(s.pos, "%s: %s: %v (next)", s.describe(), name, err)
		}
		return stage.Next, nil
	}
	body.f = f
	st.Tracef(s.pos, "%s: %s (%d bytes, %s) -> answer %d", s.describe(), name, fi.Size(), ctype, status)
	st.SetAnswer(resp, s.pos)
	return stage.Next, nil
}

func isZeroTime(t time.Time) bool { return t.IsZero() || t.Equal(time.Unix(0, 0)) }

// cacheHeaders adds the headers of cache=: "Cache-Control: max-age=N" and
// an Expires N seconds ahead, or "Cache-Control: no-cache" and "Expires:
// 0" for cache="no", as Ocsigen does.
func (s *Static) cacheHeaders(h *wire.Header) {
	if s.cache == nil {
		return
	}
	if *s.cache == 0 {
		h.Set("Cache-Control", "no-cache")
		h.Set("Expires", "0")
		return
	}
	h.Set("Cache-Control", "max-age="+strconv.Itoa(*s.cache))
	h.Set("Expires", time.Now().Add(time.Duration(*s.cache)*time.Second).UTC().Format(http.TimeFormat))
}

// contentType returns the Content-Type of a file: <contenttype> entries
// first, then the <mimefile> (or builtin) table by extension, then the
// default. A textual type (see textual) that has no parameter yet gets
// "; charset=CS", CS being, as Ocsigen chooses it: the newest
// extendconfiguration <charset> entry for the file, else the newest
// default among extendconfiguration's <charset default=>, <site
// charset=> and <host charset=>, else the server's <charset>. An empty CS
// (charset="") sends none; so does the absence of every setting.
func (s *Static) contentType(name string, set *Settings) (string, error) {
	t, ok, err := lookup(set.mime, name)
	if err != nil {
		return "", err
	}
	if !ok {
		t, ok = s.srv.types[extensionOf(path.Base(name))]
	}
	if !ok {
		t = DefaultMIMEType
		if set.hasMimeDefault {
			t = set.mimeDefault
		}
	}
	cs, ok, err := lookup(set.charset, name)
	if err != nil {
		return "", err
	}
	if !ok {
		cs = s.srv.charset
		if set.hasCharsetDefault {
			cs = set.charsetDefault
		}
	}
	if cs != "" && textual(t) && !strings.Contains(t, ";") {
		t += "; charset=" + cs
	}
	return t, nil
}

// resolve looks filename up as Ocsigen's local-file resolution does: a
// directory named with a trailing slash is replaced by its first index
// file, or listed when <listdirs> allows it; a directory named without
// one is redirected; the file name must contain no ".." segment, pass the
// symbolic-link policy (links below root are checked), and not be hidden
// (404) or forbidden (403). why says what happened, for traces.
func resolve(filename, root string, set *Settings) (res lookupResult, name string, fi os.FileInfo, why string, err error) {
	if strings.ContainsRune(filename, 0) {
		return notFound, "", nil, "file name contains NUL", nil
	}
	name = filename
	fi, serr := os.Stat(name)
	if serr != nil {
		return statFailure(serr)
	}
	res = found
	if fi.IsDir() {
		if !strings.HasSuffix(name, "/") {
			return isDir, name, fi, "", nil
		}
		res = listing
		for _, idx := range set.Index {
			ifi, ierr := os.Stat(name + idx)
			if ierr == nil && !ifi.IsDir() {
				name, fi, res = name+idx, ifi, found
				break
			}
			if ierr != nil && !errors.Is(ierr, fs.ErrNotExist) && !errors.Is(ierr, syscall.ENOTDIR) {
				return statFailure(ierr)
			}
		}
		if res == listing && !set.ListDirs {
			return notFound, name, fi, "directory without index, <listdirs> off", nil
		}
	}
	if hasDotDot(name) {
		return forbidden, name, fi, "file name contains \"..\"", nil
	}
	ok, lerr := symlinksAllowed(name, root, set.Symlinks)
	if lerr != nil {
		return statFailure(lerr)
	}
	if !ok {
		return forbidden, name, fi, fmt.Sprintf("symbolic link refused by <followsymlinks value=%q>", set.Symlinks), nil
	}
	clean := path.Clean(name)
	if d, err := denied(set.forbid, clean); err != nil || d {
		return forbidden, name, fi, "<forbidfile>", err
	}
	if d, err := denied(set.hide, clean); err != nil || d {
		return notFound, name, fi, "<hidefile>", err
	}
	if res == found && !fi.Mode().IsRegular() {
		return notFound, name, fi, "not a regular file", nil
	}
	return res, name, fi, "", nil
}

func statFailure(err error) (lookupResult, string, os.FileInfo, string, error) {
	if errors.Is(err, fs.ErrPermission) {
		return forbidden, "", nil, err.Error(), nil
	}
	return notFound, "", nil, "no such file", nil
}

// hasDotDot reports a ".." segment, which Ocsigen refuses in any file
// name.
func hasDotDot(name string) bool {
	return strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") || strings.HasPrefix(name, "../") || name == ".."
}

// symlinksAllowed applies policy to name and to each of its parent
// directories up to root (root itself and above are not checked): with
// never, no link may be crossed; with ownermatch, a link must have the
// owner of its target.
func symlinksAllowed(name, root string, policy SymlinkPolicy) (bool, error) {
	if policy == Always {
		return true, nil
	}
	p := strings.TrimRight(name, "/")
	if p == "" {
		return true, nil
	}
	for p != "/" && p != "." && p != "" && p != root {
		lfi, err := os.Lstat(p)
		if err != nil {
			return false, err
		}
		if lfi.Mode()&fs.ModeSymlink != 0 {
			if policy == Never {
				return false, nil
			}
			tfi, err := os.Stat(p)
			if err != nil {
				return false, err
			}
			if owner(lfi) != owner(tfi) {
				return false, nil
			}
		}
		p = filepath.Dir(p)
	}
	return true, nil
}

func owner(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Uid)
	}
	return -1
}

// openRegular opens name for reading, refusing anything but a regular
// file (the file may have changed since it was looked up).
func openRegular(name string) (*os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = errors.New("not a regular file")
		}
		return nil, err
	}
	return f, nil
}

// directoryURL is the Location of the redirect from a directory named
// without its trailing slash: scheme://host[:port]/path/[?query], the host
// being the Host header's name and the port the listening port (omitted
// when 80 or 443), as Ocsigen builds it; the path alone when the request
// has no Host.
func directoryURL(st *stage.State) string {
	target := st.Path + "/"
	if st.HasQuery {
		target += "?" + st.RawQuery
	}
	if st.Host == "" {
		return target
	}
	return st.Scheme() + "://" + st.HostPort() + target
}

// newResponse returns a generated answer with no header field yet, and
// room for the five a file's answer has at most.
func newResponse(status int, body io.ReadCloser, length int64) *wire.Response {
	return &wire.Response{
		StatusCode: status, ProtoMinor: 1,
		Header:        wire.MakeHeader(make([]wire.Field, 0, 5)),
		Body:          body,
		ContentLength: length,
	}
}
