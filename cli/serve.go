package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/internal/gctune"
	"github.com/ocsiproxy/ocsiproxy/server"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// serve runs the server of cfg (loadErr is the error of reading it)
// until SIGTERM, SIGINT or a "shutdown" command.
// SIGHUP and the "reload" command reload the configuration, and so does
// a change of its files with --watch; SIGUSR1 and
// "reopen_logs" reopen the log files. ready is called once every
// listener serves.
func serve(o *options, cfg *xmlconf.Config, loadErr error, opts engine.Options, stdout, stderr io.Writer, ready func()) int {
	// What start-up needs from this machine is checked first, so that
	// each problem is reported at its element, with the others; <user>
	// and <group> matter only to a process started as root.
	if sysErr := server.CheckSystem(cfg, os.Getuid() == 0); loadErr != nil || sysErr != nil {
		return startFailed(o, cfg, nil, stderr, xmlconf.Join(loadErr, server.CheckConfig(cfg, opts), sysErr))
	}
	logs, err := openLogs(o, cfg, stdout, stderr)
	if err != nil {
		return startFailed(o, cfg, nil, stderr, err)
	}
	defer logs.Close()
	headroom, err := gctune.Headroom()
	if err != nil {
		return startFailed(o, cfg, logs, stderr, fmt.Errorf("ocsiproxy: %w", err))
	}
	srv, err := server.New(cfg, logs, opts)
	if err != nil {
		return startFailed(o, cfg, logs, stderr, err)
	}
	if err := srv.Listen(); err != nil {
		return startFailed(o, cfg, logs, stderr, fmt.Errorf("ocsiproxy: %w", err))
	}
	if err := srv.DropPrivileges(); err != nil {
		return startFailed(o, cfg, logs, stderr, fmt.Errorf("ocsiproxy: %w", err))
	}
	// The collector's pace follows the garbage (headroom 0: adapted)
	// or the operator's headroom, and a quiet process gives its garbage
	// back (an info line each time); see internal/gctune (GOGC in the
	// environment turns this off).
	tuner := gctune.Start(headroom)
	defer tuner.Stop()
	tuner.SetEventLog(logs.Infof)
	if o.pidfile != "" {
		if err := os.WriteFile(o.pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return startFailed(o, cfg, logs, stderr, fmt.Errorf("ocsiproxy: writing pid file: %w", err))
		}
		defer os.Remove(o.pidfile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := &controller{srv: srv, logs: logs}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(hup)
	go func() {
		for sig := range hup {
			if sig == syscall.SIGHUP {
				c.run("reload")
			} else {
				c.run("reopen_logs")
			}
		}
	}()
	if cfg.CommandPipe != "" {
		cleanup, err := c.listenPipe(ctx, cfg.CommandPipe)
		if err != nil {
			return startFailed(o, cfg, logs, stderr, fmt.Errorf("ocsiproxy: %w", err))
		}
		defer cleanup()
		logs.Infof("reading commands from %s", cfg.CommandPipe)
	}
	if o.watch {
		go srv.Watch(ctx, server.DefaultWatchInterval)
		logs.Infof("watching %s and its <extconf> directories", cfg.File)
	}
	srv.OnReady = func() {
		if !o.silent {
			fmt.Fprintf(stderr, "%s\n", listeningLine(srv))
		}
		ready()
	}
	if err := srv.Serve(ctx); err != nil {
		logs.Errorf("%v", err)
		return 1
	}
	return 0
}

// listeningLine is the line saying where srv listens, written to stderr
// once it serves: "ocsiproxy: listening on 127.0.0.1:8080, [::1]:8080;
// admin on 127.0.0.1:9090".
func listeningLine(srv *server.Server) string {
	var b strings.Builder
	b.WriteString("ocsiproxy: listening on ")
	for i, a := range srv.Addrs() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	if a := srv.AdminAddr(); a != nil {
		b.WriteString("; admin on " + a.String())
	}
	return b.String()
}

// openLogs opens the logs of cfg at the verbosity of o: syslog with
// <syslog> (which, as in Ocsigen, wins over <logdir>: no file is
// written), else the files of <logdir>, else stdout and stderr.
func openLogs(o *options, cfg *xmlconf.Config, stdout, stderr io.Writer) (*accesslog.Logs, error) {
	if cfg.Syslog {
		return accesslog.OpenSyslog(cfg, "", "", level(o), stderr) // file:line:col: <syslog>: ...
	}
	logs, err := accesslog.OpenLogs(cfg.LogDir, level(o), stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("ocsiproxy: %w", err)
	}
	return logs, nil
}

// startFailed reports err, which stops the start, and returns the exit
// status 1. With <logdir> or <syslog>, each line of err goes to the
// error log (logs, opened here when nil and it can be); it goes to stderr
// too, unless -s asked for silence and the error log took it.
func startFailed(o *options, cfg *xmlconf.Config, logs *accesslog.Logs, stderr io.Writer, err error) int {
	toLog := cfg.Syslog || cfg.LogDir != ""
	if toLog && logs == nil {
		l, lerr := openLogs(o, cfg, io.Discard, io.Discard)
		if lerr == nil {
			logs = l
			defer l.Close()
		} else {
			toLog = false
		}
	}
	if toLog {
		for _, line := range strings.Split(err.Error(), "\n") {
			logs.Errorf("%s", line)
		}
	}
	if !o.silent || !toLog {
		fmt.Fprintf(stderr, "%v\n", err)
	}
	return 1
}

// controller carries out the commands of the command pipe and of signals.
type controller struct {
	srv  *server.Server
	logs *accesslog.Logs
}

// run carries out one command line: "reload [file]", "shutdown
// [seconds|notimeout]" or "reopen_logs", as Ocsigen's command pipe
// accepts them. It returns an error for an unknown or malformed command.
func (c *controller) run(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	var err error
	switch {
	case f[0] == "reload" && len(f) <= 2:
		file := ""
		if len(f) == 2 {
			file = f[1]
		}
		// A refused reload is written to the error log by Reload.
		return c.srv.Reload(file)
	case f[0] == "shutdown" && len(f) <= 2:
		timeout := time.Duration(-2)
		if len(f) == 2 {
			if f[1] == "notimeout" {
				timeout = -1
			} else if secs, perr := strconv.ParseFloat(f[1], 64); perr == nil && secs >= 0 {
				timeout = time.Duration(secs * float64(time.Second))
			} else {
				err = fmt.Errorf("command %q: want seconds or notimeout", line)
				break
			}
		}
		if timeout == -2 {
			timeout = c.srv.ShutdownTimeout()
		}
		c.logs.Infof("shutting down (command %q)", line)
		c.srv.Stop(timeout)
	case f[0] == "reopen_logs" && len(f) == 1:
		if err = c.logs.Reopen(); err == nil {
			c.logs.Infof("logs reopened")
		}
	default:
		err = fmt.Errorf("unknown command %q (want reload [file], shutdown [seconds|notimeout] or reopen_logs)", line)
	}
	if err != nil {
		c.logs.Errorf("%v", err)
	}
	return err
}

// listenPipe creates the command pipe (a FIFO) when it does not exist and
// runs every line written to it. The returned function removes a pipe it
// created.
func (c *controller) listenPipe(ctx context.Context, path string) (func(), error) {
	created := false
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := syscall.Mkfifo(path, 0o660); err != nil {
			return nil, fmt.Errorf("creating command pipe %s: %w", path, err)
		}
		created = true
	} else if err != nil {
		return nil, fmt.Errorf("command pipe %s: %w", path, err)
	} else if fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("command pipe %s exists and is not a named pipe", path)
	}
	// Opened for writing too, so that the reader never sees end of file
	// when a writer closes.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening command pipe %s: %w", path, err)
	}
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			c.run(sc.Text())
		}
	}()
	return func() {
		f.Close()
		if created {
			os.Remove(path)
		}
	}, nil
}
