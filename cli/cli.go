// Package cli is ocsiproxy's command line: the flags of ocsigenserver, so
// that an init script or unit file can swap the binary, plus --dry-run.
package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/compat"
	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/server"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Version, when set at build time with
// -ldflags "-X github.com/ocsiproxy/ocsiproxy/cli.Version=...", is the
// version --version prints; by default it is "" and the module version
// of the build information is printed ("(devel)" for a build from a
// checkout, the tag for go install ...@v1.2.3).
var Version = ""

// DefaultConfig is the configuration file read without -c, as for
// ocsigenserver.
const DefaultConfig = "/etc/ocsigenserver/ocsigenserver.conf"

type options struct {
	config       string
	verbose      int
	veryVerbose  bool
	debug        bool
	silent       bool
	pidfile      string
	daemon       bool
	version      bool
	dryRun       bool
	json         bool
	method       string
	headers      []string
	from         string
	https        bool
	matchTimeout time.Duration
	reverseProxy string
	port         string
	checkOcsigen int
	watch        bool
	compare      string
	host         string
}

// flags returns the command line's flags, bound to o.
func flags(o *options, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ocsiproxy", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.StringVarP(&o.config, "config", "c", DefaultConfig, "alternate config `file`")
	fs.BoolVarP(&o.silent, "silent", "s", false, "silent mode (error messages in errors.log only)")
	fs.StringVarP(&o.pidfile, "pidfile", "p", "", "write the process id to `file`")
	fs.CountVarP(&o.verbose, "verbose", "v", "verbose mode; -vv very verbose, -vvv debug")
	fs.BoolVar(&o.veryVerbose, "veryverbose", false, "very verbose mode (same as -vv)")
	fs.BoolVar(&o.debug, "debug", false, "extremely verbose mode (same as -vvv)")
	fs.BoolVarP(&o.daemon, "daemon", "d", false, "daemon mode: detach once the server is serving; exit with its status if it fails to start")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.dryRun, "dry-run", "t", false, "check the config (without URLs: also certificates, log files, command pipe, user and group), then show what would happen to each URL argument (or stdin line) without serving")
	fs.BoolVar(&o.json, "json", false, "with --dry-run: one JSON object per URL")
	fs.StringVar(&o.method, "method", "GET", "with --dry-run: the request `method`")
	fs.StringArrayVar(&o.headers, "header", nil, "with --dry-run: a request header `'Name: value'` (repeatable)")
	fs.StringVar(&o.from, "from", "127.0.0.1", "with --dry-run: the client (peer) `address`")
	fs.BoolVar(&o.https, "https", false, "with --dry-run: the request arrives over TLS")
	fs.IntVar(&o.checkOcsigen, "check-ocsigen", 0, "with --dry-run: note where the file behaves differently on Ocsigen Server `version` 6 or 7 than on 5.0.1")
	fs.BoolVar(&o.watch, "watch", false, "reload when the config file or a file of its <extconf> directories changes (looked at every second; follows a Kubernetes ConfigMap's symlink swap)")
	fs.StringVar(&o.compare, "compare", "", "with --dry-run (implied): run each URL argument, or each stdin line (a URL or an access-log line: Combined, ocsiproxy's, Ocsigen's), through this old config `file` and the -c one, and print the requests whose decisions differ; exit 1 when one does")
	fs.StringVar(&o.host, "host", "", "with --compare: the `host` of log lines that name none (Combined format); default: the defaulthostname of the first <host> of -c")
	fs.DurationVar(&o.matchTimeout, "match-timeout", pattern.DefaultMatchTimeout, "time limit of one regexp match; a request whose match runs longer gets 500")
	fs.StringVar(&o.reverseProxy, "reverse-proxy", "", "serve everything to `URL` (http[s]://host[:port][/path]) with no config file, as <revproxy suburl=\"(.*)\" dest=\"URL/\\1\"/>")
	fs.StringVar(&o.port, "port", "8080", "with --reverse-proxy: the `port` listened on, as <port> takes it (8080, 127.0.0.1:8080, [::1]:8080)")
	return fs
}

// Serves reports whether the command line args (without the program
// name) starts the server: false for --version, --help, --dry-run,
// --compare and a command line that does not parse, which only print.
func Serves(args []string) bool {
	var o options
	fs := flags(&o, io.Discard)
	fs.Usage = func() {}
	if fs.Parse(args) != nil {
		return false
	}
	return !o.version && !o.dryRun && o.compare == ""
}

// Run runs the command line args and returns the exit status: 0 on
// success, 1 when the configuration is wrong or the server fails, 2 for a
// bad command line.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o options
	fs := flags(&o, stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: ocsiproxy [-c configfile] [options] [--dry-run [URL...]]\n       ocsiproxy [-c configfile] --compare old.conf [options] [URL...] [< access.log]\n       ocsiproxy --reverse-proxy URL [--port N] [options] [--dry-run [URL...]]\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ocsiproxy: %v\n", err)
		return 2
	}
	if o.version {
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintf(stdout, "%s\n", versionLine(Version, bi))
		return 0
	}
	if o.compare != "" {
		o.dryRun = true
	} else if fs.Changed("host") {
		fmt.Fprintf(stderr, "ocsiproxy: --host goes with --compare\n")
		return 2
	}
	if !o.dryRun && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ocsiproxy: unexpected arguments %q (URLs are for --dry-run)\n", fs.Args())
		return 2
	}
	if fs.Changed("check-ocsigen") {
		switch {
		case !o.dryRun:
			fmt.Fprintf(stderr, "ocsiproxy: --check-ocsigen goes with --dry-run\n")
			return 2
		case !slices.Contains(compat.Versions, o.checkOcsigen):
			fmt.Fprintf(stderr, "ocsiproxy: --check-ocsigen %d: want 6 or 7\n", o.checkOcsigen)
			return 2
		}
	}
	if o.daemon && !o.dryRun {
		return daemonize(args, stderr)
	}
	ready := func() {}
	if report := daemonReport(); report != nil {
		// Started by -d: the start-up messages go to the parent, which
		// exits once ready is called.
		h := &handoff{w: report, report: report}
		after := stderr
		stderr, ready = h, func() { h.done(after) }
	}
	var cfg *xmlconf.Config
	var loadErr error
	switch {
	case o.reverseProxy != "" && fs.Changed("config"):
		fmt.Fprintf(stderr, "ocsiproxy: --reverse-proxy and -c/--config exclude each other\n")
		return 2
	case o.reverseProxy != "" && o.watch:
		fmt.Fprintf(stderr, "ocsiproxy: --watch needs a configuration file; --reverse-proxy has none\n")
		return 2
	case o.reverseProxy == "" && fs.Changed("port"):
		fmt.Fprintf(stderr, "ocsiproxy: --port goes with --reverse-proxy\n")
		return 2
	case o.reverseProxy != "":
		var err error
		if cfg, err = xmlconf.ReverseProxy(o.reverseProxy, o.port); err != nil {
			var list xmlconf.ErrorList
			errors.As(err, &list)
			for _, e := range list {
				fmt.Fprintf(stderr, "ocsiproxy: %s\n", e.Msg)
			}
			return 2
		}
	default:
		// With an error, cfg still holds what could be read: the problems
		// of compiling it are reported with those of reading it.
		if cfg, loadErr = xmlconf.Load(o.config); cfg == nil {
			fmt.Fprintf(stderr, "%v\n", loadErr)
			return 1
		}
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	opts := engine.Options{MatchTimeout: o.matchTimeout}
	if o.compare != "" {
		return compare(&o, cfg, loadErr, opts, o.compare, fs.Args(), stdin, stdout, stderr)
	}
	if o.dryRun {
		return dryRun(&o, cfg, loadErr, opts, fs.Args(), stdin, stdout, stderr)
	}
	return serve(&o, cfg, loadErr, opts, stdout, stderr, ready)
}

func level(o *options) int {
	switch {
	case o.silent:
		return accesslog.Silent
	case o.debug || o.verbose >= 3:
		return accesslog.Debug
	case o.veryVerbose || o.verbose == 2:
		return accesslog.VeryVerbose
	case o.verbose == 1:
		return accesslog.Verbose
	}
	return accesslog.Normal
}

// dryRun runs --dry-run (-t): the configuration's problems (loadErr,
// those of compiling it and, without URL arguments, what start-up needs
// from this machine), or its notes, then one simulation per URL (from
// the arguments or, unless it is a terminal, stdin); the exit status.
func dryRun(o *options, cfg *xmlconf.Config, loadErr error, opts engine.Options, urls []string, stdin io.Reader, stdout, stderr io.Writer) int {
	system := len(urls) == 0
	var sysErr error
	if system {
		sysErr = server.CheckSystem(cfg, true)
	}
	dr, err := dryrun.New(cfg, opts)
	if err = xmlconf.Join(loadErr, err, sysErr); err != nil {
		if dr != nil {
			dr.Close()
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	defer dr.Close()
	notes := stdout
	if o.json {
		notes = stderr
	}
	if system {
		fmt.Fprintf(notes, "config %s: ok (%d hosts; certificates, log files, command pipe, user and group checked)\n", cfg.File, len(cfg.Hosts))
	} else {
		fmt.Fprintf(notes, "config %s: ok (%d hosts)\n", cfg.File, len(cfg.Hosts))
	}
	for _, n := range cfg.Notes {
		fmt.Fprintf(notes, "note: %s: <%s>: accepted; %s\n", n.Pos, n.Option, n.Reason)
	}
	if o.checkOcsigen != 0 {
		later, err := compat.Check(cfg, o.checkOcsigen)
		if err != nil {
			fmt.Fprintf(stderr, "ocsiproxy: %v\n", err)
			return 2
		}
		for _, n := range later {
			fmt.Fprintf(notes, "note: %s\n", n)
		}
		if len(later) == 0 {
			fmt.Fprintf(notes, "ocsigen %d.0: nothing found that behaves differently than on 5.0.1\n", o.checkOcsigen)
		}
	}
	for _, l := range dr.PoolLines() {
		fmt.Fprintf(notes, "%s\n", l)
	}
	if len(urls) == 0 && stdin != nil && !isTerminal(stdin) {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if u := strings.TrimSpace(sc.Text()); u != "" && !strings.HasPrefix(u, "#") {
				urls = append(urls, u)
			}
		}
	}
	status := 0
	enc := json.NewEncoder(stdout)
	for _, u := range urls {
		res, err := dr.Run(dryrun.Request{URL: u, Method: o.method, Headers: o.headers, From: o.from, HTTPS: o.https})
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			status = 1
			continue
		}
		if o.json {
			enc.Encode(res)
		} else {
			res.WriteText(stdout)
		}
	}
	return status
}

// isTerminal reports whether r is a terminal (a character device), from
// which --dry-run reads no URLs.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// versionLine is what --version prints: the version (version, or else
// the module version of bi), then the VCS revision, its time and
// "modified" when the work tree had changes, and the Go version, as bi
// (nil when the binary has none) records them:
// "ocsiproxy (devel) revision 7fe57bc9a1d2 2026-12-05T13:55:00Z modified go1.26.8".
func versionLine(version string, bi *debug.BuildInfo) string {
	if bi == nil {
		if version == "" {
			version = "unknown"
		}
		return "ocsiproxy " + version + " (no build information)"
	}
	if version == "" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "unknown"
	}
	line := "ocsiproxy " + version
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		line += " revision unknown"
	} else {
		line += " revision " + rev
	}
	if at != "" {
		line += " " + at
	}
	if modified {
		line += " modified"
	}
	if bi.GoVersion != "" {
		line += " " + bi.GoVersion
	}
	return line
}
