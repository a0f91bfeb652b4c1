package server

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestCheckSystem checks that what start-up needs from the machine is
// reported, every problem at once, at its element.
func TestCheckSystem(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	_, otherKey, _ := selfSigned(t, other)
	logdir := filepath.Join(dir, "log")
	os.Mkdir(logdir, 0o755)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	ssl := func(c, k string) string {
		return "<ssl><certificate>" + c + "</certificate><privatekey>" + k + "</privatekey></ssl>"
	}
	cases := []struct {
		name   string
		server string // children of <server>, from line 2
		users  bool
		// want lists the messages, each "line:col: text" (a prefix of
		// the message after the file name); none means no error.
		want []string
	}{
		{"all good", "<port protocol=\"HTTPS\">127.0.0.1:0</port>\n" + ssl(cert, key) + "\n<logdir>" + logdir + "</logdir>\n<commandpipe>" + fifo + "</commandpipe>\n<user>root</user><group>root</group>",
			true, nil},
		{"new command pipe", "<port>127.0.0.1:0</port>\n<commandpipe>" + filepath.Join(dir, "new") + "</commandpipe>", false, nil},
		{"missing certificate", "<port protocol=\"HTTPS\">127.0.0.1:0</port>\n" + ssl(missing+".pem", key), false,
			[]string{"3:1: <ssl>: open " + missing + ".pem: no such file or directory"}},
		{"key does not match", "<port protocol=\"HTTPS\">127.0.0.1:0</port>\n" + ssl(cert, otherKey), false,
			[]string{"3:1: <ssl>: tls: private key does not match public key"}},
		{"https without ssl", "<port protocol=\"HTTPS\">127.0.0.1:0</port>", false,
			[]string{`2:1: <port>: protocol="HTTPS" needs <ssl><certificate> and <privatekey>`}},
		{"ssl unused by http ports", "<port>127.0.0.1:0</port>\n" + ssl(missing, missing), false, nil},
		{"everything at once", "<port protocol=\"HTTPS\">127.0.0.1:0</port>\n" + ssl(missing, key) +
			"\n<logdir>" + missing + "</logdir>\n<commandpipe>" + filepath.Join(missing, "cmd") + "</commandpipe>\n<user>no-such-user-ocsiproxy</user>\n<group>no-such-group-ocsiproxy</group>",
			true, []string{
				"3:1: <ssl>: open " + missing + ": no such file or directory",
				"4:1: <logdir>: stat " + missing + ": no such file or directory",
				"5:1: <commandpipe>: cannot create " + filepath.Join(missing, "cmd") + ": " + missing + ": no such file or directory",
				"6:1: <user>: user: unknown user no-such-user-ocsiproxy",
				"7:1: <group>: group: unknown group no-such-group-ocsiproxy",
			}},
		{"users not checked", "<port>127.0.0.1:0</port>\n<user>no-such-user-ocsiproxy</user>", false, nil},
		{"logdir is a file", "<port>127.0.0.1:0</port>\n<logdir>" + notDir + "</logdir>", false,
			[]string{"3:1: <logdir>: " + notDir + " is not a directory"}},
		{"logdir with syslog", "<port>127.0.0.1:0</port>\n<logdir>" + missing + "</logdir><syslog>daemon</syslog>", false, nil},
		{"command pipe not a pipe", "<port>127.0.0.1:0</port>\n<commandpipe>" + notDir + "</commandpipe>", false,
			[]string{"3:1: <commandpipe>: " + notDir + " exists and is not a named pipe"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := xmlconf.Parse("c.conf", []byte("<ocsigen><server>\n"+tc.server+"\n</server></ocsigen>"))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckSystem(cfg, tc.users)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], "c.conf:"+w) {
					t.Errorf("problem %d: got %q, want it to start with %q", i, lines[i], "c.conf:"+w)
				}
			}
		})
	}
}
