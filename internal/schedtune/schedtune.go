// Package schedtune keeps the Go runtime's monitor thread (sysmon) out of
// its deep sleep, which costs a proxy more than it saves.
//
// Sysmon watches the scheduler: it preempts long-running goroutines and
// takes the P of a goroutine blocked in a system call. When every P is
// idle it sleeps until the next timer, and the first system call after
// that wakes it (a futex wake-up); it then checks every 20 us for a
// millisecond before it backs off to every 10 ms. A proxy's P is idle for
// a moment between most requests when the load is light, and whenever
// the backend runs on the same core, so sysmon goes through that cycle
// hundreds of times a second: each wake-up and each 20 us sleep is a
// context switch on a core the proxy needs. Measured on the suite's rig
// (bench/, PIN=split), at 64 connections: 0.12 of those sleeps per
// request against none without the deep sleep, and 0.25 context
// switches of the process per request against 0.13 (nginx's 0.14); CPU
// per request lower in 11 of 12 interleaved rounds (by 2-34%, the most
// when the host was busy; one round 11% higher). At one connection: 1.9
// sleeps and 1.7 futex calls per request, against 0.05 and none; CPU per
// request lower in 9 of 9 rounds (by 7-35%).
//
// The runtime keeps sysmon awake only while a scheduler trace is on
// (GODEBUG=schedtrace=X), and reads GODEBUG's schedtrace only at start.
// [Apply] therefore starts the program again, in the same process (exec),
// when main is about to serve (not for the commands that only print),
// with schedtrace set to its largest period, 2^31-1 ms (24.8 days): the
// trace line that comes with it is due once the clock it is read from
// (CLOCK_MONOTONIC: the time since the host booted) passes that period,
// so on a host up for more than 24.8 days one line "SCHED ..." is
// written to standard error at start, and then every 24.8 days. An idle
// process then wakes every 10 ms rather than sleeping until its next
// timer (on the rig: 98 context switches a second and 0.2% of a core,
// against none). GODEBUG=schedtrace=0 in the environment keeps Go's
// default (Apply leaves any schedtrace setting as it is).
package schedtune

import (
	"os"
	"strings"
)

// setting is the GODEBUG setting Apply adds: a scheduler trace every
// 2^31-1 ms, the largest period the runtime takes.
const setting = "schedtrace=2147483647"

// withSetting returns the GODEBUG value godebug with setting added, and
// false when godebug already sets schedtrace (the user's choice stands).
func withSetting(godebug string) (string, bool) {
	for kv := range strings.SplitSeq(godebug, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(kv), "="); k == "schedtrace" {
			return godebug, false
		}
	}
	if godebug == "" {
		return setting, true
	}
	return godebug + "," + setting, true
}

// environ returns env with GODEBUG's value replaced by godebug (added
// when absent).
func environ(env []string, godebug string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	return append(out, "GODEBUG="+godebug)
}

// Apply starts the program again with the setting in GODEBUG, unless
// GODEBUG sets schedtrace already (as it does in the program started
// again). It returns only when it does not start it again, or could not
// (the program then runs with Go's default).
func Apply() {
	godebug, add := withSetting(os.Getenv("GODEBUG"))
	if !add {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	reexec(self, os.Args, environ(os.Environ(), godebug))
}
