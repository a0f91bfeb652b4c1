package staticmod

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// fileBody is the body of a file answer. It is a [stage.AnswerWriter]:
// the server lets it write itself with http.ServeContent.
type fileBody struct {
	f       *os.File // nil in a dry run
	name    string
	modtime time.Time
	size    int64
	ranges  bool // ranges allowed (no <disablepartialrequests/>)
}

var _ stage.AnswerWriter = (*fileBody)(nil)

func (b *fileBody) Read(p []byte) (int, error) {
	if b.f == nil {
		return 0, io.EOF
	}
	return b.f.Read(p)
}

func (b *fileBody) Close() error {
	if b.f == nil {
		return nil
	}
	return b.f.Close()
}

// WriteAnswer writes the file. A 200 answer to GET or HEAD goes through
// http.ServeContent, which answers If-Modified-Since, If-Unmodified-Since
// and Range (unless <disablepartialrequests/>); an answer whose status a
// filter or code= set is written whole with that status.
func (b *fileBody) WriteAnswer(w http.ResponseWriter, r *http.Request, resp *wire.Response) {
	if b.f == nil {
		w.WriteHeader(resp.StatusCode)
		return
	}
	if resp.StatusCode != http.StatusOK || !methodAllowed(r.Method) {
		b.writeWhole(w, r, resp.StatusCode)
		return
	}
	if !b.ranges {
		if r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" {
			r = withoutHeaders(r, "Range", "If-Range")
		}
		w = noRanges{w}
	}
	http.ServeContent(w, r, b.name, b.modtime, b.f)
}

// noRanges removes the Accept-Ranges that http.ServeContent always sends.
type noRanges struct{ http.ResponseWriter }

func (n noRanges) WriteHeader(status int) {
	n.Header().Del("Accept-Ranges")
	n.ResponseWriter.WriteHeader(status)
}

func (n noRanges) Unwrap() http.ResponseWriter { return n.ResponseWriter }

func (b *fileBody) writeWhole(w http.ResponseWriter, r *http.Request, status int) {
	h := w.Header()
	h.Del("Accept-Ranges")
	bodyAllowed := status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
	if bodyAllowed && h.Get("Content-Encoding") == "" {
		h.Set("Content-Length", strconv.FormatInt(b.size, 10))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead || !bodyAllowed {
		return
	}
	io.Copy(w, b.f)
}

// withoutHeaders returns a shallow copy of r without the named headers.
func withoutHeaders(r *http.Request, names ...string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = r.Header.Clone()
	for _, n := range names {
		r2.Header.Del(n)
	}
	return r2
}

// listDir returns an HTML page listing directory dir (which ends with
// "/"), requested as urlPath. Entries hidden or forbidden by <hidefile>
// and <forbidfile> are left out.
func listDir(dir, urlPath string, set *Settings) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		full := path.Clean(dir + e.Name())
		if d, _ := denied(set.hide, full); d {
			continue
		}
		if d, _ := denied(set.forbid, full); d {
			continue
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	title := "Index of " + html.EscapeString(unescapePath(urlPath))
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title></head>\n<body><h1>" + title + "</h1>\n<ul>\n")
	if urlPath != "/" {
		b.WriteString("<li><a href=\"../\">../</a></li>\n")
	}
	for _, n := range names {
		// "./" keeps a name such as "a:b" from reading as a URL scheme.
		href := "./" + url.PathEscape(strings.TrimSuffix(n, "/"))
		if strings.HasSuffix(n, "/") {
			href += "/"
		}
		b.WriteString("<li><a href=\"" + html.EscapeString(href) + "\">" + html.EscapeString(n) + "</a></li>\n")
	}
	b.WriteString("</ul></body></html>\n")
	return b.String(), nil
}

func unescapePath(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}
