// Package deploy_test checks, offline, what only dynaprice can know about
// its deployment files (the Dockerfile, .dockerignore,
// deploy/docker-compose.yml and deploy/k8s):
//
//   - every dynaprice process runs a subcommand dynaprice has
//     (cli.Commands), with flags it accepts (each command line is run with
//     --help), and is given only environment variables it reads
//     (cli.EnvNames), since an unknown one would silently leave a default;
//   - the ports published, exposed, probed and targeted by Services are the
//     ones dynaprice listens on (--addr, --metrics-addr, API_PORT, and the
//     defaults of internal/cli);
//   - the ConfigMaps and Secrets referenced exist, with the keys used;
//   - the kustomization lists every manifest of deploy/k8s, and only those;
//   - the image builds ./cmd/dynaprice with go.mod's Go, runs /dynaprice
//     (the manifests pass the role as the first argument), exposes the
//     ports, and its build context keeps every file the build reads (the
//     dashboard and the SQL migrations are go:embed'ed).
//
// Generic linting (pinned images, probes present, YAML style, Kubernetes
// good practice) is not done here. Each check is a function
// from file contents to problems, so TestChecksCatchMistakes can feed it
// broken copies of the real files.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/cli"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
)

// findings is what a check of manifests found.
type findings struct {
	problems []string
	// listen holds the ports dynaprice processes listen on (the image must
	// EXPOSE them).
	listen map[int]bool
	// invocations are the dynaprice command lines, for
	// TestManifestFlagsAccepted.
	invocations []invocation
}

type invocation struct {
	where string
	argv  []string
}

func newFindings() findings { return findings{listen: map[int]bool{}} }

func (f *findings) addf(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

// isDynaprice reports whether an image reference names the image built
// from the Dockerfile (repository "dynaprice", any registry or tag).
func isDynaprice(image string) bool {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "dynaprice"
}

// process checks one dynaprice process: entrypoint (if overridden) and
// arguments, and the names of its environment. It returns the ports the
// process listens on.
func (f *findings) process(where string, entrypoint, args []string, env map[string]string) []int {
	argv := args
	if len(entrypoint) > 0 {
		if entrypoint[0] != "/dynaprice" {
			f.addf("%s: entrypoint %q is not /dynaprice", where, entrypoint)
		}
		argv = append(slices.Clone(entrypoint[1:]), args...)
	}
	if len(argv) == 0 {
		f.addf("%s: runs no subcommand (the image's default is help)", where)
		return nil
	}
	if !slices.Contains(cli.Commands(), argv[0]) {
		f.addf("%s: runs %q, which is not a dynaprice command (cli.Commands: %v)", where, argv[0], cli.Commands())
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !slices.Contains(cli.EnvNames(), k) {
			f.addf("%s: sets %s, which dynaprice does not read (cli.EnvNames: %v)", where, k, cli.EnvNames())
		}
	}
	f.invocations = append(f.invocations, invocation{where, argv})

	// The listen addresses: the flags, else internal/cli's defaults.
	addrs := map[string]string{}
	for i := 1; i < len(argv); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(argv[i], "-"), "=")
		if !strings.HasPrefix(argv[i], "-") || (name != "addr" && name != "metrics-addr") {
			continue
		}
		if !hasVal && i+1 < len(argv) {
			i++
			val = argv[i]
		}
		addrs[name] = val
	}
	switch _, set := addrs["addr"]; {
	case (argv[0] == "api" || argv[0] == "serve") && !set:
		addrs["addr"] = ":8080"
		if p := env["API_PORT"]; p != "" {
			addrs["addr"] = ":" + p
		}
	case argv[0] == "engine":
		if _, set := addrs["metrics-addr"]; !set {
			addrs["metrics-addr"] = ":9090"
		}
	}
	var ports []int
	for _, name := range slices.Sorted(maps.Keys(addrs)) {
		_, p, err := net.SplitHostPort(addrs[name])
		n, err2 := strconv.Atoi(p)
		if err != nil || err2 != nil {
			f.addf("%s: --%s %q is not [host]:port", where, name, addrs[name])
			continue
		}
		f.listen[n] = true
		ports = append(ports, n)
	}
	return ports
}

// ---- Compose ------------------------------------------------------------------

// interpolate resolves Compose's ${VAR:-default} and ${VAR-default} to the
// default and any other variable to "" (its value is unknown offline).
func interpolate(s string) string {
	return os.Expand(s, func(v string) string {
		i := strings.IndexFunc(v, func(r rune) bool {
			return r != '_' && !('A' <= r && r <= 'Z') && !('a' <= r && r <= 'z') && !('0' <= r && r <= '9')
		})
		if i < 0 {
			return ""
		}
		if def, ok := strings.CutPrefix(strings.TrimPrefix(v[i:], ":"), "-"); ok {
			return def
		}
		return ""
	})
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Expose      []string          `yaml:"expose"`
	Ports       []string          `yaml:"ports"`
}

func checkCompose(data []byte) findings {
	f := newFindings()
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		f.addf("docker-compose.yml: %v", err)
		return f
	}
	for _, name := range slices.Sorted(maps.Keys(file.Services)) {
		svc := file.Services[name]
		if svc.Build == nil && !isDynaprice(interpolate(svc.Image)) {
			continue // a third-party image
		}
		where := "docker-compose.yml: service " + name
		var args []string
		for _, a := range svc.Command {
			args = append(args, interpolate(a))
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = interpolate(v)
		}
		// The container side of expose and ports ([ip:]host:container[/proto]).
		published := map[int]bool{}
		for _, p := range append(slices.Clone(svc.Expose), svc.Ports...) {
			p = interpolate(p)
			p, _, _ = strings.Cut(p[strings.LastIndex(p, ":")+1:], "/")
			if n, err := strconv.Atoi(p); err == nil {
				published[n] = true
			}
		}
		for _, p := range f.process(where, svc.Entrypoint, args, env) {
			if !published[p] {
				f.addf("%s: listens on %d but neither expose nor ports has it", where, p)
			}
		}
	}
	if len(f.invocations) == 0 {
		f.addf("docker-compose.yml: no service runs dynaprice")
	}
	return f
}

// ---- Kubernetes ---------------------------------------------------------------

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type probe struct {
	HTTPGet   *struct{ Port string } `yaml:"httpGet"`
	TCPSocket *struct{ Port string } `yaml:"tcpSocket"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		Prefix       string  `yaml:"prefix"`
		ConfigMapRef *keyRef `yaml:"configMapRef"`
		SecretRef    *keyRef `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
}

// object is the part of a Kubernetes object the checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Selector any `yaml:"selector"` // a Service's labels
		Ports    []struct {
			Port       string `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers     []container `yaml:"containers"`
				InitContainers []container `yaml:"initContainers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	file string
}

// pods is what a Service is checked against: the labels of a workload's
// pods, their named ports, and the ports dynaprice listens on in them.
type pods struct {
	labels map[string]string
	names  map[string]int
	listen []int
}

// checkK8s checks the kustomization directory given as file name -> content.
func checkK8s(files map[string][]byte) findings {
	f := newFindings()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(files["kustomization.yaml"], &kust); err != nil {
		f.addf("kustomization.yaml: %v", err)
	}
	for _, res := range kust.Resources {
		if files[res] == nil {
			f.addf("kustomization.yaml: lists %s, which does not exist", res)
		}
	}
	var objs []object
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if name == "kustomization.yaml" {
			continue
		}
		if !slices.Contains(kust.Resources, name) {
			f.addf("kustomization.yaml: does not list %s", name)
		}
		dec := yaml.NewDecoder(bytes.NewReader(files[name]))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				f.addf("%s: %v", name, err)
				break
			}
			o.file = name
			objs = append(objs, o)
		}
	}

	keys := map[string]map[string]string{} // "ConfigMap/name" or "Secret/name" -> key -> value
	for _, o := range objs {
		if o.Kind == "ConfigMap" || o.Kind == "Secret" {
			data := maps.Clone(o.Data)
			if data == nil {
				data = map[string]string{}
			}
			maps.Copy(data, o.StringData)
			keys[o.Kind+"/"+o.Metadata.Name] = data
		}
	}
	// lookup returns the keys of a referenced ConfigMap or Secret, and
	// reports a reference to one that does not exist or lacks the key.
	lookup := func(where, kind string, ref *keyRef) map[string]string {
		data, ok := keys[kind+"/"+ref.Name]
		_, hasKey := data[ref.Key]
		if !ref.Optional && (!ok || ref.Key != "" && !hasKey) {
			f.addf("%s: %s %q (key %q) is not among the kustomization's resources", where, kind, ref.Name, ref.Key)
		}
		return data
	}

	var workloads []pods
	for _, o := range objs {
		spec := o.Spec.Template.Spec
		w := pods{labels: o.Spec.Template.Metadata.Labels, names: map[string]int{}}
		for _, c := range append(slices.Clone(spec.Containers), spec.InitContainers...) {
			where := fmt.Sprintf("%s: %s/%s: container %s", o.file, o.Kind, o.Metadata.Name, c.Name)
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				for kind, ref := range map[string]*keyRef{"ConfigMap": ef.ConfigMapRef, "Secret": ef.SecretRef} {
					if ref != nil {
						for k, v := range lookup(where, kind, ref) {
							env[ef.Prefix+k] = v
						}
					}
				}
			}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
					env[e.Name] = lookup(where+": "+e.Name, "ConfigMap", ref)[ref.Key]
				}
				if ref := e.ValueFrom.SecretKeyRef; ref != nil {
					lookup(where+": "+e.Name, "Secret", ref)
				}
			}
			if !isDynaprice(c.Image) {
				continue
			}
			ports := map[int]bool{}
			for _, p := range c.Ports {
				ports[p.ContainerPort] = true
				if p.Name != "" {
					w.names[p.Name] = p.ContainerPort
				}
			}
			listen := f.process(where, c.Command, c.Args, env)
			w.listen = append(w.listen, listen...)
			for _, p := range listen {
				if !ports[p] {
					f.addf("%s: listens on %d, which is not a containerPort", where, p)
				}
			}
			for i, pr := range []*probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				kind := []string{"startupProbe", "readinessProbe", "livenessProbe"}[i]
				var port string
				switch {
				case pr == nil:
					continue
				case pr.HTTPGet != nil:
					port = pr.HTTPGet.Port
				case pr.TCPSocket != nil:
					port = pr.TCPSocket.Port
				default:
					f.addf("%s: %s neither gets HTTP nor opens a TCP socket (the distroless image has no shell or tools)", where, kind)
					continue
				}
				if n := w.port(port); !slices.Contains(listen, n) {
					f.addf("%s: %s probes port %s, but dynaprice listens on %v", where, kind, port, listen)
				}
			}
		}
		if len(w.listen) > 0 {
			workloads = append(workloads, w)
		}
	}

	// Services send to a port dynaprice listens on in the pods they select.
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		where := fmt.Sprintf("%s: Service/%s", o.file, o.Metadata.Name)
		selector, _ := o.Spec.Selector.(map[string]any)
		i := slices.IndexFunc(workloads, func(w pods) bool {
			for k, v := range selector {
				if w.labels[k] != fmt.Sprint(v) {
					return false
				}
			}
			return len(selector) > 0
		})
		if i < 0 {
			f.addf("%s: selects no dynaprice pods", where)
			continue
		}
		for _, p := range o.Spec.Ports {
			target := p.TargetPort
			if target == "" {
				target = p.Port
			}
			if n := workloads[i].port(target); !slices.Contains(workloads[i].listen, n) {
				f.addf("%s: targetPort %q is not a port dynaprice listens on (%v)", where, target, workloads[i].listen)
			}
		}
	}
	if len(f.invocations) == 0 {
		f.addf("no container runs dynaprice")
	}
	return f
}

// port resolves a port number or the name of a container port (-1 when
// it is neither).
func (w pods) port(p string) int {
	if n, err := strconv.Atoi(p); err == nil {
		return n
	}
	if n, ok := w.names[p]; ok {
		return n
	}
	return -1
}

// ---- the image ----------------------------------------------------------------

var (
	goLine     = regexp.MustCompile(`(?m)^go\s+(\d+\.\d+)`)
	builderGo  = regexp.MustCompile(`(?mi)^FROM\s+(?:--\S+\s+)*(?:\S+/)?golang:(\d+\.\d+)`)
	goBuild    = regexp.MustCompile(`(?mi)^RUN\s.*\bgo build\b.*\s\./cmd/dynaprice(\s|$)`)
	entrypoint = regexp.MustCompile(`(?mi)^ENTRYPOINT\s+(.*)$`)
	expose     = regexp.MustCompile(`(?mi)^EXPOSE\s+(.*)$`)
)

// checkDockerfile checks the Dockerfile against go.mod and the ports the
// manifests' dynaprice processes listen on.
func checkDockerfile(dockerfile, gomod []byte, listen map[int]bool) []string {
	var problems []string
	// One instruction per line: continuation lines joined.
	df := strings.ReplaceAll(string(dockerfile), "\\\n", " ")
	want, got := goLine.FindStringSubmatch(string(gomod)), builderGo.FindStringSubmatch(df)
	switch {
	case want == nil:
		problems = append(problems, "go.mod: no go line")
	case got == nil:
		problems = append(problems, "Dockerfile: no golang:<major.minor> builder stage")
	case got[1] != want[1]:
		problems = append(problems, fmt.Sprintf("Dockerfile: builder is Go %s, go.mod says go %s", got[1], want[1]))
	}
	if !goBuild.MatchString(df) {
		problems = append(problems, "Dockerfile: no RUN go build of ./cmd/dynaprice")
	}
	if m := entrypoint.FindAllStringSubmatch(df, -1); m == nil || strings.TrimSpace(m[len(m)-1][1]) != `["/dynaprice"]` {
		problems = append(problems, `Dockerfile: ENTRYPOINT is not ["/dynaprice"] (manifests pass the role as the first argument)`)
	}
	exposed := map[int]bool{}
	for _, m := range expose.FindAllStringSubmatch(df, -1) {
		for _, p := range strings.Fields(m[1]) {
			if n, err := strconv.Atoi(strings.Split(p, "/")[0]); err == nil {
				exposed[n] = true
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(listen)) {
		if !exposed[p] {
			problems = append(problems, fmt.Sprintf("Dockerfile: the manifests listen on %d but the image does not EXPOSE it", p))
		}
	}
	return problems
}

// checkDockerignore reports the files the build needs that .dockerignore
// leaves out of the build context (matched the way Docker does, by moby's
// patternmatcher).
func checkDockerignore(data []byte, needed []string) []string {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return []string{".dockerignore: " + err.Error()}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return []string{".dockerignore: " + err.Error()}
	}
	var problems []string
	for _, f := range needed {
		if excluded, err := pm.MatchesOrParentMatches(f); err != nil || excluded {
			problems = append(problems, fmt.Sprintf(".dockerignore excludes %s, which go build ./cmd/dynaprice reads (%v)", f, err))
		}
	}
	return problems
}

// buildInputs lists the files of this module that `go build ./cmd/dynaprice`
// reads for the image (linux, CGO_ENABLED=0): go.mod, go.sum, and the Go
// files and embedded files of the module's packages it imports.
func buildInputs(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/dynaprice")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// ---- tests --------------------------------------------------------------------

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// k8sFiles reads every YAML file of k8s/.
func k8sFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, ext := range []string{"*.yaml", "*.yml"} {
		names, err := filepath.Glob(filepath.Join("k8s", ext))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			files[filepath.Base(n)] = readFile(t, n)
		}
	}
	if files["kustomization.yaml"] == nil {
		t.Fatal("k8s/kustomization.yaml is missing")
	}
	return files
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

func TestCompose(t *testing.T) { report(t, checkCompose(readFile(t, "docker-compose.yml")).problems) }

func TestKubernetes(t *testing.T) { report(t, checkK8s(k8sFiles(t)).problems) }

func TestDockerfile(t *testing.T) {
	listen := maps.Clone(checkCompose(readFile(t, "docker-compose.yml")).listen)
	maps.Copy(listen, checkK8s(k8sFiles(t)).listen)
	if len(listen) == 0 {
		t.Fatal("no listen ports found in the manifests")
	}
	report(t, checkDockerfile(readFile(t, "../Dockerfile"), readFile(t, "../go.mod"), listen))
}

func TestDockerignore(t *testing.T) {
	needed := buildInputs(t)
	if !slices.ContainsFunc(needed, func(f string) bool { return strings.HasPrefix(f, "internal/dashboard/dist/") }) {
		t.Errorf("go list found no embedded dashboard files: %v", needed)
	}
	report(t, checkDockerignore(readFile(t, "../.dockerignore"), needed))
}

// TestManifestFlagsAccepted runs every dynaprice command line of the
// manifests with --help appended: the role's flag parsing must accept every
// flag and value before it (an unknown flag or a bad value exits 2) and then
// print its help and exit 0, without starting anything.
func TestManifestFlagsAccepted(t *testing.T) {
	invs := checkCompose(readFile(t, "docker-compose.yml")).invocations
	invs = append(invs, checkK8s(k8sFiles(t)).invocations...)
	if len(invs) < 4 {
		t.Fatalf("found %d dynaprice invocations in the manifests", len(invs))
	}
	bin := filepath.Join(t.TempDir(), "dynaprice")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dynaprice")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, inv := range invs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(slices.Clone(inv.argv), "--help")...)
		cmd.Env = []string{} // nothing from this machine: flags only
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: dynaprice %s --help: %v\n%s", inv.where, strings.Join(inv.argv, " "), err, out)
		}
	}
}

// TestChecksCatchMistakes runs the checks on broken copies of the real
// files: each mistake must be reported, so the checks above cannot pass
// vacuously.
func TestChecksCatchMistakes(t *testing.T) {
	compose := readFile(t, "docker-compose.yml")
	k8s := k8sFiles(t)
	dockerfile, gomod, ignore := readFile(t, "../Dockerfile"), readFile(t, "../go.mod"), readFile(t, "../.dockerignore")
	needed := buildInputs(t)
	listen := map[int]bool{8080: true, 9090: true}

	for _, m := range []struct {
		file     string // docker-compose.yml, Dockerfile, .dockerignore, go.mod or k8s/NAME
		old, new string // the first occurrence of old is replaced
		want     string // a reported problem contains this
	}{
		{"docker-compose.yml", "KAFKA_BROKERS:", "KAFKA_BROKER:", "sets KAFKA_BROKER,"},
		{"docker-compose.yml", `command: ["engine"`, `command: ["engines"`, `runs "engines"`},
		{"docker-compose.yml", `"--metrics-addr", ":9090"`, `"--metrics-addr", ":9999"`, "listens on 9999"},
		{"docker-compose.yml", `command: ["migrate"]`, `entrypoint: ["/bin/sh"]` + "\n    " + `command: ["migrate"]`, "not /dynaprice"},
		{"docker-compose.yml", "services:\n", "services:\n\t", "docker-compose.yml: yaml"},
		{"k8s/engine.yaml", "- name: DATABASE_URL", "- name: DATABASE_URI", "sets DATABASE_URI,"},
		{"k8s/engine.yaml", "containerPort: 9090", "containerPort: 9091", "listens on 9090, which is not a containerPort"},
		{"k8s/engine.yaml", `"--metrics-addr", ":9090"`, `"--metrics-addr", ":9091"`, "probes port metrics, but dynaprice listens on [9091]"},
		{"k8s/engine.yaml", "name: dynaprice-config", "name: dynaprice-settings", `ConfigMap "dynaprice-settings"`},
		{"k8s/api.yaml", "port: http", "port: 8081", "probes port 8081"},
		{"k8s/api.yaml", `args: ["api"`, `args: ["apiserver"`, `runs "apiserver"`},
		{"k8s/api.yaml", "targetPort: http", "targetPort: web", `targetPort "web"`},
		{"k8s/api.yaml", "    app.kubernetes.io/component: api\n  ports:", "    app.kubernetes.io/component: apis\n  ports:", "selects no dynaprice pods"},
		{"k8s/api.yaml", "key: ADMIN_API_KEY", "key: ADMIN_KEY", `(key "ADMIN_KEY")`},
		{"k8s/api.yaml", "kind: Service\n", "kind: Service\n  : [\n", "api.yaml: yaml"},
		{"k8s/configmap.yaml", "REDIS_ADDR:", "REDIS_ADRR:", "sets REDIS_ADRR,"},
		{"k8s/secret.example.yaml", "name: dynaprice-secrets", "name: dynaprice-secret", `Secret "dynaprice-secrets"`},
		{"k8s/kustomization.yaml", "  - pdb.yaml\n", "", "does not list pdb.yaml"},
		{"k8s/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - missing.yaml\n", "missing.yaml, which does not exist"},
		{"Dockerfile", "FROM golang:1.26", "FROM golang:1.25", "go.mod says"},
		{"go.mod", "\ngo 1.26", "\ngo 1.27", "go.mod says"},
		{"Dockerfile", "-o /dynaprice ./cmd/dynaprice", "-o /dynaprice ./cmd/other", "./cmd/dynaprice"},
		{"Dockerfile", `ENTRYPOINT ["/dynaprice"]`, `ENTRYPOINT ["/bin/dynaprice"]`, "ENTRYPOINT"},
		{"Dockerfile", "EXPOSE 8080 9090", "EXPOSE 8080", "does not EXPOSE it"},
		{".dockerignore", "\nweb\n", "\nweb\ninternal/dashboard/dist\n", "internal/dashboard/dist/index.html"},
		{".dockerignore", "\nweb\n", "\nweb\n**/*.sql\n", ".sql"},
	} {
		t.Run(m.file+":"+m.new, func(t *testing.T) {
			mutate := func(data []byte) []byte {
				t.Helper()
				if !bytes.Contains(data, []byte(m.old)) {
					t.Fatalf("%s no longer contains %q: update this mutation", m.file, m.old)
				}
				return bytes.Replace(data, []byte(m.old), []byte(m.new), 1)
			}
			var problems []string
			switch {
			case m.file == "docker-compose.yml":
				problems = checkCompose(mutate(compose)).problems
			case m.file == "Dockerfile":
				problems = checkDockerfile(mutate(dockerfile), gomod, listen)
			case m.file == "go.mod":
				problems = checkDockerfile(dockerfile, mutate(gomod), listen)
			case m.file == ".dockerignore":
				problems = checkDockerignore(mutate(ignore), needed)
			case strings.HasPrefix(m.file, "k8s/"):
				files := maps.Clone(k8s)
				name := strings.TrimPrefix(m.file, "k8s/")
				files[name] = mutate(files[name])
				problems = checkK8s(files).problems
			default:
				t.Fatalf("unknown file %s", m.file)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }) {
				t.Errorf("no problem mentions %q; got %q", m.want, problems)
			}
		})
	}
}
