// Package compat tells where a configuration, which ocsiproxy reads as
// Ocsigen Server 5.0.1 does, would behave differently on Ocsigen Server
// 6.0 or 7.0. ocsiproxy keeps 5.0.1's meaning everywhere; these notes are
// for users who come from, or go to, the later versions.
//
// Every difference checked here was read in Ocsigen's own sources
// (github.com/ocsigen/ocsigenserver, tags 5.0.1 7e87ad1e, 6.0.0
// 7950e0a4, 7.0.0 f9ce4229) and, for the regexp engine, in ocaml-re's
// (github.com/ocaml/ocaml-re, lib/perl.ml at tags 1.11.0 and 1.14.0);
// each check names the file and commit it comes from. Ocsigen's CHANGES
// file lists none of them.
package compat

import (
	"fmt"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Versions are the Ocsigen Server major versions Check knows.
var Versions = []int{6, 7}

// Note is one place where the configuration behaves differently on a
// later Ocsigen Server.
type Note struct {
	Pos xmlconf.Pos
	// Version is the Ocsigen Server version that changed: "6.0" or "7.0".
	Version string
	// Msg says what that version does, and what ocsiproxy does.
	Msg string
}

// String returns "file:line:col: Ocsigen V: message".
func (n Note) String() string {
	return fmt.Sprintf("%s: Ocsigen %s: %s", n.Pos, n.Version, n.Msg)
}

// Check returns the places where cfg would behave differently on Ocsigen
// Server version (6 or 7) than on 5.0.1, in document order (the <server>
// options first, then the hosts). Version 7 includes the changes of 6.0,
// which 7.0 keeps. An unknown version is an error.
func Check(cfg *xmlconf.Config, version int) ([]Note, error) {
	if version != 6 && version != 7 {
		return nil, fmt.Errorf("compat: unknown Ocsigen version %d; want 6 or 7", version)
	}
	c := &checker{v7: version == 7}
	c.server(cfg)
	for _, h := range cfg.Hosts {
		c.host(h)
	}
	return c.notes, nil
}

type checker struct {
	v7    bool
	notes []Note
}

func (c *checker) add(pos xmlconf.Pos, version, format string, args ...any) {
	c.notes = append(c.notes, Note{Pos: pos, Version: version, Msg: fmt.Sprintf(format, args...)})
}

// server checks the <server> options.
func (c *checker) server(cfg *xmlconf.Config) {
	// Ocsigen 6.0 ignores <user> and <group> with a warning: commit
	// ff96bd7d "Remove the ability to switch to another user/group when
	// launched as root"; src/server/ocsigen_parseconfig.ml first_pass at
	// 6.0.0 and 7.0.0 logs "Config file: <user> and <group> deprecated.
	// Please do not launch as root." and skips them.
	for _, u := range []struct {
		name, value string
		pos         xmlconf.Pos
	}{{"user", cfg.User, cfg.UserPos}, {"group", cfg.Group, cfg.GroupPos}} {
		if u.pos.Line == 0 {
			continue
		}
		c.add(u.pos, "6.0", "<%s>%s</%s> is ignored there (a warning says \"<user> and <group> deprecated\"): started as root, Ocsigen stays root; ocsiproxy, as 5.0.1, started as root takes this identity once its ports are open, and refuses to start when it does not exist (--dry-run without URLs checks it)",
			u.name, u.value, u.name)
	}
	// Ocsigen 7.0 removed <maxdetachedcomputationsqueued>: commit
	// 9429c689 "Remove usage of 'Lwt_preemptive'"; its later_pass (7.0.0
	// src/server/ocsigen_parseconfig.ml) then refuses the tag: "tag
	// <maxdetachedcomputationsqueued> unexpected inside <server>".
	if c.v7 && cfg.MaxDetachedPos.Line != 0 {
		c.add(cfg.MaxDetachedPos, "7.0", "<maxdetachedcomputationsqueued> was removed: the file is refused there (\"tag <maxdetachedcomputationsqueued> unexpected inside <server>\"); ocsiproxy accepts it with no effect")
	}
}

// regexpAttrs lists, by element, the attributes Ocsigen 6.0 compiles with
// ocaml-re when it reads the configuration (git grep
// 'Netstring_pcre.regexp\|Pcre.regexp' 6.0.0 -- src/extensions):
// revproxy.ml, redirectmod.ml, rewritemod.ml, outputfilter.ml,
// accesscontrol.ml (<header>, <path>, <ifnotfound code>), staticmod.ml
// (<static regexp code>) and extendconfiguration.ml (<regexp regexp> in
// <hidefile>, <forbidfile>, <contenttype>, <charset>).
var regexpAttrs = map[string][]string{
	"revproxy":     {"suburl", "fullurl", "regexp"},
	"redirect":     {"suburl", "fullurl", "regexp"},
	"rewrite":      {"regexp"},
	"outputfilter": {"regexp"},
	"header":       {"regexp"},
	"path":         {"regexp"},
	"ifnotfound":   {"code"},
	"static":       {"regexp", "code"},
	"regexp":       {"regexp"},
}

// host checks the elements of one <host>, in document order.
func (c *checker) host(h *xmlconf.Host) {
	var forwards [][]*xmlconf.Element // paths of the <allow-forward-for> seen
	var walk func(path []*xmlconf.Element, e *xmlconf.Element)
	walk = func(path []*xmlconf.Element, e *xmlconf.Element) {
		path = append(path[:len(path):len(path)], e)
		c.element(e)
		switch e.Name {
		case "allow-forward-for":
			forwards = append(forwards, path)
		case "ip":
			if !c.v7 {
				break
			}
			for _, f := range forwards {
				if exclusive(f, path) {
					continue
				}
				c.ipAfterForward(e, f[len(f)-1])
				break
			}
		}
		for _, ch := range e.Children {
			walk(path, ch)
		}
	}
	for _, e := range h.Body {
		walk(nil, e)
	}
}

// element checks the attributes of one element.
func (c *checker) element(e *xmlconf.Element) {
	// Ocsigen 6.0 removed regexp= from <revproxy> and <redirect>: commits
	// 61acd281 "Revproxy: removing deprecated (and ambiguous) regexp
	// option" and 0ceece56 (the same for Redirectmod). Their parse_config
	// (6.0.0 src/extensions/revproxy.ml, redirectmod.ml) takes fullurl=
	// and suburl= only, and Configuration.process_attribute
	// (src/server/ocsigen_extensions.ml) refuses any other attribute:
	// "Unexpected attribute regexp in tag revproxy".
	if re, ok := e.Attr("regexp"); ok && (e.Name == "revproxy" || e.Name == "redirect") {
		instead := "fullurl=, which means the same: regexp= matches the full URL"
		if e.Name == "redirect" {
			// 5.0.1 redirectmod.ml: regexp= sets mode `Maybe, which
			// tries the sub-path and then the full URL.
			instead = "suburl= or fullurl=: regexp= tries the sub-path, then the full URL"
		}
		c.add(e.Pos, "6.0", "<%s regexp=%q>: regexp= was removed: the file is refused there (\"Unexpected attribute regexp in tag %s\"); write %s", e.Name, re, e.Name, instead)
	}
	for _, name := range regexpAttrs[e.Name] {
		re, ok := e.Attr(name)
		if !ok {
			continue
		}
		for _, p := range ReProblems(re) {
			c.add(e.Pos, "6.0", "<%s %s=%q>: %s is not in the syntax of ocaml-re, Ocsigen's regexp engine since 5.1.0 (commit 5ac63990 \"Use re instead of obsolete pcre\"): the file is refused there; ocsiproxy, like 5.0.1's PCRE, takes it", e.Name, name, re, p)
		}
	}
	// Ocsigen 7.0 lists directories: commit d0f879e6 "Add support for
	// directory listings in `Staticmod`" (CHANGES 7.0.0: "Restore dirlist
	// feature"); 5.0.1's staticmod.ml fails on a directory ("FIXME:
	// staticmod dirs not implemented", a 500, measured by
	// difftest/scen_ext_test.go).
	if c.v7 && e.Name == "listdirs" {
		if v, _ := e.Attr("value"); v == "true" {
			c.add(e.Pos, "7.0", "<listdirs value=\"true\"/>: a directory without an index is listed there, as ocsiproxy lists it; 5.0.1 answers 500")
		}
	}
}

// ipAfterForward notes an <ip> condition that can be tested after
// <allow-forward-for/> has changed the client address.
//
// Ocsigen 7.0: commit 3b12a12d "Alternative API for
// Ocsigen_request.remote_ip". allow_forward_for_handler (7.0.0
// src/extensions/accesscontrol.ml) sets client_conn to `Forwarded_for
// (the address from X-Forwarded-For), and the <ip> condition matches only
// `Inet (a direct connection): `| _ -> false`. In 5.0.1 it set remote_ip,
// which <ip> then tested.
func (c *checker) ipAfterForward(ip, forward *xmlconf.Element) {
	v, _ := ip.Attr("value")
	c.add(ip.Pos, "7.0", "<ip value=%q> after <allow-forward-for/> (%s): there it is always false once X-Forwarded-For was accepted, as it no longer tests the forwarded client address; ocsiproxy, like 5.0.1, tests the address <allow-forward-for/> established",
		v, forward.Pos.Short())
}

// exclusive reports whether the elements at the ends of paths a and b are
// in the <then> and the <else> of the same <if>, so that a request meets
// only one of them.
func exclusive(a, b []*xmlconf.Element) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		if i == 0 || a[i-1].Name != "if" {
			return false
		}
		x, y := a[i].Name, b[i].Name
		return (x == "then" && y == "else") || (x == "else" && y == "then")
	}
	return false
}

// reEscapes are the letters ocaml-re (lib/perl.ml, 1.11.0 to 1.14.0)
// takes after a backslash outside a character class; any other letter
// is a Parse_error. Q, E and o are taken by 1.14.0 only and are left
// out of the checks.
const reEscapes = "wWsSdDbBAZzGefnrtxQEo"

// reClassEscapes are the letters ocaml-re takes after a backslash inside
// a character class.
const reClassEscapes = "bnrtwWsSdD"

// ReProblems returns the constructs of re, a regexp ocsiproxy accepts,
// that ocaml-re's Perl parser (lib/perl.ml, the parser behind Ocsigen
// 6.0's Re.Pcre.regexp) refuses in every version Ocsigen 6.0 and 7.0
// allow (re >= 1.11.0): lookahead and lookbehind, back-references, the
// (?P<name>...) and (?'name'...) forms of named groups, inline options,
// atomic groups and conditionals, and escapes such as \p or \h. Each is
// described with the text that shows it, e.g. `lookahead "(?="`. nil
// means ocaml-re parses re as far as these checks go.
func ReProblems(re string) []string {
	var out []string
	add := func(format string, args ...any) {
		if p := fmt.Sprintf(format, args...); !contains(out, p) {
			out = append(out, p)
		}
	}
	inClass, classStart := false, 0
	for i := 0; i < len(re); i++ {
		ch := re[i]
		if ch == '\\' {
			if i+1 == len(re) {
				break
			}
			d := re[i+1]
			i++
			switch {
			case inClass && d >= '0' && d <= '9':
				add("the octal escape %q in a character class", re[i-1:i+1])
			case inClass && isLetter(d) && !strings.ContainsRune(reClassEscapes, rune(d)):
				add("the escape %q in a character class", re[i-1:i+1])
			case inClass:
			case d >= '1' && d <= '9':
				add("the back-reference %q", re[i-1:i+1])
			case d == 'k' || d == 'g':
				add("the back-reference %q", re[i-1:i+1])
			case isLetter(d) && !strings.ContainsRune(reEscapes, rune(d)):
				add("the escape %q", re[i-1:i+1])
			}
			continue
		}
		if inClass {
			// "]" right after "[" or "[^" is a literal.
			if ch == ']' && i > classStart {
				inClass = false
			}
			if ch == '[' && i+1 < len(re) && re[i+1] == ':' {
				// A POSIX class such as [:alpha:]: skip to its end.
				if end := strings.Index(re[i+2:], ":]"); end >= 0 {
					i += end + 3
				}
			}
			continue
		}
		switch ch {
		case '[':
			inClass = true
			classStart = i + 1
			if classStart < len(re) && re[classStart] == '^' {
				classStart++
			}
		case '(':
			if i+1 < len(re) && re[i+1] == '?' {
				if p := groupProblem(re[i+2:]); p != "" {
					add("%s", p)
				}
			}
		}
	}
	return out
}

// groupProblem describes the group that starts with "(?" followed by rest,
// or returns "" when ocaml-re takes it: (?:...), (?#...) and
// (?<name>...).
func groupProblem(rest string) string {
	show := func(n int) string { return fmt.Sprintf("%q", "(?"+rest[:min(n, len(rest))]) }
	switch {
	case rest == "":
		return ""
	case strings.HasPrefix(rest, "<=") || strings.HasPrefix(rest, "<!"):
		return "the lookbehind " + show(2)
	case rest[0] == '=' || rest[0] == '!':
		return "the lookahead " + show(1)
	case rest[0] == ':' || rest[0] == '#':
		return ""
	case rest[0] == '<':
		if len(rest) > 1 && (isLetter(rest[1]) || rest[1] == '_') {
			return ""
		}
		return "the group " + show(2)
	case strings.HasPrefix(rest, "P<"):
		return "the named group " + show(2)
	case strings.HasPrefix(rest, "P="):
		return "the back-reference " + show(2)
	case rest[0] == '\'':
		return "the named group " + show(1)
	case rest[0] == '>':
		return "the atomic group " + show(1)
	case rest[0] == '(':
		return "the conditional " + show(1)
	case isLetter(rest[0]) || rest[0] == '-':
		n := 1
		for n < len(rest) && (isLetter(rest[n]) || rest[n] == '-') {
			n++
		}
		return "the inline option " + show(n)
	}
	return "the group " + show(1)
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
