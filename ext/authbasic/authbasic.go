// Package authbasic compiles <authbasic>, Ocsigen's HTTP Basic
// authentication (ocsigenserver.ext.authbasic):
//
//	<authbasic realm="Admin area">
//	  <plain login="admin" password="secret"/>
//	</authbasic>
//
// On an unanswered request, valid credentials let the following
// instructions run; missing or wrong ones are answered 401 with
// "WWW-Authenticate: Basic realm=...", an answer the filters after
// <authbasic> see. A malformed Basic header is 400. Credentials are
// compared in constant time.
package authbasic

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Elements lists the site elements of ocsigenserver.ext.authbasic.
var Elements = []string{"authbasic"}

// credential is one <plain> user, kept as digests so that comparing
// takes the same time whatever the lengths.
type credential struct {
	login    string
	loginSum [sha256.Size]byte
	passSum  [sha256.Size]byte
}

// Auth is a compiled <authbasic>.
type Auth struct {
	pos       xmlconf.Pos
	realm     string
	challenge string // the WWW-Authenticate value
	users     []credential
}

// Configure checks the extension's <extension> line: authbasic takes no
// options.
func Configure(c stage.Compiler, ext *xmlconf.Extension) {
	if ext.Element != nil {
		for _, ch := range ext.Element.Children {
			c.Errors().Add(ch.Pos, "<%s>: %s takes no options", ch.Name, ext.Name)
		}
	}
}

// Compile compiles <authbasic realm="R"> with one or more
// <plain login="L" password="P"/> children. (Ocsigen 5.0.1 takes exactly
// one; several are accepted here, any of them letting the request in.)
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !e.CheckAttrs(errs, []string{"realm"}, nil) {
		return nil
	}
	if e.Text != "" {
		errs.Add(e.Pos, "<authbasic>: unexpected text %q", e.Text)
		return nil
	}
	realm, _ := e.Attr("realm")
	if strings.ContainsAny(realm, "\r\n\x00") {
		errs.Add(e.Pos, "<authbasic>: realm contains a line break or NUL")
		return nil
	}
	a := &Auth{pos: e.Pos, realm: realm, challenge: "Basic realm=" + quote(realm)}
	ok := true
	for _, ch := range e.Children {
		if ch.Name != "plain" {
			errs.Add(ch.Pos, "<authbasic>: unknown authentication method <%s>; want <plain login= password=/>", ch.Name)
			ok = false
			continue
		}
		if !ch.CheckAttrs(errs, []string{"login", "password"}, nil) {
			ok = false
			continue
		}
		if len(ch.Children) > 0 || ch.Text != "" {
			errs.Add(ch.Pos, "<plain>: unexpected content")
			ok = false
			continue
		}
		login, _ := ch.Attr("login")
		pass, _ := ch.Attr("password")
		if strings.Contains(login, ":") {
			errs.Add(ch.Pos, "<plain>: a login cannot contain \":\" (Basic credentials are login:password)")
			ok = false
			continue
		}
		a.users = append(a.users, credential{login: login, loginSum: sha256.Sum256([]byte(login)), passSum: sha256.Sum256([]byte(pass))})
	}
	if !ok {
		return nil
	}
	if len(a.users) == 0 {
		errs.Add(e.Pos, "<authbasic>: missing <plain login= password=/>")
		return nil
	}
	return a
}

// quote returns s as an HTTP quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Run checks the credentials of an unanswered request.
func (a *Auth) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	hdr := st.Fields().Get("Authorization")
	if hdr == "" {
		return a.reject(st, "no credentials")
	}
	scheme, param, _ := strings.Cut(strings.TrimSpace(hdr), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return a.reject(st, "scheme "+strconv.Quote(scheme)+" is not Basic")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(param))
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusBadRequest, "authbasic at %s: malformed Basic credentials", a.pos)
	}
	login, pass, found := strings.Cut(string(raw), ":")
	if !found {
		return stage.Next, stage.Errorf(http.StatusBadRequest, "authbasic at %s: malformed Basic credentials (no \":\")", a.pos)
	}
	if user, ok := a.check(login, pass); ok {
		st.Tracef(a.pos, "authbasic realm=%q: user %q accepted", a.realm, user)
		return stage.Next, nil
	}
	return a.reject(st, "wrong login or password")
}

// check compares login and pass with every user, in constant time: the
// time taken depends on the number of users only.
func (a *Auth) check(login, pass string) (string, bool) {
	ls := sha256.Sum256([]byte(login))
	ps := sha256.Sum256([]byte(pass))
	match := -1
	for i := range a.users {
		u := &a.users[i]
		ok := subtle.ConstantTimeCompare(ls[:], u.loginSum[:]) & subtle.ConstantTimeCompare(ps[:], u.passSum[:])
		match = subtle.ConstantTimeSelect(ok, i, match)
	}
	if match < 0 {
		return "", false
	}
	return a.users[match].login, true
}

func (a *Auth) reject(st *stage.State, why string) (stage.Result, error) {
	st.Tracef(a.pos, "authbasic realm=%q: %s -> answer 401", a.realm, why)
	const body = "<html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>\n"
	resp := &wire.Response{
		StatusCode: http.StatusUnauthorized, ProtoMinor: 1,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}
	resp.Header.Add("Www-Authenticate", a.challenge)
	resp.Header.Add("Content-Type", "text/html; charset=utf-8")
	st.SetAnswer(resp, a.pos)
	return stage.Next, nil
}
