package engine

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/rules"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Tree is a compiled configuration: the hosts in file order, each with its
// compiled instructions. It is immutable and safe for concurrent use.
type Tree struct {
	hosts      []*host
	env        *stage.Env
	cfg        *xmlconf.Config
	maxRetries int
	debug      bool
}

// HostStages returns the compiled instructions of the i-th <host>, in
// document order, for inspection (tests, tools); nil when there is no
// such host.
func (t *Tree) HostStages(i int) []stage.Stage {
	if i < 0 || i >= len(t.hosts) {
		return nil
	}
	return t.hosts[i].body
}

// Config returns the configuration the tree was compiled from.
func (t *Tree) Config() *xmlconf.Config { return t.cfg }

// Env returns the run-time environment the tree's stages use.
func (t *Tree) Env() *stage.Env { return t.env }

type host struct {
	patterns []hostPattern
	filter   string
	pos      xmlconf.Pos
	body     []stage.Stage
}

// hostDefaults are the <host> attributes used to build absolute URLs.
type hostDefaults struct {
	name      string // defaulthostname
	httpPort  int    // defaulthttpport, 80 by default
	httpsPort int    // defaulthttpsport, 443 by default
	always    bool   // <usedefaulthostname/>
}

func (h *host) matches(st *stage.State) bool {
	if st.Host == "" {
		// Only HTTP/1.0 requests get here without Host: they match every
		// host.
		return true
	}
	for _, p := range h.patterns {
		if p.matches(st.HostName, st.LocalPort) {
			return true
		}
	}
	return false
}

// Process runs the configuration on st: hosts in file order, restarting
// after a <rewrite> until <maxretries> restarts. On return, st.Answer is
// the answer, or nil with st.Status the status to send; a non-nil error
// carries its own status.
func (t *Tree) Process(ctx context.Context, st *stage.State) error {
	for {
		r, err := t.runHosts(ctx, st)
		if err != nil || r != stage.Restart {
			return err
		}
		st.Retries++
		if st.Retries > t.maxRetries {
			return &stage.Error{Status: http.StatusInternalServerError,
				Err: fmt.Errorf("%w: more than %d (<maxretries>)", rules.ErrRewriteLoop, t.maxRetries)}
		}
	}
}

// runHosts runs the hosts whose hostfilter matches, in file order, until
// one answers, stops everything or restarts; the status of an unanswered
// request stays in st.Status.
func (t *Tree) runHosts(ctx context.Context, st *stage.State) (stage.Result, error) {
	matched := false
	for _, h := range t.hosts {
		if !h.matches(st) {
			if st.Trace != nil {
				st.Tracef(h.pos, "host hostfilter=%q: does not match %q", h.filter, st.Host)
			}
			continue
		}
		matched = true
		st.HostFilter = h.filter
		if st.Host == "" {
			if st.Trace != nil {
				st.Tracef(h.pos, "host hostfilter=%q: entered (no Host header: an HTTP/1.0 request enters every host)", h.filter)
			}
		} else {
			if st.Trace != nil {
				st.Tracef(h.pos, "host hostfilter=%q: matches %q", h.filter, st.Host)
			}
		}
		st.Site = nil
		st.SubPath = strings.TrimPrefix(st.Path, "/")
		st.Files = nil // each host starts from the default file settings
		r, err := stage.RunBlock(ctx, st, h.body)
		if err != nil || r == stage.Restart || r == stage.StopAll {
			return r, err
		}
		if st.Answer != nil {
			return stage.StopAll, nil
		}
	}
	if !matched {
		if st.Trace != nil {
			st.Tracef(xmlconf.Pos{}, "no host matches %q", st.Host)
		}
	}
	return stage.StopAll, nil
}

// siteStage is a compiled <site>: it runs its instructions when the path
// lies inside the site.
type siteStage struct {
	segs []string // the site's path from the host root, decoded
	name string   // display(), for the logs
	pos  xmlconf.Pos
	host *hostDefaults
	body []stage.Stage
}

func (s *siteStage) display() string {
	if len(s.segs) == 0 {
		return "/"
	}
	return "/" + strings.Join(s.segs, "/") + "/"
}

func (s *siteStage) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	sub, ok := stage.SubPathOf(st.Path, s.segs)
	if !ok {
		if st.Answer == nil && len(s.segs) > 0 {
			if stage.InsideWithSlash(st.Path, s.segs) {
				loc := s.directoryURL(st)
				if st.Trace != nil {
					st.Tracef(s.pos, "site %s: path names the site without its trailing slash -> redirect 301 Location: %s", s.display(), loc)
				}
				st.SetAnswer(rules.NewRedirect(http.StatusMovedPermanently, loc), s.pos)
				return stage.Next, nil
			}
		}
		if st.Trace != nil {
			st.Tracef(s.pos, "site %s: not entered", s.display())
		}
		return stage.Next, nil
	}
	if st.Trace != nil {
		st.Tracef(s.pos, "site %s: entered, sub-path %q", s.display(), sub)
	}
	parent, files := st.Site, st.Files
	st.Site, st.SubPath = s.segs, sub
	answered := st.Answer != nil
	r, err := stage.RunBlock(ctx, st, s.body)
	if !answered && st.Answer != nil && st.AnswerSite == "" {
		// Answered in this site (an inner site would have set it).
		st.AnswerSite = s.name
	}
	// As in Ocsigen, the settings changed inside the site (<listdirs>...)
	// do not outlive it.
	st.Site, st.Files = parent, files
	psub, inside := stage.SubPathOf(st.Path, parent)
	if inside {
		st.SubPath = psub
	}
	if r == stage.StopSite {
		r = stage.Next
	}
	if !inside && r == stage.Next {
		// A <rewrite continue="continue"> moved the request out of the
		// enclosing site too.
		r = stage.StopSite
	}
	return r, err
}

// directoryURL is the Location of the redirect from "/a/b" to "/a/b/":
// scheme://host[:port]/a/b/[?query]. As in Ocsigen, the host is the Host
// header's name with the listening port (omitted when 80 or 443); when
// Host is absent or <usedefaulthostname/> is set, it is defaulthostname
// with defaulthttpport or defaulthttpsport (omitted when the scheme's
// default). With neither, the Location is the path alone.
func (s *siteStage) directoryURL(st *stage.State) string {
	target := st.Path + "/"
	if st.HasQuery {
		target += "?" + st.RawQuery
	}
	if st.Host != "" && !s.host.always {
		return st.Scheme() + "://" + st.HostPort() + target
	}
	if s.host.name == "" {
		if st.Host != "" {
			return st.Scheme() + "://" + st.HostPort() + target
		}
		return target
	}
	port, def := s.host.httpPort, 80
	if st.Secure {
		port, def = s.host.httpsPort, 443
	}
	hostport := s.host.name
	if port != def && port != 0 {
		hostport += ":" + strconv.Itoa(port)
	}
	return st.Scheme() + "://" + hostport + target
}
