package contrib_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ocsiproxy/ocsiproxy/admin"
	"github.com/ocsiproxy/ocsiproxy/cli"
	"github.com/ocsiproxy/ocsiproxy/internal/syncbuf"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// root is the repository root, the build context of the Dockerfile.
const root = ".."

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// confOf parses a configuration and returns it with the address of its
// admin listener.
func confOf(t *testing.T, name, src string) (*xmlconf.Config, string) {
	t.Helper()
	cfg, err := xmlconf.Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var errs xmlconf.ErrorList
	adm := admin.ParseConfig(cfg, &errs)
	if len(errs) > 0 || adm == nil {
		t.Fatalf("%s: admin listener: %v %v", name, adm, errs)
	}
	return cfg, adm.Addr
}

// portOf returns the port of a host:port address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatalf("%q: no port", addr)
	}
	return p
}

// checkConfig runs "ocsiproxy ARGS -t" through the cli package (with the
// machine checks when urls is empty) and fails on a non-zero status.
func checkConfig(t *testing.T, args []string, urls ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(append(slices.Clip(args), "-t"), urls...)
	if code := cli.Run(args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("ocsiproxy %q: exit %d\n%s%s", args, code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), ": ok (") {
		t.Fatalf("ocsiproxy %q: no ok line:\n%s", args, out.String())
	}
}

// --- Dockerfile ---

// instruction is one instruction of a Dockerfile, its continuation lines
// joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN...
	Args string
}

// stage is one stage of a Dockerfile.
type stage struct {
	From, Name string
	Body       []instruction
}

// parseDockerfile reads the instructions of a Dockerfile by stage
// (comments dropped, backslash continuations joined).
func parseDockerfile(t *testing.T, src string) []stage {
	t.Helper()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" {
				return
			}
			t.Fatalf("Dockerfile: %s before FROM", in.Cmd)
		}
		stages[len(stages)-1].Body = append(stages[len(stages)-1].Body, in)
	}
	for line := range strings.Lines(src) {
		line = strings.TrimRight(line, "\r\n")
		if cur.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// args returns the values of the instructions cmd of s.
func (s stage) args(cmd string) []string {
	var a []string
	for _, in := range s.Body {
		if in.Cmd == cmd {
			a = append(a, in.Args)
		}
	}
	return a
}

// jsonArgs reads the exec form ["a", "b"] of CMD and ENTRYPOINT.
func jsonArgs(t *testing.T, s string) []string {
	t.Helper()
	var a []string
	if err := yaml.Unmarshal([]byte(s), &a); err != nil || !strings.HasPrefix(s, "[") {
		t.Fatalf("%q: want the exec form [\"...\"]", s)
	}
	return a
}

// TestMain removes the binary builtBinary made.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildLog  string
)

// builtBinary runs the RUN steps of the Dockerfile's build stage as a
// script (no docker engine is needed): in the repository root, which the
// stage copies to its WORKDIR, with the stage's ARGs (VERSION set to
// "contrib-test") in the environment, and the directory its binary is
// written to mapped to a temporary one. It returns the binary that the
// final stage copies.
func builtBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		stages := parseDockerfile(t, readFile(t, "docker/Dockerfile"))
		build, final := stages[0], stages[len(stages)-1]
		var src string
		for _, c := range final.args("COPY") {
			if f := strings.Fields(c); len(f) == 3 && f[0] == "--from="+build.Name {
				src = f[1]
			}
		}
		if src == "" {
			buildErr = fmt.Errorf("the final stage copies nothing from the build stage %q", build.Name)
			return
		}
		outDir := filepath.Dir(src)
		tmp, err := os.MkdirTemp("", "ocsiproxy-contrib-")
		if err != nil {
			buildErr = err
			return
		}
		env := os.Environ()
		for _, a := range build.args("ARG") {
			name, def, _ := strings.Cut(a, "=")
			if name == "VERSION" {
				def = "contrib-test"
			}
			env = append(env, name+"="+strings.Trim(def, `"`))
		}
		var log bytes.Buffer
		for _, run := range build.args("RUN") {
			script := strings.ReplaceAll(run, outDir+"/", tmp+"/")
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = root, env, &log, &log
			fmt.Fprintf(&log, "$ %s\n", script)
			if err := cmd.Run(); err != nil {
				buildErr, buildLog = fmt.Errorf("RUN %s: %v", run, err), log.String()
				return
			}
		}
		buildBin, buildLog = filepath.Join(tmp, filepath.Base(src)), log.String()
	})
	if buildErr != nil {
		t.Fatalf("build stage of contrib/docker/Dockerfile: %v\n%s", buildErr, buildLog)
	}
	return buildBin
}

// TestDockerfile runs the build stage of the Dockerfile, checks that the
// binary is static and stamped with the version, and checks the final
// stage: a non-root user, the configuration a volume, the default command
// a configuration that passes -t, and a HEALTHCHECK on the admin
// listener's /healthz.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, readFile(t, "docker/Dockerfile"))
	if len(stages) < 2 || stages[0].Name == "" {
		t.Fatalf("want a multi-stage Dockerfile with a named build stage, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if runs := strings.Join(build.args("RUN"), "\n"); !strings.Contains(runs, "CGO_ENABLED=0 go build") {
		t.Errorf("the build stage does not build with CGO_ENABLED=0:\n%s", runs)
	}
	if !slices.Contains(build.args("COPY"), ". .") {
		t.Errorf("the build stage does not copy the repository (COPY . .), which the test builds in place")
	}

	bin := builtBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %q", bin, libs)
	}
	if _, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command("file", bin).Output()
		if !strings.Contains(string(out), "statically linked") {
			t.Errorf("file says: %s", out)
		}
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "ocsiproxy contrib-test ") {
		t.Errorf("--version: %q %v, want the VERSION build argument", out, err)
	}

	users := final.args("USER")
	if len(users) != 1 {
		t.Fatalf("USER: %q, want one", users)
	}
	uid, gid, _ := strings.Cut(users[0], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot needs one)", users[0])
	}
	if gid == "0" {
		t.Errorf("USER %q: group root", users[0])
	}
	entry := jsonArgs(t, strings.Join(final.args("ENTRYPOINT"), ""))
	cmd := jsonArgs(t, strings.Join(final.args("CMD"), ""))
	if len(entry) != 1 || !slices.ContainsFunc(final.args("COPY"), func(c string) bool { return strings.HasSuffix(c, " "+entry[0]) }) {
		t.Errorf("ENTRYPOINT %q is not the binary copied from the build stage", entry)
	}
	i := slices.Index(cmd, "-c")
	if i < 0 || i+1 >= len(cmd) {
		t.Fatalf("CMD %q names no -c file", cmd)
	}
	confPath := cmd[i+1]
	volumes := final.args("VOLUME")
	if !slices.Contains(volumes, filepath.Dir(confPath)) {
		t.Errorf("VOLUME %q: want the configuration's directory %s", volumes, filepath.Dir(confPath))
	}
	var confSrc string
	for _, c := range final.args("COPY") {
		if f := strings.Fields(c); len(f) == 2 && f[1] == confPath {
			confSrc = f[0]
		}
	}
	if confSrc == "" {
		t.Fatalf("no COPY puts a configuration at %s", confPath)
	}
	local := filepath.Join(root, confSrc)
	src := readFile(t, local)
	cfg, adminAddr := confOf(t, local, src)
	// The image's command, on the file it copies, passes -t.
	checkConfig(t, mapArg(cmd, confPath, local))

	hc := strings.Join(final.args("HEALTHCHECK"), "")
	m := regexp.MustCompile(`CMD .*(http://127\.0\.0\.1:(\d+)(/\S*))`).FindStringSubmatch(hc)
	if m == nil {
		t.Fatalf("HEALTHCHECK %q: want a request to http://127.0.0.1:PORT/...", hc)
	}
	if p, _ := strconv.Atoi(m[2]); p != portOf(t, adminAddr) || m[3] != "/healthz" {
		t.Errorf("HEALTHCHECK asks %s; the admin listener is %s (/healthz)", m[1], adminAddr)
	}
	var exposed []int
	for _, e := range final.args("EXPOSE") {
		for _, p := range strings.Fields(e) {
			n, _ := strconv.Atoi(p)
			exposed = append(exposed, n)
		}
	}
	for _, want := range []int{cfg.Ports[0].Port, portOf(t, adminAddr)} {
		if !slices.Contains(exposed, want) {
			t.Errorf("EXPOSE %v lacks port %d", exposed, want)
		}
	}
	// The built binary serves the image's configuration (on loopback
	// ports here) and its admin listener answers the HEALTHCHECK's path.
	serveHealthz(t, bin, mapArg(cmd, confPath, ""), src, m[3])
}

// mapArg returns args with the value from replaced by to (dropped with
// the option before it when to is "").
func mapArg(args []string, from, to string) []string {
	var out []string
	for _, a := range args {
		if a == from {
			if to == "" {
				out = out[:len(out)-1]
				continue
			}
			a = to
		}
		out = append(out, a)
	}
	return out
}

// loopbackOnly rewrites the <port>s and admin <listen> of a configuration
// to port 0 of the loopback address.
func loopbackOnly(src string) string {
	src = regexp.MustCompile(`<port>[^<]*</port>`).ReplaceAllString(src, "<port>127.0.0.1:0</port>")
	return regexp.MustCompile(`<listen>[^<]*</listen>`).ReplaceAllString(src, "<listen>127.0.0.1:0</listen>")
}

// serveHealthz starts bin with args and the configuration src (moved to
// loopback ports), asks its admin listener for path and stops it.
func serveHealthz(t *testing.T, bin string, args []string, src, path string) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "ocsiproxy.conf")
	if err := os.WriteFile(conf, []byte(loopbackOnly(src)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-c", conf}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) // the process this test started
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGTERM", bin)
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	var adminAddr string
	timeout := time.After(20 * time.Second)
	for adminAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before serving", bin)
			}
			if _, a, found := strings.Cut(l, "; admin on "); found {
				adminAddr = a
			}
		case <-timeout:
			t.Fatalf("%s: no listening line within 20 s", bin)
		}
	}
	go func() {
		for range lines {
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + adminAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
	}
}

// --- Kubernetes ---

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service.
		ServiceSelector map[string]string `yaml:"-"`
		Ports           []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// port resolves a port given by number or by name among c's ports.
func (c k8sContainer) port(t *testing.T, p any) int {
	t.Helper()
	switch v := p.(type) {
	case int:
		return v
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort
			}
		}
	}
	t.Fatalf("port %v: not a container port of %s", p, c.Name)
	return 0
}

// TestKubernetes parses the manifests and checks that they fit together
// and with the image: the probes ask the admin listener of the
// ConfigMap's configuration for /healthz, the container's args name the
// ConfigMap's file under its mount (a whole-directory mount, which the
// kubelet updates) with --watch, and pass -t.
func TestKubernetes(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, "kubernetes/ocsiproxy.yaml")))
	objs := map[string]*k8sObject{}
	for {
		var node yaml.Node
		if err := dec.Decode(&node); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		o := &k8sObject{}
		if err := node.Decode(o); err != nil {
			t.Fatal(err)
		}
		if o.Kind == "Service" {
			var svc struct {
				Spec struct {
					Selector map[string]string `yaml:"selector"`
				} `yaml:"spec"`
			}
			node.Decode(&svc)
			o.Spec.ServiceSelector = svc.Spec.Selector
		}
		objs[o.Kind] = o
	}
	cm, dep, svc := objs["ConfigMap"], objs["Deployment"], objs["Service"]
	if cm == nil || dep == nil || svc == nil {
		t.Fatalf("want a ConfigMap, a Deployment and a Service; got %v", objs)
	}
	if dep.Spec.Replicas < 2 {
		t.Errorf("replicas %d, want several", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template
	for k, v := range dep.Spec.Selector.MatchLabels {
		if pod.Metadata.Labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not select its pods %v", k, v, pod.Metadata.Labels)
		}
	}
	for k, v := range svc.Spec.ServiceSelector {
		if pod.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the pods %v", k, v, pod.Metadata.Labels)
		}
	}
	if len(svc.Spec.ServiceSelector) == 0 {
		t.Errorf("Service without selector")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// The image: the Dockerfile's, with its user and volume.
	stages := parseDockerfile(t, readFile(t, "docker/Dockerfile"))
	final := stages[len(stages)-1]
	if !strings.Contains(readFile(t, "docker/Dockerfile"), "-t "+c.Image+" ") {
		t.Errorf("image %q is not the tag the Dockerfile's build line gives", c.Image)
	}
	if uid, _, _ := strings.Cut(strings.Join(final.args("USER"), ""), ":"); strconv.Itoa(pod.Spec.SecurityContext.RunAsUser) != uid || !pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("runAsUser %d (runAsNonRoot %v), want the image's USER %s", pod.Spec.SecurityContext.RunAsUser, pod.Spec.SecurityContext.RunAsNonRoot, uid)
	}

	// The configuration: the ConfigMap's key under the mount.
	i := slices.Index(c.Args, "-c")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %q name no -c file", c.Args)
	}
	confPath := c.Args[i+1]
	if !slices.Contains(c.Args, "--watch") {
		t.Errorf("args %q: no --watch, a ConfigMap change would not be loaded", c.Args)
	}
	var key string
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name {
				continue
			}
			if m.SubPath != "" {
				t.Errorf("the ConfigMap is mounted with subPath, which the kubelet never updates")
			}
			if filepath.Dir(confPath) == m.MountPath {
				key = filepath.Base(confPath)
			}
			if !slices.Contains(final.args("VOLUME"), m.MountPath) {
				t.Errorf("mountPath %s is not the image's VOLUME %q", m.MountPath, final.args("VOLUME"))
			}
		}
	}
	src, ok := cm.Data[key]
	if key == "" || !ok {
		t.Fatalf("-c %s is not a key of the ConfigMap %q mounted in the container", confPath, cm.Metadata.Name)
	}
	cfg, adminAddr := confOf(t, "ConfigMap "+cm.Metadata.Name+"/"+key, src)
	if a := adminAddr[:strings.LastIndex(adminAddr, ":")]; a != "0.0.0.0" && a != "" && a != "[::]" {
		t.Errorf("admin listener %s: the kubelet probes the pod's address, not loopback", adminAddr)
	}
	for name, p := range map[string]*k8sProbe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", name)
			continue
		}
		if p.HTTPGet.Path != "/healthz" || c.port(t, p.HTTPGet.Port) != portOf(t, adminAddr) {
			t.Errorf("%s asks port %v %s; the admin listener is %s (/healthz)", name, p.HTTPGet.Port, p.HTTPGet.Path, adminAddr)
		}
	}
	if c.port(t, "http") != cfg.Ports[0].Port {
		t.Errorf("containerPort http %d, the configuration's <port> is %d", c.port(t, "http"), cfg.Ports[0].Port)
	}
	for _, p := range svc.Spec.Ports {
		if c.port(t, p.TargetPort) != cfg.Ports[0].Port {
			t.Errorf("Service port %s goes to %v, not the configuration's <port> %d", p.Name, p.TargetPort, cfg.Ports[0].Port)
		}
	}

	// The container's args, on the ConfigMap's file, pass -t.
	local := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(local, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, mapArg(c.Args, confPath, local))
	// And the binary serves it, answering the probes' path.
	serveHealthz(t, builtBinary(t), mapArg(c.Args, confPath, ""), src, "/healthz")
}

// --- systemd ---

// parseUnit reads a systemd unit file: section -> key -> values.
func parseUnit(src string) map[string]map[string][]string {
	u := map[string]map[string][]string{}
	sec := ""
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

// TestSystemdUnit checks the unit's settings, that its command line and
// the example configuration pass -t, that the configuration's log
// directory and command pipe are writable under it, and runs
// systemd-analyze verify on it (with ExecStart pointing at the binary
// the Dockerfile's build stage makes).
func TestSystemdUnit(t *testing.T) {
	src := readFile(t, "systemd/ocsiproxy.service")
	svc := parseUnit(src)["Service"]
	want := map[string]string{
		"Type":                  "notify",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"ProtectSystem":         "strict",
		"NoNewPrivileges":       "yes",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"User":                  "ocsiproxy",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	execStart := strings.Fields(strings.Join(svc["ExecStart"], ""))
	i := slices.Index(execStart, "-c")
	if len(execStart) == 0 || i < 0 || i+1 >= len(execStart) {
		t.Fatalf("ExecStart %q names no -c file", execStart)
	}
	conf := readFile(t, "systemd/ocsiproxy.conf")
	cfg, _ := confOf(t, "systemd/ocsiproxy.conf", conf)
	// LogsDirectory= creates the log directory, owned by the user;
	// ReadWritePaths= names it too, for the reader of the unit.
	if logs := "/var/log/" + strings.Join(svc["LogsDirectory"], ""); cfg.LogDir != logs || !slices.Contains(svc["ReadWritePaths"], cfg.LogDir) {
		t.Errorf("<logdir> %s: want LogsDirectory= (%s) and ReadWritePaths= (%q) to name it", cfg.LogDir, logs, svc["ReadWritePaths"])
	}
	if run := "/run/" + strings.Join(svc["RuntimeDirectory"], ""); filepath.Dir(cfg.CommandPipe) != run {
		t.Errorf("<commandpipe> %s is not in the RuntimeDirectory= %s", cfg.CommandPipe, run)
	}
	// The unit's command line on the example configuration passes -t: its
	// machine checks with the paths of the log directory and the command
	// pipe moved to a temporary directory (this machine has neither).
	dir := t.TempDir()
	local := filepath.Join(dir, "ocsiproxy.conf")
	moved := strings.NewReplacer(cfg.LogDir, dir, cfg.CommandPipe, filepath.Join(dir, "command")).Replace(conf)
	if err := os.WriteFile(local, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, mapArg(execStart[1:], execStart[i+1], local))

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the unit is not verified")
	}
	bin := builtBinary(t)
	unit := filepath.Join(t.TempDir(), "ocsiproxy.service")
	if err := os.WriteFile(unit, []byte(strings.Replace(src, "ExecStart="+execStart[0], "ExecStart="+bin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// verify exits 0 on unknown keys and the like, but says so.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// --- logrotate ---

// TestLogrotate checks the snippet against the example configuration
// (the log files it rotates, the signal that reopens them), then, with
// logrotate installed, rotates the logs of a running ocsiproxy with it,
// the snippet's paths moved to a temporary directory and its postrotate
// signalling that process: the old lines are in access.log.1 and a new
// request is written to a new access.log.
func TestLogrotate(t *testing.T) {
	src := readFile(t, "logrotate/ocsiproxy")
	conf := readFile(t, "systemd/ocsiproxy.conf")
	cfg, _ := confOf(t, "systemd/ocsiproxy.conf", conf)
	glob := filepath.Join(cfg.LogDir, "*.log")
	if !strings.Contains(src, glob+" {") {
		t.Errorf("the snippet does not rotate %s, the example's <logdir>", glob)
	}
	post := regexp.MustCompile(`(?s)postrotate\n(.*?)\n\s*endscript`).FindStringSubmatch(src)
	if post == nil || !strings.Contains(post[1], "--signal=USR1") || !strings.Contains(post[1], "--kill-whom=main") ||
		!strings.Contains(post[1], "ocsiproxy.service") {
		t.Fatalf("postrotate does not send SIGUSR1 to ocsiproxy.service's main process:\n%v", post)
	}
	logrotate, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate is not installed (apt-get install logrotate): the snippet is not run")
	}

	dir := t.TempDir()
	logdir := filepath.Join(dir, "log")
	os.Mkdir(logdir, 0o755)
	bin := builtBinary(t)
	backend := httpBackend(t)
	cf := filepath.Join(dir, "ocsiproxy.conf")
	local := strings.NewReplacer(cfg.LogDir, logdir, cfg.CommandPipe, filepath.Join(dir, "command"), "http://127.0.0.1:8081", backend).Replace(loopbackOnly(conf))
	if err := os.WriteFile(cf, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cf)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) // the process this test started
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	}()
	addr := waitListening(t, &stderr)
	get(t, "http://"+addr+"/before")
	waitContains(t, filepath.Join(logdir, "access.log"), "GET /before ")

	// The snippet, with its paths and its postrotate made for this test;
	// "su" needs the ocsiproxy user, which this machine may not have.
	snippet := strings.NewReplacer(glob, filepath.Join(logdir, "*.log"),
		post[1], fmt.Sprintf("\t\tkill -USR1 %d", cmd.Process.Pid)).Replace(src)
	snippet = regexp.MustCompile(`(?m)^\s*(su|create) .*\n`).ReplaceAllString(snippet, "")
	sf := filepath.Join(dir, "logrotate.conf")
	os.WriteFile(sf, []byte(snippet), 0o644)
	out, err := exec.Command(logrotate, "-f", "-s", filepath.Join(dir, "state"), sf).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate: %v\n%s\n%s", err, out, snippet)
	}
	get(t, "http://"+addr+"/after")
	waitContains(t, filepath.Join(logdir, "access.log"), "GET /after ")
	if old := readFile(t, filepath.Join(logdir, "access.log.1")); !strings.Contains(old, "GET /before ") || strings.Contains(old, "GET /after ") {
		t.Errorf("access.log.1:\n%s", old)
	}
}

// httpBackend returns the URL of a loopback backend that answers 200.
func httpBackend(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// waitListening returns the first address of ocsiproxy's listening line.
func waitListening(t *testing.T, stderr *syncbuf.Buffer) string {
	t.Helper()
	re := regexp.MustCompile(`listening on (\S+?)[,;\n]`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no listening line within 20 s:\n%s", stderr.String())
	return ""
}

func get(t *testing.T, u string) {
	t.Helper()
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func waitContains(t *testing.T, file, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), text) {
			return
		}
	}
	b, _ := os.ReadFile(file)
	t.Fatalf("%s never contained %q:\n%s", file, text, b)
}
