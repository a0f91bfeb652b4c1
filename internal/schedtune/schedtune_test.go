package schedtune

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestWithSetting(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		add      bool
	}{
		{"", setting, true},
		{"gctrace=1", "gctrace=1," + setting, true},
		{"schedtrace=0", "schedtrace=0", false},
		{"gctrace=1, schedtrace=1000", "gctrace=1, schedtrace=1000", false},
		{"schedtracex=1", "schedtracex=1," + setting, true},
		{"scheddetail=1", "scheddetail=1," + setting, true},
	} {
		got, add := withSetting(tt.in)
		if got != tt.want || add != tt.add {
			t.Errorf("withSetting(%q) = %q, %v; want %q, %v", tt.in, got, add, tt.want, tt.add)
		}
	}
}

func TestEnviron(t *testing.T) {
	got := environ([]string{"A=1", "GODEBUG=x=1", "B=2", "GODEBUGX=3"}, "x=1,"+setting)
	want := []string{"A=1", "B=2", "GODEBUGX=3", "GODEBUG=x=1," + setting}
	if !slices.Equal(got, want) {
		t.Errorf("environ = %q, want %q", got, want)
	}
}

// TestApply runs this test binary as a child that calls Apply: it starts
// again in the same process (same PID) with the setting in GODEBUG, and
// then runs once; a child whose GODEBUG sets schedtrace is not started
// again.
func TestApply(t *testing.T) {
	if os.Getenv("SCHEDTUNE_CHILD") == "1" {
		Apply()
		// Only the program started again (or left alone) gets here.
		os.Stdout.WriteString("pid=" + strconv.Itoa(os.Getpid()) + " godebug=" + os.Getenv("GODEBUG") + " args=" + strings.Join(os.Args[1:], " ") + "\n")
		os.Exit(0)
	}
	for _, tt := range []struct {
		godebug, want string
	}{
		{"gctrace=0", "gctrace=0," + setting},
		{"schedtrace=0", "schedtrace=0"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestApply$", "-test.v=false")
		cmd.Env = append(environ(os.Environ(), tt.godebug), "SCHEDTUNE_CHILD=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		want := "pid=" + strconv.Itoa(cmd.Process.Pid) + " godebug=" + tt.want + " args=-test.run=^TestApply$ -test.v=false\n"
		if string(out) != want {
			t.Errorf("GODEBUG=%s: child wrote %q, want %q", tt.godebug, out, want)
		}
	}
}
