package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Reload loads the configuration file path (the current one when path is
// "") and, when it is correct, swaps it in atomically: requests in flight
// finish with the configuration they started with. When it is not, the
// old configuration keeps serving and the error, with every position, is
// returned and written to the error log, whichever path asked for the
// reload (SIGHUP, the command pipe, the admin API).
//
// The servers of the groups keep their state (passive and active health,
// drain, counters, resolved addresses) when they are in a group of the
// same name with the same scheme, host and port (see
// [pool.Pool.Inherit]); the active health checks and lookups of the old
// configuration's groups stop, and those of the new one start.
//
// A reload also applies the connection options (<timeout> for request
// heads and sends, <keepalivetimeout>, <netbuffersize>, <maxconnected>)
// to the connections accepted from then on; those already open keep the
// bounds they were accepted with, and lowering <maxconnected> closes
// none. It opens the <port>s and admin listener the new configuration
// adds before it closes those it drops, whose connections end as in a
// graceful shutdown; an unchanged address keeps its listener. When a new
// listener cannot be opened, or the <ssl> certificate of an HTTPS port
// cannot be loaded, the reload fails with the element's position and the
// reason, and every listener stays as it was. HTTPS ports take the
// certificate files anew at each reload. The log directory, <syslog>,
// <user> and <group> do not change on reload; a change of them is
// reported as a warning.
func (s *Server) Reload(path string) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		path = s.cfg.File
	}
	defer func() {
		s.Metrics.Reloaded(err)
		if err != nil {
			s.Logs.Errorf("%v", err)
		}
	}()
	if path == xmlconf.ReverseProxyFile {
		return fmt.Errorf("server: nothing to reload: --reverse-proxy has no configuration file")
	}
	if s.stopped {
		return fmt.Errorf("server: reload of %s refused: the server is shutting down", path)
	}
	notify("RELOADING=1")
	defer notify("READY=1")
	cfg, err := xmlconf.Load(path)
	if err != nil {
		if cfg != nil {
			// Every problem at once: those of compiling what was read too.
			err = xmlconf.Join(err, CheckConfig(cfg, s.opts))
		}
		return fmt.Errorf("server: reload of %s failed, old configuration kept:\n%w", path, err)
	}
	tree, adm, err := compileTree(cfg, s.opts, s.Logs)
	if err != nil {
		return fmt.Errorf("server: reload of %s failed, old configuration kept:\n%w", path, err)
	}
	pl, err := s.planListeners(cfg, adm)
	if err != nil {
		if c, ok := tree.Env().Transport.(io.Closer); ok {
			c.Close()
		}
		return fmt.Errorf("server: reload of %s failed, old configuration and listeners kept:\n%w", path, err)
	}
	for _, w := range cfg.Warnings {
		s.Logs.Warnf("%s", w)
	}
	if cfg.LogDir != s.cfg.LogDir || cfg.User != s.cfg.User || cfg.Group != s.cfg.Group {
		s.Logs.Warnf("reload: <logdir>, <user> and <group> changes take effect at the next restart")
	}
	if cfg.Syslog != s.cfg.Syslog || cfg.SyslogFacility != s.cfg.SyslogFacility {
		s.Logs.Warnf("reload: <syslog> changes take effect at the next restart")
	}
	old := s.Handler.Tree()
	if np, ok := tree.Env().Transport.(*pool.Pool); ok {
		op, _ := old.Env().Transport.(*pool.Pool)
		np.Inherit(op)
	}
	s.Handler.Swap(tree)
	s.adminCfg = adm
	s.Handler.SetLimits(cfg)
	s.shutdownTimeout.Store(int64(cfg.ShutdownTimeout))
	s.h1.SetOptions(connOptionsOf(cfg))
	s.slots.setMax(cfg.MaxConnected)
	s.applyListeners(pl, cfg)
	if p, ok := tree.Env().Transport.(*pool.Pool); ok {
		p.StartBackground()
	}
	if p, ok := old.Env().Transport.(*pool.Pool); ok {
		// The old pool serves its requests in flight to their end, but
		// probes no more.
		p.StopBackground()
	}
	if t, ok := old.Env().Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	s.Logs.Infof("reloaded %s", path)
	return nil
}

// DropPrivileges switches to the <user> and <group> of the configuration
// when the process runs as root, after the ports are open, as Ocsigen
// does. It does nothing for a process that is not root.
func (s *Server) DropPrivileges() error {
	if os.Getuid() != 0 || (s.cfg.User == "" && s.cfg.Group == "") {
		return nil
	}
	gid, uid := -1, -1
	if s.cfg.Group != "" {
		g, err := user.LookupGroup(s.cfg.Group)
		if err != nil {
			return fmt.Errorf("server: <group>: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if s.cfg.User != "" {
		u, err := user.Lookup(s.cfg.User)
		if err != nil {
			return fmt.Errorf("server: <user>: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		if gid < 0 {
			gid, _ = strconv.Atoi(u.Gid)
		}
	}
	if gid >= 0 {
		if err := syscall.Setgroups([]int{gid}); err != nil {
			return fmt.Errorf("server: setgroups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("server: setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("server: setuid %d: %w", uid, err)
		}
	}
	return nil
}

// notify sends a state line to systemd when the process runs as a
// Type=notify service (NOTIFY_SOCKET is set); otherwise it does nothing.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}
