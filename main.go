// Command ocsiproxy is a reverse proxy that reads an Ocsigen Server XML
// configuration file and serves it the way Ocsigen Server's revproxy,
// redirectmod, rewritemod, outputfilter and accesscontrol extensions do,
// without their bugs.
//
// Usage:
//
//	ocsiproxy [-c FILE] [-s | -v | -vv | -vvv] [-p PIDFILE] [-d]
//	ocsiproxy -c FILE --dry-run [--json] [--method M] [--header 'N: v']... [--from IP] [--https] [URL...]
package main

import (
	"os"

	"github.com/ocsiproxy/ocsiproxy/cli"
	"github.com/ocsiproxy/ocsiproxy/internal/schedtune"
)

func main() {
	if cli.Serves(os.Args[1:]) {
		// First of all: the server starts again, with the runtime's
		// monitor thread kept out of its deep sleep (internal/schedtune).
		// The commands that only print (--dry-run, --version) are left
		// as they are: the setting could add a line to their output.
		schedtune.Apply()
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
