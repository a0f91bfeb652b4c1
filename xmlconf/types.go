// Package xmlconf reads an Ocsigen Server XML configuration file into a
// typed, positioned configuration.
//
// It knows the XML dialect Ocsigen's files are written in (xml-light: a raw
// "&" kept literally, "\\" meaning "\" inside attribute values), the
// <server> options of Ocsigen 5.0.1, <extconf> splicing, and the <host>
// elements. It does not interpret what is inside a host: sites and site
// instructions are returned as positioned [Element] trees for the
// extensions to compile, as Ocsigen's own extensions parse their elements.
//
// Every element carries its position, and every error found is reported,
// each as "file:line:col: message".
package xmlconf

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pos is the position of an element's start tag: its file, and its 1-based
// line and byte column.
type Pos struct {
	File string
	Line int
	Col  int
}

// String returns "file:line:col".
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Short returns "file:line", the form traces use to name a rule.
func (p Pos) Short() string { return p.File + ":" + strconv.Itoa(p.Line) }

// Error is one configuration problem at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "file:line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList collects every problem found in a configuration, so that all of
// them are reported at once.
type ErrorList []*Error

// Add appends a problem at pos.
func (l *ErrorList) Add(pos Pos, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// Len returns the number of problems collected.
func (l ErrorList) Len() int { return len(l) }

// Sort orders the problems by file, line and column.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Err returns nil when the list is empty, and the sorted list otherwise.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// With returns the problems of l together with err, the error of another
// reader of the same configuration (an ErrorList from it is merged, so
// that every problem is printed, sorted by position); nil when there is
// neither.
func (l ErrorList) With(err error) error {
	var el ErrorList
	switch {
	case err == nil:
		return l.Err()
	case len(l) == 0:
		return err
	case errors.As(err, &el):
		return append(l, el...).Err()
	}
	return errors.Join(l.Err(), err)
}

// Join returns the problems of every err together: the ErrorLists
// among them merged into one, sorted by position, a problem reported by
// two readers kept once, and joined with the other errors (see
// [errors.Join]); nil when every err is nil.
func Join(errs ...error) error {
	var list ErrorList
	var other []error
	for _, err := range errs {
		if el, ok := err.(ErrorList); ok {
			list = append(list, el...)
		} else if err != nil {
			other = append(other, err)
		}
	}
	list.Sort()
	list = slices.CompactFunc(list, func(a, b *Error) bool { return *a == *b })
	return list.With(errors.Join(other...))
}

// Attr is one attribute of an element. Value is decoded the way Ocsigen
// reads it: entities decoded, a raw "&" kept, "\\" turned into "\".
type Attr struct {
	Name  string
	Value string
}

// Element is one XML element with its position. Text is the element's
// character data (CDATA included), with leading and trailing white space
// removed.
type Element struct {
	Name     string
	Attrs    []Attr
	Children []*Element
	Text     string
	Pos      Pos
}

// Attr returns the value of the named attribute and whether it is present.
func (e *Element) Attr(name string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// CheckAttrs reports, into errs, every attribute of e not in allowed and
// every attribute of required that e lacks. It returns false if it
// reported anything.
func (e *Element) CheckAttrs(errs *ErrorList, required, allowed []string) bool {
	ok := true
	for _, a := range e.Attrs {
		if !contains(allowed, a.Name) && !contains(required, a.Name) {
			errs.Add(e.Pos, "<%s>: unknown attribute %q", e.Name, a.Name)
			ok = false
		}
	}
	for _, r := range required {
		if _, present := e.Attr(r); !present {
			errs.Add(e.Pos, "<%s>: missing attribute %q", e.Name, r)
			ok = false
		}
	}
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Size is a byte count read with Ocsigen's units. Infinite is the value of
// "infinity".
type Size int64

// Infinite is the Size of "infinity": no limit.
const Infinite Size = -1

// Port is one <port> listener.
type Port struct {
	// Addr is the address for net.Listen: "127.0.0.1:80", ":80" (every
	// address, for "80" and "*:80"), "[::]:80", "[2001:db8::1]:80".
	Addr string
	// Port is the listening port number.
	Port int
	// HTTPS is set by protocol="HTTPS".
	HTTPS bool
	Pos   Pos
}

// SSL is the <ssl> element: certificate and private key files for HTTPS
// ports, and the other settings Ocsigen 5.0.1 reads there. Fields are ""
// when their element is absent.
type SSL struct {
	Certificate string
	PrivateKey  string
	Ciphers     string // <ciphers>: an OpenSSL cipher list
	DHFile      string // <dhfile>: Diffie-Hellman parameters file
	Curve       string // <curve>: elliptic curve name
	Pos         Pos
}

// Extension is one <extension>, <require> or <library> line.
type Extension struct {
	// Name is the findlib-package or module attribute, e.g.
	// "ocsigenserver.ext.revproxy".
	Name string
	// Attr is the attribute Name comes from: "findlib-package", "module"
	// or "name" (an OCaml module already linked, for Ocsigen).
	Attr string
	// Element is the whole element, for extensions that take child
	// elements (the revproxy <pool> and <upstream> configuration).
	Element *Element
	Pos     Pos
}

// ShortName returns the short name of the extension:
// "ocsigenserver.ext.revproxy", "ocsiproxy.ext.revproxy" and
// "/usr/lib/.../revproxy.cmxs" are all "revproxy". ok is false for a
// name that is not an ocsigenserver or ocsiproxy extension (eliom.server,
// ...); short is then the name itself.
func (e Extension) ShortName() (short string, ok bool) {
	name := e.Name
	if s, found := strings.CutPrefix(name, "ocsigenserver.ext."); found {
		return s, true
	}
	if s, found := strings.CutPrefix(name, "ocsiproxy.ext."); found {
		return s, true
	}
	if strings.ContainsAny(name, "/\\") || strings.HasSuffix(name, ".cmxs") || strings.HasSuffix(name, ".cma") || strings.HasSuffix(name, ".cmo") {
		base := path.Base(strings.ReplaceAll(name, "\\", "/"))
		return strings.TrimSuffix(base, path.Ext(base)), true
	}
	return name, false
}

// Note records a <server> option that is accepted but has no effect in
// ocsiproxy, with the reason; --dry-run prints these.
type Note struct {
	Pos    Pos
	Option string
	Reason string
}

// Host is one <host> element. Body holds its children (sites and site
// instructions) in document order, uninterpreted.
type Host struct {
	// Filter is the hostfilter attribute as written; "*" when absent.
	Filter string
	// DefaultHostname is the defaulthostname attribute. When absent it is,
	// as in Ocsigen 5.0.1, the first name of Filter without "*" and
	// without a port other than 80, else this machine's host name.
	DefaultHostname string
	// DefaultHTTPPort is the defaulthttpport attribute. When absent it is,
	// as in Ocsigen 5.0.1, the port of the last HTTP <port> of the main
	// file, else 80.
	DefaultHTTPPort int
	// DefaultHTTPSPort is the defaulthttpsport attribute. When absent it
	// is the port of the last HTTPS <port> of the main file, else 443.
	DefaultHTTPSPort int
	// DefaultProtocol is the defaultprotocol attribute as written; "" when
	// absent.
	DefaultProtocol string
	// DefaultHTTPS is set when DefaultProtocol is "https", in any case
	// (Ocsigen 5.0.1 accepts only the lower-case spelling).
	DefaultHTTPS bool
	// Charset is the charset attribute: the default charset of the text
	// files <static> serves in the host, instead of the server's
	// <charset>. "" when absent or empty; HasCharset tells them apart
	// (charset="" means no charset).
	Charset    string
	HasCharset bool
	Body       []*Element
	Pos        Pos
}

// Config is a whole configuration file, with <extconf> files spliced in.
// Fields hold Ocsigen's defaults when their element is absent.
type Config struct {
	File string
	// Ports lists the <port> elements of the main file in document order
	// (Ocsigen reads no <port> from <extconf> files).
	Ports []Port
	// SSL is the <ssl> element; nil when absent.
	SSL *SSL

	LogDir         string // "" means log to stdout and stderr
	LogDirPos      Pos    // the position of <logdir>; zero when absent
	Syslog         bool   // set by <syslog>: log to syslog instead of <logdir>
	SyslogFacility string // the text of <syslog>, lower-cased; "" when empty (ocsiproxy then uses daemon)
	SyslogPos      Pos    // the position of <syslog>; zero when absent
	DataDir        string
	User, Group    string // "" means the current user and group
	UserPos        Pos    // the position of <user>; zero when absent
	GroupPos       Pos    // the position of <group>; zero when absent
	Charset        string // default charset of the text files <static> serves; "" (the default) means none
	CommandPipe    string
	CommandPipePos Pos // the position of <commandpipe>; zero when absent
	MimeFile       string
	UploadDir      string

	MaxConnected       int           // default 350
	Timeout            time.Duration // default 30s: client connection timeout, also the backend answer timeout; <clienttimeout> is a synonym
	ServerTimeout      time.Duration // default 0 (unset): <servertimeout>, which Ocsigen 5.0.1 parses and ignores
	KeepAliveTimeout   time.Duration // default 30s
	ShutdownTimeout    time.Duration // default 10s (Ocsigen's); negative means "notimeout"
	NetBufferSize      Size          // default 8192: largest request header block
	FileBufferSize     Size          // default 8192
	MaxRequestBodySize Size          // default Infinite (Ocsigen 5.0.1 parses it but enforces no limit)
	MaxUploadFileSize  Size          // default 2000000 (Ocsigen's)
	MaxRetries         int           // default 10: rewrite restarts
	MinThreads         int           // default 10 (Ocsigen's)
	MaxThreads         int           // default 30 (Ocsigen's)
	MaxDetached        int           // default 1000 (Lwt's): <maxdetachedcomputationsqueued>
	MaxDetachedPos     Pos           // the position of <maxdetachedcomputationsqueued>; zero when absent

	DebugMode              bool
	UseDefaultHostname     bool
	RespectPipeline        bool
	DisablePartialRequests bool // <disablepartialrequests/>

	Extensions []Extension
	Hosts      []*Host

	// Notes lists the options accepted with no effect.
	Notes []Note
	// ExtconfDirs lists the dir of every <extconf> element met, as
	// written (a relative one is relative to the current directory), in
	// the order met, those that could not be read included: with File,
	// the places a change of the configuration can come from (--watch).
	ExtconfDirs []string
	// Warnings lists problems that did not stop loading, such as an
	// <extconf> file that does not parse (then skipped), in the order
	// found, each "file:line:col: message".
	Warnings []string
}

// HasExtension reports whether an <extension> line loads the named findlib
// package or module.
func (c *Config) HasExtension(name string) bool {
	for _, e := range c.Extensions {
		if e.Name == name {
			return true
		}
	}
	return false
}
