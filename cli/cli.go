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
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Version is the program's version, set at build time with
// -ldflags "-X github.com/ocsiproxy/ocsiproxy/cli.Version=...".
var Version = "0.1.0-dev"

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
	fs.BoolVarP(&o.daemon, "daemon", "d", false, "daemon mode (detach the process)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "check the config, then show what would happen to each URL argument (or stdin line) without serving")
	fs.BoolVar(&o.json, "json", false, "with --dry-run: one JSON object per URL")
	fs.StringVar(&o.method, "method", "GET", "with --dry-run: the request `method`")
	fs.StringArrayVar(&o.headers, "header", nil, "with --dry-run: a request header `'Name: value'` (repeatable)")
	fs.StringVar(&o.from, "from", "127.0.0.1", "with --dry-run: the client (peer) `address`")
	fs.BoolVar(&o.https, "https", false, "with --dry-run: the request arrives over TLS")
	fs.DurationVar(&o.matchTimeout, "match-timeout", pattern.DefaultMatchTimeout, "time limit of one regexp match; a request whose match runs longer gets 500")
	fs.StringVar(&o.reverseProxy, "reverse-proxy", "", "serve everything to `URL` (http[s]://host[:port][/path]) with no config file, as <revproxy suburl=\"(.*)\" dest=\"URL/\\1\"/>")
	fs.StringVar(&o.port, "port", "8080", "with --reverse-proxy: the `port` listened on, as <port> takes it (8080, 127.0.0.1:8080, [::1]:8080)")
	return fs
}

// Run runs the command line args and returns the exit status: 0 on
// success, 1 when the configuration is wrong or the server fails, 2 for a
// bad command line.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o options
	fs := flags(&o, stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: ocsiproxy [-c configfile] [options] [--dry-run [URL...]]\n       ocsiproxy --reverse-proxy URL [--port N] [options] [--dry-run [URL...]]\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ocsiproxy: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(stdout, "ocsiproxy %s\n", Version)
		return 0
	}
	if !o.dryRun && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ocsiproxy: unexpected arguments %q (URLs are for --dry-run)\n", fs.Args())
		return 2
	}
	var cfg *xmlconf.Config
	var err error
	switch {
	case o.reverseProxy != "" && fs.Changed("config"):
		fmt.Fprintf(stderr, "ocsiproxy: --reverse-proxy and -c/--config exclude each other\n")
		return 2
	case o.reverseProxy == "" && fs.Changed("port"):
		fmt.Fprintf(stderr, "ocsiproxy: --port goes with --reverse-proxy\n")
		return 2
	case o.reverseProxy != "":
		if cfg, err = xmlconf.ReverseProxy(o.reverseProxy, o.port); err != nil {
			var list xmlconf.ErrorList
			errors.As(err, &list)
			for _, e := range list {
				fmt.Fprintf(stderr, "ocsiproxy: %s\n", e.Msg)
			}
			return 2
		}
	default:
		if cfg, err = xmlconf.Load(o.config); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	opts := engine.Options{MatchTimeout: o.matchTimeout}
	if o.dryRun {
		return dryRun(&o, cfg, opts, fs.Args(), stdin, stdout, stderr)
	}
	if o.daemon {
		return daemonize(args, stderr)
	}
	return serve(&o, cfg, opts, stdout, stderr)
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

// daemonize starts the same command without -d, detached in its own
// session, and returns at once, as ocsigenserver -d does.
func daemonize(args []string, stderr io.Writer) int {
	var rest []string
	for _, a := range args {
		if a != "-d" && a != "--daemon" {
			rest = append(rest, a)
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "ocsiproxy: daemon: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, rest...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "ocsiproxy: daemon: %v\n", err)
		return 1
	}
	return 0
}

// dryRun runs --dry-run: the configuration's notes, then one
// simulation per URL (from the arguments or stdin); the exit status.
func dryRun(o *options, cfg *xmlconf.Config, opts engine.Options, urls []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dr, err := dryrun.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	defer dr.Close()
	notes := stdout
	if o.json {
		notes = stderr
	}
	fmt.Fprintf(notes, "config %s: ok (%d hosts)\n", cfg.File, len(cfg.Hosts))
	for _, n := range cfg.Notes {
		fmt.Fprintf(notes, "note: %s: <%s>: accepted; %s\n", n.Pos, n.Option, n.Reason)
	}
	for _, l := range dr.PoolLines() {
		fmt.Fprintf(notes, "%s\n", l)
	}
	if len(urls) == 0 && stdin != nil {
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
