package server

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Reload loads the configuration file path (the current one when path is
// "") and, when it is correct, swaps it in atomically: requests in flight
// finish with the configuration they started with. When it is not, the
// old configuration keeps serving and the error, with every position, is
// returned. Listening ports, the log directory, <syslog> and the user do
// not change on reload; a change of them is reported as a warning.
func (s *Server) Reload(path string) (err error) {
	if path == "" {
		path = s.cfg.File
	}
	defer func() { s.Metrics.reloaded(err) }()
	notify("RELOADING=1")
	defer notify("READY=1")
	cfg, err := xmlconf.Load(path)
	if err != nil {
		return fmt.Errorf("server: reload of %s failed, old configuration kept:\n%w", path, err)
	}
	tree, err := compileTree(cfg, s.opts, s.Logs)
	if err != nil {
		return fmt.Errorf("server: reload of %s failed, old configuration kept:\n%w", path, err)
	}
	for _, w := range cfg.Warnings {
		s.Logs.Warnf("%s", w)
	}
	if !samePorts(cfg.Ports, s.cfg.Ports) || !sameAdmin(tree.admin, s.Handler.Tree().admin) {
		s.Logs.Warnf("reload: <port> and admin <listen> changes take effect at the next restart")
	}
	if cfg.LogDir != s.cfg.LogDir || cfg.User != s.cfg.User || cfg.Group != s.cfg.Group {
		s.Logs.Warnf("reload: <logdir>, <user> and <group> changes take effect at the next restart")
	}
	if cfg.Syslog != s.cfg.Syslog || cfg.SyslogFacility != s.cfg.SyslogFacility {
		s.Logs.Warnf("reload: <syslog> changes take effect at the next restart")
	}
	if changed := connectionOptionsChanged(cfg, s.cfg); changed != "" {
		s.Logs.Warnf("reload: %s: changes of the connection options take effect at the next restart", changed)
	}
	old := s.Handler.Tree()
	s.Handler.Swap(tree)
	s.Handler.SetLimits(cfg)
	s.shutdownTimeout.Store(int64(cfg.ShutdownTimeout))
	if t, ok := old.env.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	s.Logs.Infof("reloaded %s", path)
	return nil
}

// connectionOptionsChanged names the options of next that differ from
// cur and that the listeners read once, at start: the bounds of client
// connections (<timeout> still applies at once to request bodies and
// backend waits, which read it per request).
func connectionOptionsChanged(next, cur *xmlconf.Config) string {
	var names []string
	if next.Timeout != cur.Timeout {
		names = append(names, "<timeout> (request heads, sends to clients)")
	}
	if next.KeepAliveTimeout != cur.KeepAliveTimeout {
		names = append(names, "<keepalivetimeout>")
	}
	if next.MaxConnected != cur.MaxConnected {
		names = append(names, "<maxconnected>")
	}
	if next.NetBufferSize != cur.NetBufferSize {
		names = append(names, "<netbuffersize>")
	}
	return strings.Join(names, ", ")
}

func samePorts(a, b []xmlconf.Port) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || a[i].HTTPS != b[i].HTTPS {
			return false
		}
	}
	return true
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

func sameAdmin(a, b *AdminConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Addr == b.Addr
}
