// Package deploy_test checks the deployment files offline: the Dockerfile,
// .dockerignore, deploy/docker-compose.yml and deploy/k8s. Nothing here needs
// Docker, Kubernetes or Kafka; the checks catch the mistakes that would
// otherwise only show up at deploy time: a subcommand or environment
// variable dynaprice does not know (which would silently fall back to a
// default), a probe on a port nobody listens on, a ConfigMap that does not
// exist, an unpinned image, a kustomization that forgets a file.
//
// Each check is a function from file contents to a list of problems, so
// TestChecksCatchMistakes can feed it broken copies of the real files and
// prove that the checks fail when they should.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"go.yaml.in/yaml/v3"
)

// componentLabel tells engine, api and migrate objects apart (docs/DEPLOY.md
// applies the migration first by selecting on it).
const componentLabel = "app.kubernetes.io/component"

// dynapriceImage is the repository name (last path element) of the image
// built from the top-level Dockerfile.
const dynapriceImage = "dynaprice"

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

var (
	commands = setOf(cli.Commands())
	envNames = setOf(cli.EnvNames())
)

// ---- YAML helpers -----------------------------------------------------------

// parseDocs decodes every document of a (possibly multi-document) YAML
// stream. Empty documents (only comments, a trailing ---) are skipped; every
// other document must be a mapping.
func parseDocs(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for i := 1; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d: top level is %T, want a mapping", i, v)
		}
		docs = append(docs, m)
	}
}

// get walks nested mappings; it returns nil when a key is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func getMap(v any, keys ...string) map[string]any {
	m, _ := get(v, keys...).(map[string]any)
	return m
}

func getList(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

// scalar renders a YAML scalar as a string ("" for nil, mappings, lists).
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x)
	}
	return ""
}

func getStr(v any, keys ...string) string { return scalar(get(v, keys...)) }

// stringList reads a list of scalars, or a string split on white space (the
// shell form of a Compose command).
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Fields(x)
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scalar(e)
		}
		return out
	}
	return nil
}

// labelsMatch reports whether every selector label is set in labels.
func labelsMatch(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if l, ok := labels[k]; !ok || scalar(l) != scalar(v) {
			return false
		}
	}
	return true
}

// ---- images -----------------------------------------------------------------

// splitImage splits registry/repo:tag@digest into repo, tag and digest.
func splitImage(ref string) (repo, tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	return ref, tag, digest
}

// pinned reports why an image reference is not pinned to a version ("" when
// it is): it needs a tag other than latest, or a digest.
func pinned(ref string) string {
	if ref == "" {
		return "no image"
	}
	_, tag, digest := splitImage(ref)
	switch {
	case digest != "":
		return ""
	case tag == "":
		return fmt.Sprintf("image %q has no tag: pin a version", ref)
	case tag == "latest":
		return fmt.Sprintf("image %q uses the latest tag: pin a version", ref)
	}
	return ""
}

func isDynaprice(ref string) bool {
	repo, _, _ := splitImage(ref)
	return path.Base(repo) == dynapriceImage
}

// ---- dynaprice invocations ----------------------------------------------------

// checkInvocation checks how a container runs the dynaprice image: the
// entrypoint, if overridden, must still be /dynaprice, and the first
// argument must be a subcommand. It returns the role and the arguments after
// the entrypoint.
func checkInvocation(entrypoint, args []string) (role string, argv []string, problems []string) {
	if len(entrypoint) > 0 {
		if entrypoint[0] != "/dynaprice" {
			problems = append(problems, fmt.Sprintf("entrypoint %q is not /dynaprice", entrypoint))
		}
		args = append(slices.Clone(entrypoint[1:]), args...)
	}
	if len(args) == 0 {
		return "", nil, append(problems, "runs no subcommand (the image's default is help)")
	}
	if !commands[args[0]] {
		problems = append(problems, fmt.Sprintf("runs %q, which is not a dynaprice command (cli.Commands: %v)", args[0], cli.Commands()))
	}
	return args[0], args, problems
}

func checkEnvName(name string) string {
	if !envNames[name] {
		return fmt.Sprintf("sets %s, which dynaprice does not read (cli.EnvNames: %v)", name, cli.EnvNames())
	}
	return ""
}

// listenPorts returns the TCP ports a dynaprice process listens on, from its
// --addr and --metrics-addr flags (api and serve listen on API_PORT or 8080
// without --addr).
func listenPorts(role string, argv []string, env map[string]string) (ports []int, problems []string) {
	addrFlag := false
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "addr" && name != "metrics-addr" {
			continue
		}
		if !hasVal {
			if i+1 >= len(argv) {
				problems = append(problems, fmt.Sprintf("--%s has no value", name))
				continue
			}
			i++
			val = argv[i]
		}
		_, p, err := net.SplitHostPort(val)
		n, err2 := strconv.Atoi(p)
		if err != nil || err2 != nil {
			problems = append(problems, fmt.Sprintf("--%s %q: want [host]:port", name, val))
			continue
		}
		if name == "addr" {
			addrFlag = true
			if ep, ok := env["API_PORT"]; ok && ep != p {
				problems = append(problems, fmt.Sprintf("--addr %s and API_PORT=%s disagree (the flag wins)", val, ep))
			}
		}
		ports = append(ports, n)
	}
	if !addrFlag && (role == "api" || role == "serve") {
		p := 8080
		if ep := env["API_PORT"]; ep != "" {
			n, err := strconv.Atoi(ep)
			if err != nil {
				problems = append(problems, fmt.Sprintf("API_PORT=%q is not a port", ep))
			}
			p = n
		}
		ports = append(ports, p)
	}
	return ports, problems
}

// ---- Compose ----------------------------------------------------------------

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)

// composeDefault resolves ${VAR:-default} and ${VAR-default} to the default,
// and every other interpolation to "" (its value is unknown offline).
func composeDefault(s string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] == ":-" || sub[2] == "-" {
			return sub[3]
		}
		return ""
	})
}

// composeEnv reads a service's environment, in map or list form.
func composeEnv(v any) (map[string]string, error) {
	env := map[string]string{}
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for k, val := range x {
			env[k] = composeDefault(scalar(val))
		}
	case []any:
		for _, e := range x {
			k, val, _ := strings.Cut(scalar(e), "=")
			env[k] = composeDefault(val)
		}
	default:
		return nil, fmt.Errorf("environment is %T, want a mapping or a list", v)
	}
	return env, nil
}

// composeContainerPorts returns the container side of expose and ports.
func composeContainerPorts(svc map[string]any) map[int]bool {
	out := map[int]bool{}
	for _, e := range getList(svc, "expose") {
		if n, err := strconv.Atoi(strings.Split(scalar(e), "/")[0]); err == nil {
			out[n] = true
		}
	}
	for _, e := range getList(svc, "ports") {
		var target string
		if m, ok := e.(map[string]any); ok {
			target = scalar(m["target"])
		} else {
			parts := strings.Split(composeDefault(scalar(e)), ":")
			target = strings.Split(parts[len(parts)-1], "/")[0]
		}
		if n, err := strconv.Atoi(target); err == nil {
			out[n] = true
		}
	}
	return out
}

// result is what a check found: its problems, and the ports dynaprice
// processes listen on (the Dockerfile must EXPOSE them).
type result struct {
	problems []string
	listen   map[int]bool
	// invocations are the dynaprice command lines found (after the
	// entrypoint), for TestManifestFlagsAccepted.
	invocations []invocation
}

type invocation struct {
	where string
	argv  []string
}

func (r *result) addf(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *result) add(prefix string, problems ...string) {
	for _, p := range problems {
		if p != "" {
			r.problems = append(r.problems, prefix+": "+p)
		}
	}
}

// checkCompose checks docker-compose.yml. dir is the directory holding it
// (build contexts are relative to it).
func checkCompose(data []byte, dir string) result {
	r := result{listen: map[int]bool{}}
	docs, err := parseDocs(data)
	if err != nil {
		r.addf("docker-compose.yml: %v", err)
		return r
	}
	if len(docs) != 1 {
		r.addf("docker-compose.yml: %d documents, want 1", len(docs))
		return r
	}
	services := getMap(docs[0], "services")
	if len(services) == 0 {
		r.addf("docker-compose.yml: no services")
		return r
	}
	roles := map[string][]string{}  // dynaprice role -> services
	thirdParty := map[string]bool{} // image repository base names
	hasHealthcheck := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if hc := getMap(services[name], "healthcheck"); hc != nil && hc["disable"] != true {
			t := stringList(hc["test"])
			hasHealthcheck[name] = len(t) > 0 && t[0] != "NONE"
		}
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc, _ := services[name].(map[string]any)
		where := "docker-compose.yml: service " + name
		if svc == nil {
			r.addf("%s: not a mapping", where)
			continue
		}
		image := composeDefault(getStr(svc, "image"))
		build := svc["build"]
		if build != nil || isDynaprice(image) {
			if build != nil {
				ctx, dockerfile := scalar(build), "Dockerfile"
				if b, ok := build.(map[string]any); ok {
					ctx = scalar(b["context"])
					if d := scalar(b["dockerfile"]); d != "" {
						dockerfile = d
					}
				}
				if _, err := os.Stat(filepath.Join(dir, ctx, dockerfile)); err != nil {
					r.addf("%s: build: %v", where, err)
				}
			}
			if image != "" {
				r.add(where, pinned(image))
			}
			var args []string
			for _, a := range stringList(svc["command"]) {
				args = append(args, composeDefault(a))
			}
			role, argv, problems := checkInvocation(stringList(svc["entrypoint"]), args)
			r.add(where, problems...)
			r.invocations = append(r.invocations, invocation{where, argv})
			roles[role] = append(roles[role], name)
			if svc["env_file"] != nil {
				r.addf("%s: env_file cannot be checked offline; set variables under environment", where)
			}
			env, err := composeEnv(svc["environment"])
			if err != nil {
				r.addf("%s: %v", where, err)
			}
			for _, k := range slices.Sorted(maps.Keys(env)) {
				r.add(where, checkEnvName(k))
			}
			ports, problems := listenPorts(role, argv, env)
			r.add(where, problems...)
			exposed := composeContainerPorts(svc)
			for _, p := range ports {
				r.listen[p] = true
				if !exposed[p] {
					r.addf("%s: listens on %d but neither expose nor ports has it", where, p)
				}
			}
			if hasHealthcheck[name] {
				r.addf("%s: has a healthcheck, but the distroless image has no shell or tool to run one", where)
			}
		} else {
			r.add(where, pinned(image))
			repo, _, _ := splitImage(image)
			thirdParty[path.Base(repo)] = true
			if !hasHealthcheck[name] {
				r.addf("%s: no healthcheck (dynaprice services wait for it to be healthy)", where)
			}
		}
		switch deps := svc["depends_on"].(type) {
		case nil:
		case []any:
			for _, d := range deps {
				if services[scalar(d)] == nil {
					r.addf("%s: depends on %q, which is not a service", where, scalar(d))
				}
			}
		case map[string]any:
			for _, d := range slices.Sorted(maps.Keys(deps)) {
				dep := getMap(services, d)
				cond := getStr(deps[d], "condition")
				switch {
				case dep == nil:
					r.addf("%s: depends on %q, which is not a service", where, d)
				case cond == "service_healthy" && !hasHealthcheck[d]:
					r.addf("%s: waits for %s to be healthy, but %s has no healthcheck", where, d, d)
				case cond == "service_completed_successfully":
					if rs := getStr(dep, "restart"); rs != "" && rs != "no" {
						r.addf("%s: waits for %s to complete, but %s restarts (%s)", where, d, d, rs)
					}
				case cond == "", cond == "service_started", cond == "service_healthy":
				default:
					r.addf("%s: depends on %s with condition %q", where, d, cond)
				}
			}
		default:
			r.addf("%s: depends_on is %T", where, deps)
		}
	}
	// The stack the deployment docs describe.
	for _, img := range []string{"kafka", "redis", "postgres"} {
		if !thirdParty[img] {
			r.addf("docker-compose.yml: no %s service", img)
		}
	}
	for role, want := range map[string]int{"migrate": 1, "engine": 2, "api": 1, "loadgen": 1} {
		if len(roles[role]) < want {
			r.addf("docker-compose.yml: %d services run %q, want at least %d", len(roles[role]), role, want)
		}
	}
	for _, name := range roles["loadgen"] {
		if len(getList(services[name], "profiles")) == 0 {
			r.addf("docker-compose.yml: service %s runs loadgen without a profile: it would start with the stack", name)
		}
	}
	for _, role := range []string{"engine", "api"} {
		for _, name := range roles[role] {
			ok := false
			for _, m := range roles["migrate"] {
				ok = ok || getStr(services[name], "depends_on", m, "condition") == "service_completed_successfully"
			}
			if !ok {
				r.addf("docker-compose.yml: service %s does not wait for the migration to complete", name)
			}
		}
	}
	return r
}

// ---- Kubernetes -------------------------------------------------------------

type object struct {
	file, kind, name string
	doc              map[string]any
}

func (o object) String() string { return o.file + ": " + o.kind + "/" + o.name }

// deployment is what Services and PodDisruptionBudgets are checked against.
type deployment struct {
	obj       object
	role      string
	labels    map[string]any
	portNames map[string]int
	ports     map[int]bool
}

// podSpec returns the pod template's spec of a workload, nil for others.
func podSpec(o object) map[string]any {
	switch o.kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
		return getMap(o.doc, "spec", "template", "spec")
	case "CronJob":
		return getMap(o.doc, "spec", "jobTemplate", "spec", "template", "spec")
	}
	return nil
}

// checkK8s checks the kustomization directory given as file name -> content.
func checkK8s(files map[string][]byte) result {
	r := result{listen: map[int]bool{}}

	// kustomization.yaml lists exactly the files present.
	kdocs, err := parseDocs(files["kustomization.yaml"])
	if err != nil || len(kdocs) != 1 {
		r.addf("kustomization.yaml: want one document (err %v)", err)
		return r
	}
	kust := kdocs[0]
	listed := map[string]bool{}
	for _, res := range stringList(kust["resources"]) {
		if listed[res] {
			r.addf("kustomization.yaml: %s is listed twice", res)
		}
		listed[res] = true
		if files[res] == nil {
			r.addf("kustomization.yaml: lists %s, which does not exist", res)
		}
	}
	for name := range files {
		if name != "kustomization.yaml" && !listed[name] {
			r.addf("kustomization.yaml: does not list %s", name)
		}
	}

	// Every object.
	var objs []object
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if name == "kustomization.yaml" {
			continue
		}
		docs, err := parseDocs(files[name])
		if err != nil {
			r.addf("%s: %v", name, err)
			continue
		}
		if len(docs) == 0 {
			r.addf("%s: no objects", name)
		}
		for i, d := range docs {
			o := object{file: name, kind: getStr(d, "kind"), name: getStr(d, "metadata", "name"), doc: d}
			if getStr(d, "apiVersion") == "" || o.kind == "" || o.name == "" {
				r.addf("%s: document %d needs apiVersion, kind and metadata.name", name, i+1)
				continue
			}
			if seen[o.kind+"/"+o.name] {
				r.addf("%s: %s/%s is defined twice", name, o.kind, o.name)
			}
			seen[o.kind+"/"+o.name] = true
			objs = append(objs, o)
		}
	}

	ns := getStr(kust, "namespace")
	images := map[string]map[string]any{}
	for _, im := range getList(kust, "images") {
		m, _ := im.(map[string]any)
		images[scalar(m["name"])] = m
	}
	// transform applies the kustomization's images: entries.
	transform := func(ref string) string {
		repo, tag, digest := splitImage(ref)
		m := images[repo]
		if m == nil {
			return ref
		}
		if n := scalar(m["newName"]); n != "" {
			repo = n
		}
		if t := scalar(m["newTag"]); t != "" {
			tag = t
		}
		if d := scalar(m["digest"]); d != "" {
			digest = d
		}
		out := repo
		if tag != "" {
			out += ":" + tag
		}
		if digest != "" {
			out += "@" + digest
		}
		return out
	}

	configMaps := map[string]map[string]string{} // name -> data
	secrets := map[string]map[string]bool{}      // name -> keys
	for _, o := range objs {
		if o.kind == "Namespace" && o.name != ns {
			r.addf("%s: the kustomization's namespace is %q", o, ns)
		}
		if n := getStr(o.doc, "metadata", "namespace"); n != "" && n != ns {
			r.addf("%s: namespace %q, the kustomization's is %q", o, n, ns)
		}
		switch o.kind {
		case "ConfigMap":
			data := map[string]string{}
			for k, v := range getMap(o.doc, "data") {
				data[k] = scalar(v)
			}
			configMaps[o.name] = data
		case "Secret":
			keys := map[string]bool{}
			for _, f := range []string{"data", "stringData"} {
				for k := range getMap(o.doc, f) {
					keys[k] = true
				}
			}
			secrets[o.name] = keys
		}
	}
	if ns == "" {
		r.addf("kustomization.yaml: no namespace")
	}

	var deployments []deployment
	for _, o := range objs {
		spec := podSpec(o)
		if spec == nil {
			continue
		}
		dep := deployment{obj: o, portNames: map[string]int{}, ports: map[int]bool{},
			labels: getMap(o.doc, "spec", "template", "metadata", "labels")}
		if o.kind == "Deployment" {
			if !labelsMatch(getMap(o.doc, "spec", "selector", "matchLabels"), dep.labels) {
				r.addf("%s: spec.selector.matchLabels does not match the pod template's labels", o)
			}
		}
		main := getList(spec, "containers")
		if len(main) == 0 {
			r.addf("%s: no containers", o)
		}
		all := append(slices.Clone(main), getList(spec, "initContainers")...)
		for i, c := range all {
			isInit := i >= len(main)
			cname := getStr(c, "name")
			where := fmt.Sprintf("%s: container %s", o, cname)
			image := getStr(c, "image")
			if p := pinned(transform(image)); p != "" {
				r.addf("%s: %s (after the kustomization's images)", where, p)
			}
			dyn := isDynaprice(image) || isDynaprice(transform(image))

			// References to ConfigMaps and Secrets, and the variables set.
			env := map[string]string{} // name -> value where known
			for _, ef := range getList(c, "envFrom") {
				prefix := getStr(ef, "prefix")
				if ref := getMap(ef, "configMapRef"); ref != nil {
					data, ok := configMaps[scalar(ref["name"])]
					if !ok && ref["optional"] != true {
						r.addf("%s: envFrom ConfigMap %q is not among the kustomization's resources", where, scalar(ref["name"]))
					}
					for k, v := range data {
						env[prefix+k] = v
					}
				}
				if ref := getMap(ef, "secretRef"); ref != nil {
					keys, ok := secrets[scalar(ref["name"])]
					if !ok && ref["optional"] != true {
						r.addf("%s: envFrom Secret %q is not among the kustomization's resources", where, scalar(ref["name"]))
					}
					for k := range keys {
						env[prefix+k] = ""
					}
				}
			}
			for _, e := range getList(c, "env") {
				name := getStr(e, "name")
				env[name] = getStr(e, "value")
				if ref := getMap(e, "valueFrom", "configMapKeyRef"); ref != nil {
					data, ok := configMaps[scalar(ref["name"])]
					_, hasKey := data[scalar(ref["key"])]
					if ref["optional"] != true && (!ok || !hasKey) {
						r.addf("%s: %s: ConfigMap %q key %q is not among the kustomization's resources", where, name, scalar(ref["name"]), scalar(ref["key"]))
					}
					env[name] = data[scalar(ref["key"])]
				}
				if ref := getMap(e, "valueFrom", "secretKeyRef"); ref != nil {
					keys, ok := secrets[scalar(ref["name"])]
					if ref["optional"] != true && (!ok || !keys[scalar(ref["key"])]) {
						r.addf("%s: %s: Secret %q key %q is not among the kustomization's resources", where, name, scalar(ref["name"]), scalar(ref["key"]))
					}
				}
			}

			// Ports and probes.
			portNames, ports := map[string]int{}, map[int]bool{}
			for _, p := range getList(c, "ports") {
				n, err := strconv.Atoi(getStr(p, "containerPort"))
				if err != nil {
					r.addf("%s: containerPort %q", where, getStr(p, "containerPort"))
					continue
				}
				ports[n] = true
				dep.ports[n] = true
				if name := getStr(p, "name"); name != "" {
					portNames[name] = n
					dep.portNames[name] = n
				}
			}
			var listen []int
			if dyn {
				role, argv, problems := checkInvocation(stringList(get(c, "command")), stringList(get(c, "args")))
				r.add(where, problems...)
				r.invocations = append(r.invocations, invocation{where, argv})
				if !isInit && dep.role == "" {
					dep.role = role
				}
				for _, k := range slices.Sorted(maps.Keys(env)) {
					r.add(where, checkEnvName(k))
				}
				listen, problems = listenPorts(role, argv, env)
				r.add(where, problems...)
				for _, p := range listen {
					r.listen[p] = true
					if !ports[p] {
						r.addf("%s: listens on %d, which is not a containerPort", where, p)
					}
				}
			}
			for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				pr := getMap(c, probe)
				if pr == nil {
					if !isInit && probe != "startupProbe" && o.kind == "Deployment" {
						r.addf("%s: no %s", where, probe)
					}
					continue
				}
				var port any
				for _, h := range []string{"httpGet", "tcpSocket", "grpc"} {
					if p := get(pr, h, "port"); p != nil {
						port = p
					}
				}
				if port == nil {
					if get(pr, "exec") != nil && dyn {
						r.addf("%s: %s runs a command, but the distroless image has no shell or tools", where, probe)
					}
					continue
				}
				n, err := strconv.Atoi(scalar(port))
				if err != nil {
					var ok bool
					if n, ok = portNames[scalar(port)]; !ok {
						r.addf("%s: %s probes port %q, which no containerPort is named", where, probe, scalar(port))
						continue
					}
				} else if !ports[n] {
					r.addf("%s: %s probes port %d, which is not a containerPort", where, probe, n)
					continue
				}
				if dyn && !slices.Contains(listen, n) {
					r.addf("%s: %s probes port %d, but dynaprice listens on %v", where, probe, n, listen)
				}
			}
		}
		// docs/DEPLOY.md applies the migration first with the selector
		// 'app.kubernetes.io/component notin (engine,api)'.
		if comp := getStr(o.doc, "metadata", "labels", componentLabel); (dep.role == "engine" || dep.role == "api") && comp != dep.role {
			r.addf("%s: runs %s but its %s label is %q", o, dep.role, componentLabel, comp)
		} else if dep.role == "migrate" && (comp == "engine" || comp == "api") {
			r.addf("%s: runs migrate but its %s label is %q", o, componentLabel, comp)
		}
		if o.kind == "Deployment" && dep.role != "" && get(spec, "terminationGracePeriodSeconds") == nil {
			r.addf("%s: set terminationGracePeriodSeconds (graceful shutdown)", o)
		}
		if o.kind == "Deployment" {
			deployments = append(deployments, dep)
		}
	}

	// Services and PodDisruptionBudgets select a Deployment's pods.
	selectDeployment := func(selector map[string]any) *deployment {
		for i := range deployments {
			if labelsMatch(selector, deployments[i].labels) {
				return &deployments[i]
			}
		}
		return nil
	}
	served, budgeted := map[string]bool{}, map[string]bool{}
	for _, o := range objs {
		switch o.kind {
		case "Service":
			d := selectDeployment(getMap(o.doc, "spec", "selector"))
			if d == nil {
				r.addf("%s: selects no Deployment's pods", o)
				continue
			}
			served[d.role] = true
			if comp := getStr(o.doc, "metadata", "labels", componentLabel); comp != d.role {
				r.addf("%s: selects the %s pods but its %s label is %q", o, d.role, componentLabel, comp)
			}
			for _, p := range getList(o.doc, "spec", "ports") {
				target := getStr(p, "targetPort")
				if target == "" {
					target = getStr(p, "port")
				}
				n, err := strconv.Atoi(target)
				if err != nil {
					var ok bool
					if n, ok = d.portNames[target]; !ok {
						r.addf("%s: targetPort %q is not a named port of %s", o, target, d.obj)
						continue
					}
				}
				if !d.ports[n] {
					r.addf("%s: targetPort %s is not a containerPort of %s", o, target, d.obj)
				}
			}
		case "PodDisruptionBudget":
			d := selectDeployment(getMap(o.doc, "spec", "selector", "matchLabels"))
			if d == nil {
				r.addf("%s: selects no Deployment's pods", o)
				continue
			}
			budgeted[d.role] = true
			if comp := getStr(o.doc, "metadata", "labels", componentLabel); comp != d.role {
				r.addf("%s: selects the %s pods but its %s label is %q", o, d.role, componentLabel, comp)
			}
		}
	}

	// What the deployment docs promise.
	roles := map[string]bool{}
	for _, d := range deployments {
		roles[d.role] = true
	}
	for _, role := range []string{"engine", "api"} {
		if !roles[role] {
			r.addf("no Deployment runs %q", role)
		}
	}
	if !budgeted["engine"] {
		r.addf("no PodDisruptionBudget covers the engines")
	}
	if !served["api"] {
		r.addf("no Service in front of the api")
	}
	migrate := false
	for _, o := range objs {
		if o.kind == "Job" {
			for _, c := range getList(podSpec(o), "containers") {
				args := stringList(get(c, "args"))
				migrate = migrate || (len(args) > 0 && args[0] == "migrate")
			}
		}
	}
	if !migrate {
		r.addf("no Job runs migrate")
	}
	return r
}

// ---- Dockerfile -------------------------------------------------------------

// dockerfileLines returns the instructions of a Dockerfile, continuation
// lines joined, comments dropped.
func dockerfileLines(data []byte) []string {
	var out []string
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasSuffix(t, `\`) {
			cur += strings.TrimSuffix(t, `\`) + " "
			continue
		}
		cur += t
		if strings.TrimSpace(cur) != "" {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

var goLine = regexp.MustCompile(`(?m)^go\s+(\d+)\.(\d+)`)
var majorMinor = regexp.MustCompile(`^(\d+)\.(\d+)`)

// checkDockerfile checks the Dockerfile against go.mod and the ports the
// manifests' dynaprice processes listen on.
func checkDockerfile(dockerfile, gomod []byte, listen map[int]bool) []string {
	var problems []string
	m := goLine.FindSubmatch(gomod)
	if m == nil {
		return []string{"go.mod: no go line"}
	}
	goVersion := string(m[1]) + "." + string(m[2])

	stages := map[string]bool{}
	var builderVersion, binary string
	var final []string // instructions of the last stage
	fromCount, copyGoMod, modDownload, copyAll, goBuild := 0, -1, -1, -1, -1
	for i, line := range dockerfileLines(dockerfile) {
		instr, rest, _ := strings.Cut(line, " ")
		fields := strings.Fields(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			fromCount++
			final = nil
			var args []string
			for _, f := range fields {
				if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			if len(args) == 0 {
				problems = append(problems, "Dockerfile: FROM without an image")
				continue
			}
			if !stages[args[0]] {
				if p := pinned(args[0]); p != "" {
					problems = append(problems, "Dockerfile: "+p)
				}
				repo, tag, _ := splitImage(args[0])
				if path.Base(repo) == "golang" && builderVersion == "" {
					builderVersion = majorMinor.FindString(tag)
				}
			}
			if len(args) == 3 && strings.EqualFold(args[1], "AS") {
				stages[args[2]] = true
			}
		case "COPY":
			if slices.Contains(fields, "go.mod") && slices.Contains(fields, "go.sum") {
				copyGoMod = i
			}
			if len(fields) == 2 && fields[0] == "." {
				copyAll = i
			}
		case "RUN":
			if strings.Contains(rest, "go mod download") {
				modDownload = i
			}
			if strings.Contains(rest, "go build") {
				goBuild = i
				if !slices.Contains(fields, "./cmd/dynaprice") {
					problems = append(problems, "Dockerfile: go build does not build ./cmd/dynaprice")
				}
				if !strings.Contains(rest, "CGO_ENABLED=0") {
					problems = append(problems, "Dockerfile: go build without CGO_ENABLED=0 (the final image has no C library)")
				}
				if j := slices.Index(fields, "-o"); j >= 0 && j+1 < len(fields) {
					binary = fields[j+1]
				}
			}
		}
		final = append(final, line)
	}
	switch {
	case builderVersion == "":
		problems = append(problems, "Dockerfile: no golang:<major.minor> builder stage")
	case builderVersion != goVersion:
		problems = append(problems, fmt.Sprintf("Dockerfile: builder is Go %s, go.mod says go %s", builderVersion, goVersion))
	}
	if fromCount < 2 {
		problems = append(problems, "Dockerfile: want a multi-stage build")
	}
	if goBuild < 0 {
		problems = append(problems, "Dockerfile: no go build")
	}
	if copyGoMod < 0 || modDownload < copyGoMod || copyAll < modDownload || goBuild < copyAll {
		problems = append(problems, "Dockerfile: want COPY go.mod go.sum, RUN go mod download, COPY . ., RUN go build, in that order (module download in its own layer)")
	}

	// The final stage: the binary, the entrypoint, the ports.
	var entrypoint []string
	copied, exposed := false, map[int]bool{}
	for _, line := range final {
		instr, rest, _ := strings.Cut(line, " ")
		fields := strings.Fields(rest)
		switch strings.ToUpper(instr) {
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				problems = append(problems, "Dockerfile: ENTRYPOINT is not in exec (JSON) form")
			}
		case "COPY":
			if len(fields) >= 2 && binary != "" && slices.Contains(fields[:len(fields)-1], binary) && fields[len(fields)-1] == "/dynaprice" {
				copied = true
			}
		case "EXPOSE":
			for _, f := range fields {
				if n, err := strconv.Atoi(strings.Split(f, "/")[0]); err == nil {
					exposed[n] = true
				}
			}
		}
	}
	if !slices.Equal(entrypoint, []string{"/dynaprice"}) {
		problems = append(problems, fmt.Sprintf("Dockerfile: ENTRYPOINT is %q, want [\"/dynaprice\"] (manifests pass the role as the first argument)", entrypoint))
	}
	if !copied {
		problems = append(problems, fmt.Sprintf("Dockerfile: the final stage does not copy the built binary %q to /dynaprice", binary))
	}
	for _, p := range slices.Sorted(maps.Keys(listen)) {
		if !exposed[p] {
			problems = append(problems, fmt.Sprintf("Dockerfile: the manifests listen on %d but the image does not EXPOSE it", p))
		}
	}
	return problems
}

// ---- .dockerignore ----------------------------------------------------------

// ignorePattern is one line of .dockerignore, compiled.
type ignorePattern struct {
	text   string
	negate bool
	re     *regexp.Regexp
}

// parseDockerignore compiles .dockerignore with Docker's rules: paths are
// relative to the context root, * and ? do not cross /, ** crosses any
// number of directories, a leading ! re-includes, the last match wins.
func parseDockerignore(data []byte) ([]ignorePattern, error) {
	var out []ignorePattern
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{text: line}
		if strings.HasPrefix(line, "!") {
			p.negate, line = true, strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				b.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				b.WriteString(".*")
				i++
			case c == '*':
				b.WriteString("[^/]*")
			case c == '?':
				b.WriteString("[^/]")
			case c == '[':
				j := strings.IndexByte(line[i:], ']')
				if j < 0 {
					return nil, fmt.Errorf("%q: unterminated [", p.text)
				}
				b.WriteString(line[i : i+j+1])
				i += j
			case c == '\\' && i+1 < len(line):
				i++
				b.WriteString(regexp.QuoteMeta(line[i : i+1]))
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		b.WriteString("$")
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, fmt.Errorf("%q: %v", p.text, err)
		}
		p.re = re
		out = append(out, p)
	}
	return out, nil
}

// ignored reports whether file (slash-separated, relative to the context)
// is left out of the build context: a pattern matching it or one of its
// parent directories excludes it.
func ignored(patterns []ignorePattern, file string) bool {
	out := false
	for _, p := range patterns {
		for dir := file; dir != "." && dir != "/" && dir != ""; dir = path.Dir(dir) {
			if p.re.MatchString(dir) {
				out = !p.negate
				break
			}
		}
	}
	return out
}

func checkDockerignore(data []byte, needed []string) []string {
	patterns, err := parseDockerignore(data)
	if err != nil {
		return []string{".dockerignore: " + err.Error()}
	}
	var problems []string
	for _, f := range needed {
		if ignored(patterns, f) {
			problems = append(problems, fmt.Sprintf(".dockerignore excludes %s, which go build ./cmd/dynaprice reads", f))
		}
	}
	return problems
}

// buildInputs lists the files of this module that `go build ./cmd/dynaprice`
// reads for the image (linux, CGO_ENABLED=0): go.mod, go.sum, the Go files
// and the go:embed'ed files of every package of the module it imports.
func buildInputs(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/dynaprice")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Module              *struct{ Main bool }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return files
}

// ---- reading the real files ---------------------------------------------------

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
	entries, err := os.ReadDir("k8s")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		files[e.Name()] = readFile(t, filepath.Join("k8s", e.Name()))
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

// ---- tests ------------------------------------------------------------------

func TestEveryYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		n++
		docs, err := parseDocs(readFile(t, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if len(docs) == 0 {
			t.Errorf("%s: no documents", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("found %d YAML files under deploy/, want docker-compose.yml and k8s/*.yaml", n)
	}
}

func TestCompose(t *testing.T) {
	report(t, checkCompose(readFile(t, "docker-compose.yml"), ".").problems)
}

func TestKubernetes(t *testing.T) {
	report(t, checkK8s(k8sFiles(t)).problems)
}

func TestDockerfile(t *testing.T) {
	listen := map[int]bool{}
	maps.Copy(listen, checkCompose(readFile(t, "docker-compose.yml"), ".").listen)
	maps.Copy(listen, checkK8s(k8sFiles(t)).listen)
	if len(listen) == 0 {
		t.Fatal("no listen ports found in the manifests")
	}
	report(t, checkDockerfile(readFile(t, "../Dockerfile"), readFile(t, "../go.mod"), listen))
}

func TestDockerignore(t *testing.T) {
	data := readFile(t, "../.dockerignore")
	patterns, err := parseDockerignore(data)
	if err != nil {
		t.Fatal(err)
	}
	// The matcher itself, on paths whose fate is known.
	for file, want := range map[string]bool{
		".git/HEAD":                          true,
		"web/node_modules/vite/package.json": true,
		"dynaprice-data/store.db":            true,
		"go.mod":                             false,
		"internal/dashboard/dist/index.html": false,
		"cmd/dynaprice/main.go":              false,
	} {
		if got := ignored(patterns, file); got != want {
			t.Errorf("ignored(%s) = %v, want %v", file, got, want)
		}
	}
	needed := buildInputs(t)
	if !slices.ContainsFunc(needed, func(f string) bool { return strings.HasPrefix(f, "internal/dashboard/dist/") }) {
		t.Errorf("go list found no embedded dashboard files: %v", needed)
	}
	report(t, checkDockerignore(data, needed))
}

// TestManifestFlagsAccepted runs every dynaprice command line of the
// manifests with --help appended: the role's flag parsing must accept every
// flag and value before it (an unknown flag or a bad value exits 2) and then
// print its help and exit 0, without starting anything.
func TestManifestFlagsAccepted(t *testing.T) {
	var invs []invocation
	invs = append(invs, checkCompose(readFile(t, "docker-compose.yml"), ".").invocations...)
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

	type mutation struct {
		file     string // docker-compose.yml, Dockerfile, .dockerignore, go.mod or k8s/NAME
		old, new string // the first occurrence of old is replaced
		want     string // a reported problem contains this
	}
	for _, m := range []mutation{
		{"docker-compose.yml", "KAFKA_BROKERS:", "KAFKA_BROKER:", "KAFKA_BROKER,"},
		{"docker-compose.yml", "services:\n", "services:\n\t", "document 1"},
		{"k8s/api.yaml", "kind: Service\n", "kind: Service\n  : [\n", "api.yaml: document 2"},
		{"docker-compose.yml", `command: ["engine"`, `command: ["engines"`, `"engines"`},
		{"docker-compose.yml", "image: redis:7.4-alpine", "image: redis", "has no tag"},
		{"docker-compose.yml", "image: postgres:16-alpine", "image: postgres:latest", "latest"},
		{"docker-compose.yml", "condition: service_completed_successfully", "condition: service_started", "migration"},
		{"docker-compose.yml", `"--metrics-addr", ":9090"`, `"--metrics-addr", ":9999"`, "listens on 9999"},
		{"docker-compose.yml", `profiles: ["load"]`, ``, "without a profile"},
		{"k8s/engine.yaml", "- name: DATABASE_URL", "- name: DATABASE_URI", "DATABASE_URI"},
		{"k8s/engine.yaml", "livenessProbe:", "livenessProbeOff:", "no livenessProbe"},
		{"k8s/engine.yaml", "readinessProbe:", "readinessProbeOff:", "no readinessProbe"},
		{"k8s/engine.yaml", "containerPort: 9090", "containerPort: 9091", "not a containerPort"},
		{"k8s/engine.yaml", `"--metrics-addr", ":9090"`, `"--metrics-addr", ":9091"`, "listens on 9091"},
		{"k8s/engine.yaml", "name: dynaprice-config", "name: dynaprice-settings", `"dynaprice-settings"`},
		{"k8s/api.yaml", "port: http", "port: 8081", "probes port 8081"},
		{"k8s/api.yaml", `args: ["api"`, `args: ["apiserver"`, `"apiserver"`},
		{"k8s/api.yaml", "targetPort: http", "targetPort: web", `targetPort "web"`},
		{"k8s/api.yaml", "key: ADMIN_API_KEY", "key: ADMIN_KEY", `"ADMIN_KEY"`},
		{"k8s/configmap.yaml", "REDIS_ADDR:", "REDIS_ADRR:", "REDIS_ADRR"},
		{"k8s/secret.example.yaml", "name: dynaprice-secrets", "name: dynaprice-secret", `"dynaprice-secrets"`},
		{"k8s/kustomization.yaml", "  - pdb.yaml\n", "", "does not list pdb.yaml"},
		{"k8s/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - missing.yaml\n", "missing.yaml, which does not exist"},
		{"k8s/kustomization.yaml", `newTag: "0.1.0"`, `newTag: latest`, "latest"},
		{"k8s/pdb.yaml", "      app.kubernetes.io/component: engine\n", "      app.kubernetes.io/component: engines\n", "PodDisruptionBudget"},
		{"k8s/engine.yaml", "terminationGracePeriodSeconds: 30", "", "terminationGracePeriodSeconds"},
		{"k8s/engine.yaml", "  labels:\n    app.kubernetes.io/name: dynaprice\n    app.kubernetes.io/component: engine\n", "  labels:\n    app.kubernetes.io/name: dynaprice\n", "label"},
		{"k8s/pdb.yaml", "    app.kubernetes.io/component: engine\n", "    app.kubernetes.io/component: migrate\n", "selects the engine pods"},
		{"Dockerfile", "FROM golang:1.26", "FROM golang:1.25", "go.mod says"},
		{"go.mod", "\ngo 1.26", "\ngo 1.27", "go.mod says"},
		{"Dockerfile", "-o /dynaprice ./cmd/dynaprice", "-o /dynaprice ./cmd/other", "./cmd/dynaprice"},
		{"Dockerfile", `ENTRYPOINT ["/dynaprice"]`, `ENTRYPOINT ["/bin/dynaprice"]`, "ENTRYPOINT"},
		{"Dockerfile", "EXPOSE 8080 9090", "EXPOSE 8080", "EXPOSE it"},
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
				problems = checkCompose(mutate(compose), ".").problems
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
