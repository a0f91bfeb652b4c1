package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server the suite started, in a process group of its own.
type proc struct {
	name string
	cmd  *exec.Cmd
	pgid int
	log  string
	done chan struct{}
}

// procs are the servers running; stopAll ends them.
var procs struct {
	sync.Mutex
	list []*proc
}

// start runs argv pinned to cpus ("" for no pinning) in a new process
// group, its output in logFile.
func start(name, cpus, logFile string, env []string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pgid: cmd.Process.Pid, log: logFile, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		out.Close()
		close(p.done)
	}()
	procs.Lock()
	procs.list = append(procs.list, p)
	procs.Unlock()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.pgid, syscall.SIGKILL)
		<-p.done
	}
	// Workers of a group whose leader is gone (nginx) get the same.
	syscall.Kill(-p.pgid, syscall.SIGKILL)
}

func stopAll() {
	procs.Lock()
	list := procs.list
	procs.list = nil
	procs.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// tail returns the last lines of the process's output.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// usage is the CPU time and resident memory of a process group.
type usage struct {
	cpu   time.Duration // user + system
	user  time.Duration
	rss   int64 // bytes, summed over the group's processes
	procs int
}

var (
	clkTck   = int64(100) // USER_HZ: 100 on Linux
	pageSize = int64(os.Getpagesize())
)

// groupUsage sums /proc/PID/stat over the processes of group pgid.
func groupUsage(pgid int) usage {
	var u usage
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// The fields after "(comm)": state ppid pgrp ... (man 5 proc).
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 22 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		rss, _ := strconv.ParseInt(f[21], 10, 64)
		u.cpu += time.Duration(ut+st) * time.Second / time.Duration(clkTck)
		u.user += time.Duration(ut) * time.Second / time.Duration(clkTck)
		u.rss += rss * pageSize
		u.procs++
	}
	return u
}

// sysCPU reads the busy time of all CPUs (everything but idle and
// iowait) and the steal time, from /proc/stat.
func sysCPU() (busy, steal time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var total, idle, st int64
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		switch i {
		case 3, 4: // idle, iowait
			idle += v
		case 7:
			st = v
		}
		if i < 8 { // guest time is already in user
			total += v
		}
	}
	tick := time.Second / time.Duration(clkTck)
	return time.Duration(total-idle) * tick, time.Duration(st) * tick
}

// runCmd runs argv to completion within ctx and returns its output and
// the CPU time it used.
func runCmd(ctx context.Context, cpus string, argv ...string) (string, time.Duration, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return out.String(), cpu, err
}
