package server

import (
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"syscall"

	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// CheckConfig compiles cfg as [New] does, with its backend pool and
// admin settings, and returns every problem found, each
// "file:line:col: message"; nil when there is none. Nothing is kept and
// nothing is opened.
func CheckConfig(cfg *xmlconf.Config, opts engine.Options) error {
	tree, _, err := compileTree(cfg, opts, nil)
	if err != nil {
		return err
	}
	if c, ok := tree.Env().Transport.(io.Closer); ok {
		c.Close()
	}
	return nil
}

// CheckSystem checks what starting cfg needs from this machine, short of
// opening the listeners, and returns every problem found as an
// [xmlconf.ErrorList] ("file:line:col: message", at the element
// concerned); nil when there is none:
//   - the <ssl> certificate and private key of the HTTPS <port>s load,
//     and the key matches the certificate;
//   - the log files of <logdir> (access.log, errors.log, warnings.log)
//     can be opened for writing (not checked with <syslog>, which
//     replaces them);
//   - the <commandpipe> is a named pipe, or can be created;
//   - when users is set, the <user> and <group> exist (start-up looks
//     them up only in a process started as root, which then switches
//     to them).
//
// Nothing is created or modified.
func CheckSystem(cfg *xmlconf.Config, users bool) error {
	var errs xmlconf.ErrorList
	for _, p := range cfg.Ports {
		if !p.HTTPS {
			continue
		}
		if cfg.SSL == nil {
			errs.Add(p.Pos, `<port>: protocol="HTTPS" needs <ssl><certificate> and <privatekey>`)
		} else if _, err := tls.LoadX509KeyPair(cfg.SSL.Certificate, cfg.SSL.PrivateKey); err != nil {
			errs.Add(cfg.SSL.Pos, "<ssl>: %v", err)
		}
		break
	}
	if cfg.LogDir != "" && !cfg.Syslog {
		checkLogDir(&errs, cfg.LogDir, cfg.LogDirPos)
	}
	if cfg.CommandPipe != "" {
		checkCommandPipe(&errs, cfg.CommandPipe, cfg.CommandPipePos)
	}
	if users && cfg.User != "" {
		if _, err := user.Lookup(cfg.User); err != nil {
			errs.Add(cfg.UserPos, "<user>: %v", err)
		}
	}
	if users && cfg.Group != "" {
		if _, err := user.LookupGroup(cfg.Group); err != nil {
			errs.Add(cfg.GroupPos, "<group>: %v", err)
		}
	}
	return errs.Err()
}

// The modes of access(2).
const (
	rOK = 4
	wOK = 2
	xOK = 1
)

// logFiles are the files of <logdir>.
var logFiles = []string{"access.log", "errors.log", "warnings.log"}

// checkLogDir reports, into errs, a log directory that does not exist and
// log files that cannot be opened for writing.
func checkLogDir(errs *xmlconf.ErrorList, dir string, pos xmlconf.Pos) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		errs.Add(pos, "<logdir>: %v", err)
		return
	case !fi.IsDir():
		errs.Add(pos, "<logdir>: %s is not a directory", dir)
		return
	}
	for _, name := range logFiles {
		path := filepath.Join(dir, name)
		target, mode := path, uint32(wOK)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			target, mode = dir, wOK|xOK // to create it
		}
		if err := syscall.Access(target, mode); err != nil {
			errs.Add(pos, "<logdir>: cannot open %s for writing: %v", path, err)
		}
	}
}

// checkCommandPipe reports, into errs, a command pipe path that exists
// and is not a named pipe the process can read and write, or that does
// not exist and cannot be created.
func checkCommandPipe(errs *xmlconf.ErrorList, path string, pos xmlconf.Pos) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if err := syscall.Access(dir, wOK|xOK); err != nil {
			errs.Add(pos, "<commandpipe>: cannot create %s: %s: %v", path, dir, err)
		}
	case err != nil:
		errs.Add(pos, "<commandpipe>: %v", err)
	case fi.Mode()&fs.ModeNamedPipe == 0:
		errs.Add(pos, "<commandpipe>: %s exists and is not a named pipe", path)
	default:
		if err := syscall.Access(path, rOK|wOK); err != nil {
			errs.Add(pos, "<commandpipe>: cannot open %s for reading and writing: %v", path, err)
		}
	}
}
