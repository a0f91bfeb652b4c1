package staticmod

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultMIMEType is the type of a file whose extension no table knows, as
// in Ocsigen.
const DefaultMIMEType = "application/octet-stream"

// builtinTypes is the table used when the configuration has no
// <mimefile>: the types Ocsigen 5.0.1 sends for the usual extensions
// (it uses the magic-mime table), plus a few where that table is wrong or
// silent for the web (wasm, map, avif, mjs, jsonld, yaml, gz).
var builtinTypes = map[string]string{
	"html": "text/html", "htm": "text/html", "shtml": "text/html",
	"xhtml": "application/xhtml+xml",
	"css":   "text/css",
	"js":    "application/javascript", "mjs": "application/javascript",
	"json": "application/json", "jsonld": "application/ld+json", "map": "application/json",
	"webmanifest": "application/manifest+json",
	"txt":         "text/plain", "text": "text/plain", "log": "text/plain",
	"csv": "text/csv", "md": "text/x-markdown", "markdown": "text/x-markdown",
	"ics": "text/calendar", "vcf": "text/vcard",
	"xml": "application/xml", "xsl": "application/xml", "dtd": "application/xml-dtd",
	"rss": "application/rss+xml", "atom": "application/atom+xml",
	"yaml": "application/yaml", "yml": "application/yaml",
	"svg": "image/svg+xml", "svgz": "image/svg+xml",
	"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "jpe": "image/jpeg",
	"gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon",
	"bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
	"woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
	"eot": "application/vnd.ms-fontobject",
	"mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg",
	"mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "wav": "audio/x-wav",
	"m4a": "audio/mp4", "flac": "audio/flac", "opus": "audio/ogg",
	"pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
	"tgz": "application/gzip", "tar": "application/x-tar", "bz2": "application/x-bzip2",
	"xz": "application/x-xz", "7z": "application/x-7z-compressed",
	"wasm": "application/wasm",
	"doc":  "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
	"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"odt":  "application/vnd.oasis.opendocument.text",
	"epub": "application/epub+zip",
	"sh":   "application/x-sh", "c": "text/x-c", "h": "text/x-c", "ml": "text/x-ocaml",
	"py": "text/x-python",
}

// readMIMEFile reads a mime.types file: one type per line followed by
// its extensions, "#" starting a comment, as Ocsigen's <mimefile> (and
// /etc/mime.types) are written. A later line wins for an extension given
// twice.
func readMIMEFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := make(map[string]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		for _, ext := range fields[1:] {
			m[strings.ToLower(ext)] = fields[0]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return m, nil
}

type mimeKey struct {
	name  string
	size  int64
	mtime time.Time
}

var (
	mimeMu    sync.Mutex
	mimeCache = map[mimeKey]map[string]string{}
)

// mimeTable returns the table of <mimefile> name, read once per version
// of the file; the builtin table when name is "".
func mimeTable(name string) (map[string]string, error) {
	if name == "" {
		return builtinTypes, nil
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	k := mimeKey{name, fi.Size(), fi.ModTime()}
	mimeMu.Lock()
	defer mimeMu.Unlock()
	if m, ok := mimeCache[k]; ok {
		return m, nil
	}
	m, err := readMIMEFile(name)
	if err != nil {
		return nil, err
	}
	if len(mimeCache) > 8 {
		clear(mimeCache)
	}
	mimeCache[k] = m
	return m, nil
}

// textual reports whether a charset parameter belongs on type t: the
// types Ocsigen adds one to (ocsigen_http_com.ml, the last release that
// applied its charset settings), text/* and the XML types (*/xml,
// */*+xml). Others, application/javascript and application/json
// included, get none.
func textual(t string) bool {
	t = strings.ToLower(t)
	return strings.HasPrefix(t, "text/") || strings.HasSuffix(t, "/xml") || strings.HasSuffix(t, "+xml")
}
