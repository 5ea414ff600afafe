package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/e2e/internal/shipcheck"
)

// Variables the Azure workload identity webhook sets in a pod labelled azure.workload.identity/use.
var workloadIdentityEnv = []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"}

const (
	workloadIdentityLabel    = "azure.workload.identity/use"
	workloadIdentityClientID = "azure.workload.identity/client-id"
)

// checkDeployment checks a deployment's collector configuration against the pod that runs it and
// returns the keys of the Secret it reads.
func checkDeployment(t *testing.T, d deployment, secret corev1.Secret) map[string]bool {
	t.Helper()
	require.Len(t, d.pod.Spec.Containers, 1)
	c := d.pod.Spec.Containers[0]
	cfg := collectorConfig{d.config}

	t.Run("validate", func(t *testing.T) { validateConfig(t, d.configText) })

	t.Run("ports and probes", func(t *testing.T) {
		listening := map[int32]string{}
		for _, l := range cfg.listeners(t) {
			if l.loopback {
				_, exposed := containerPort(c, fmt.Sprint(l.port))
				assert.False(t, exposed, "%s listens on loopback %s, unreachable through container port %d", l.component, l.endpoint, l.port)
				continue
			}
			listening[l.port] = l.component
		}
		var declared []int32
		for _, p := range c.Ports {
			declared = append(declared, p.ContainerPort)
			assert.LessOrEqual(t, len(p.Name), 15, "port name %q: at most 15 characters", p.Name)
			_, ok := listening[p.ContainerPort]
			assert.True(t, ok, "container port %s (%d): nothing in the configuration listens on it", p.Name, p.ContainerPort)
		}
		for port, component := range listening {
			assert.Contains(t, declared, port, "%s listens on %d: no container port declares it", component, port)
		}

		hc := cfg.extension(t, "health_check")
		hcPath := stringOr(hc.settings["path"], "/")
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
			if p == nil && name == "startup" {
				continue
			}
			require.NotNil(t, p, "%s probe", name)
			checkProbe(t, c, name, p, hc, hcPath)
		}
		require.NotNil(t, c.ReadinessProbe, "readiness probe")
		checkProbe(t, c, "readiness", c.ReadinessProbe, cfg.extension(t, "o365_readiness"), "/readiness")
	})

	t.Run("volumes", func(t *testing.T) {
		volumes := map[string]corev1.Volume{}
		for _, v := range d.pod.Spec.Volumes {
			volumes[v.Name] = v
		}
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			_, isVolume := volumes[m.Name]
			assert.True(t, isVolume || slices.Contains(d.claims, m.Name), "volume mount %s: no volume or claim template of that name", m.Name)
			mounted[m.Name] = true
		}
		for name := range volumes {
			assert.True(t, mounted[name], "volume %s is mounted", name)
		}
		for _, claim := range d.claims {
			assert.True(t, mounted[claim], "volume claim template %s is mounted", claim)
		}
		// What the collector writes lies on a writable mount; its state on one that outlives the pod.
		for _, w := range cfg.writtenPaths(t) {
			m := mountOf(c, w.path)
			require.NotNil(t, m, "%s writes %s: no volume is mounted there (the root filesystem is read-only)", w.component, w.path)
			assert.False(t, m.ReadOnly, "%s writes %s: mount %s is read-only", w.component, w.path, m.MountPath)
			if w.state {
				assert.Contains(t, d.claims, m.Name, "%s keeps state in %s: mount %s is not a PersistentVolumeClaim", w.component, w.path, m.MountPath)
			}
		}
	})

	usedKeys := map[string]bool{}
	t.Run("environment and secrets", func(t *testing.T) {
		refs := envRefs(d.configText)
		defined := map[string]bool{}
		for _, e := range c.Env {
			assert.False(t, defined[e.Name], "env %s twice", e.Name)
			defined[e.Name] = true
		}
		if d.pod.Labels[workloadIdentityLabel] == "true" {
			for _, name := range workloadIdentityEnv {
				defined[name] = true
			}
		}
		for _, ref := range refs {
			assert.True(t, defined[ref], "the configuration reads ${env:%s}: the container does not set it", ref)
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			assert.Equal(t, secret.Name, ref.Name, "env %s: the Secret of deploy/secret.example.yaml", e.Name)
			_, ok := secret.StringData[ref.Key]
			assert.True(t, ok, "env %s: key %s is not in deploy/secret.example.yaml", e.Name, ref.Key)
			assert.Contains(t, refs, e.Name, "env %s comes from the Secret but the configuration never reads it", e.Name)
			usedKeys[ref.Key] = true
		}
		assert.NotContains(t, d.configText, "-----BEGIN", "no key material in the configuration")
	})

	t.Run("workload identity", func(t *testing.T) {
		tenants := cfg.workloadIdentityTenants(t)
		require.NotEmpty(t, tenants, "a tenant with `workload_identity: {}`")
		assert.Equal(t, "true", d.pod.Labels[workloadIdentityLabel], "pod label %s", workloadIdentityLabel)
		assert.Equal(t, d.serviceAccount.Name, d.pod.Spec.ServiceAccountName, "the pod runs as the annotated ServiceAccount")
		for name, clientID := range tenants {
			assert.Equal(t, clientID, d.serviceAccount.Annotations[workloadIdentityClientID],
				"tenant %s: its client_id is the ServiceAccount's %s", name, workloadIdentityClientID)
		}
	})

	t.Run("delivery rules", func(t *testing.T) { cfg.checkDelivery(t, d.replicas) })

	t.Run("pod", func(t *testing.T) {
		psc := d.pod.Spec.SecurityContext
		require.NotNil(t, psc)
		require.NotNil(t, psc.RunAsNonRoot)
		assert.True(t, *psc.RunAsNonRoot, "runAsNonRoot")
		require.NotNil(t, psc.FSGroup, "fsGroup: the claim is writable by the collector's user")
		sc := c.SecurityContext
		require.NotNil(t, sc)
		require.NotNil(t, sc.ReadOnlyRootFilesystem)
		assert.True(t, *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
		require.NotNil(t, sc.AllowPrivilegeEscalation)
		assert.False(t, *sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation")

		limit, ok := c.Resources.Limits[corev1.ResourceMemory]
		require.True(t, ok, "a memory limit")
		var gomemlimit string
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				gomemlimit = e.Value
			}
		}
		require.NotEmpty(t, gomemlimit, "GOMEMLIMIT (README: about 80 %% of the memory limit)")
		assert.Less(t, parseGoMemLimit(t, gomemlimit), limit.Value(), "GOMEMLIMIT %s below the limit %s", gomemlimit, limit.String())

		repo, tag, ok := strings.Cut(d.image, ":")
		require.True(t, ok, "image %s has a tag", d.image)
		assert.True(t, strings.HasSuffix(repo, "/otelcol-o365"), "image %s", d.image)
		assert.Equal(t, distVersion(t), tag, "the image tag is the distribution's version (builder-config.yaml)")
	})

	t.Run("image contract", func(t *testing.T) {
		img := dockerfileImage(t)
		require.NotEmpty(t, c.Command, "the container names the binary")
		assert.Equal(t, img.entrypoint, c.Command[0], "the binary is where the Dockerfile's ENTRYPOINT has it")
		if img.uid != "" {
			require.NotNil(t, d.pod.Spec.SecurityContext.RunAsUser)
			assert.Equal(t, img.uid, fmt.Sprint(*d.pod.Spec.SecurityContext.RunAsUser), "runAsUser is the Dockerfile's USER")
		}
	})
	return usedKeys
}

// image is what the repository's Dockerfile builds, as far as a pod depends on it.
type image struct {
	entrypoint string // the program ENTRYPOINT runs
	uid        string // USER, when numeric
}

// dockerfileImage reads the final stage of the repository's Dockerfile; without one the image contract
// the deployments assume (the binary at /otelcol-o365, uid 10001) cannot be checked here.
func dockerfileImage(t *testing.T) image {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if os.IsNotExist(err) {
		t.Skip("no Dockerfile in this checkout: the image the deployments assume (/otelcol-o365, uid 10001) is not checked")
	}
	require.NoError(t, err)
	var img image
	for _, line := range strings.Split(string(raw), "\n") {
		instr, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			img = image{} // a new stage: only the last one is the image
		case "ENTRYPOINT":
			var argv []string
			require.NoError(t, json.Unmarshal([]byte(arg), &argv), "ENTRYPOINT in exec form: %s", arg)
			require.NotEmpty(t, argv)
			img.entrypoint = argv[0]
		case "USER":
			user, _, _ := strings.Cut(strings.TrimSpace(arg), ":")
			if _, err := strconv.Atoi(user); err == nil {
				img.uid = user
			}
		}
	}
	require.NotEmpty(t, img.entrypoint, "the Dockerfile's final stage has an ENTRYPOINT")
	return img
}

func checkProbe(t *testing.T, c corev1.Container, name string, p *corev1.Probe, target component, path string) {
	t.Helper()
	require.NotNil(t, p.HTTPGet, "%s probe: httpGet", name)
	port, ok := containerPort(c, p.HTTPGet.Port.String())
	require.True(t, ok, "%s probe: port %s is a container port", name, p.HTTPGet.Port.String())
	l := target.listener(t)
	assert.False(t, l.loopback, "%s probe: %s listens on loopback %s, which the kubelet cannot reach", name, target.id, l.endpoint)
	assert.Equal(t, l.port, port, "%s probe: the port %s listens on", name, target.id)
	assert.Equal(t, path, p.HTTPGet.Path, "%s probe: %s's path", name, target.id)
}

// mountOf is the container's mount that holds path (the longest mount path that is a prefix of it).
func mountOf(c corev1.Container, path string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if best == nil || len(m.MountPath) > len(best.MountPath) {
				best = &c.VolumeMounts[i]
			}
		}
	}
	return best
}

// envRefs are the environment variables the configuration reads.
func envRefs(text string) []string { return shipcheck.EnvRefs(text) }

// validateConfig runs the distribution's `validate` command on the configuration, in an environment
// holding only dummies for the variables it reads.
func validateConfig(t *testing.T, text string) {
	t.Helper()
	path := proctest.WriteFile(t, filepath.Join(t.TempDir(), "config.yaml"), text)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, name := range envRefs(text) {
		env = append(env, name+"="+shipcheck.ExampleValue(name))
	}
	cmd := exec.Command(proctest.Distribution(t), "validate", "--config="+path)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "otelcol-o365 validate:\n%s", out)
}

// distVersion is dist.version of builder-config.yaml.
func distVersion(t *testing.T) string {
	t.Helper()
	var b struct {
		Dist struct {
			Version string `yaml:"version"`
		} `yaml:"dist"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, filepath.Join(repoRoot, "builder-config.yaml")), &b))
	require.NotEmpty(t, b.Dist.Version)
	return b.Dist.Version
}

// collectorConfig is a parsed collector configuration.
type collectorConfig struct{ m map[string]any }

// component is one configured component: its id (type[/name]), type and settings.
type component struct {
	kind, id, typ string
	settings      map[string]any
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func stringOr(v any, def string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}

func asStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			out = append(out, fmt.Sprint(e))
		}
	}
	return out
}

func (c collectorConfig) service() map[string]any { return asMap(c.m["service"]) }

// active are the components of a kind (extensions, receivers, processors, exporters) that the
// service runs: listed in service.extensions or in a pipeline.
func (c collectorConfig) active(t *testing.T, kind string) []component {
	t.Helper()
	var ids []string
	if kind == "extensions" {
		ids = asStrings(c.service()["extensions"])
	} else {
		for _, p := range asMap(c.service()["pipelines"]) {
			for _, id := range asStrings(asMap(p)[kind]) {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	var out []component
	for _, id := range ids {
		settings, ok := asMap(c.m[kind])[id]
		require.True(t, ok, "service uses %s %s, which is not configured", kind, id)
		typ, _, _ := strings.Cut(id, "/")
		out = append(out, component{kind: kind, id: id, typ: typ, settings: asMap(settings)})
	}
	return out
}

// extension is the one active extension of a type.
func (c collectorConfig) extension(t *testing.T, typ string) component {
	t.Helper()
	var found []component
	for _, e := range c.active(t, "extensions") {
		if e.typ == typ {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "one active %s extension", typ)
	return found[0]
}

type listener struct {
	component, endpoint string
	port                int32
	loopback            bool
}

// Default endpoints of the listening components our deployments may run (each component's README).
var defaultEndpoints = map[string]string{
	"health_check":   "localhost:13133",
	"o365_readiness": "127.0.0.1:13134",
	"zpages":         "localhost:55679",
	"pprof":          "localhost:1777",
}

func (c component) listener(t *testing.T) listener {
	t.Helper()
	ep := stringOr(c.settings["endpoint"], defaultEndpoints[c.typ])
	require.NotEmpty(t, ep, "%s: endpoint", c.id)
	return parseListener(t, c.id, ep)
}

func parseListener(t *testing.T, id, ep string) listener {
	t.Helper()
	host, port, err := net.SplitHostPort(ep)
	require.NoError(t, err, "%s: endpoint %q", id, ep)
	var n int32
	_, err = fmt.Sscan(port, &n)
	require.NoError(t, err, "%s: endpoint %q", id, ep)
	ip := net.ParseIP(host)
	return listener{component: id, endpoint: ep, port: n, loopback: host == "localhost" || (ip != nil && ip.IsLoopback())}
}

// listeners are the servers the configuration starts: listening extensions, the receivers' protocol
// endpoints and the servers some of our exporters run.
func (c collectorConfig) listeners(t *testing.T) []listener {
	t.Helper()
	var out []listener
	for _, e := range c.active(t, "extensions") {
		if _, listens := defaultEndpoints[e.typ]; listens {
			out = append(out, e.listener(t))
		}
	}
	for _, r := range c.active(t, "receivers") {
		for _, p := range asMap(r.settings["protocols"]) {
			if ep := stringOr(asMap(p)["endpoint"], ""); ep != "" {
				out = append(out, parseListener(t, r.id, ep))
			}
		}
	}
	for _, e := range c.active(t, "exporters") {
		for _, key := range []string{"summary_server", "server"} {
			if ep := stringOr(asMap(e.settings[key])["endpoint"], ""); ep != "" && (e.typ == "o365_export" || e.typ == "o365_events") {
				out = append(out, parseListener(t, e.id, ep))
			}
		}
	}
	return out
}

type writtenPath struct {
	component, path string
	state           bool // must outlive the pod
}

// writtenPaths are the files and directories the active components write.
func (c collectorConfig) writtenPaths(t *testing.T) []writtenPath {
	t.Helper()
	var out []writtenPath
	for _, e := range c.active(t, "extensions") {
		switch e.typ {
		case "sql_storage":
			if stringOr(e.settings["driver"], "sqlite") == "sqlite" {
				out = append(out, writtenPath{e.id, stringOr(e.settings["path"], "./otelcol-o365-storage.db"), true})
			}
		case "file_storage":
			dir := stringOr(e.settings["directory"], "")
			require.NotEmpty(t, dir, "%s: directory", e.id)
			out = append(out, writtenPath{e.id, dir, true})
		}
	}
	for _, e := range c.active(t, "exporters") {
		switch e.typ {
		case "file":
			out = append(out, writtenPath{e.id, stringOr(e.settings["path"], ""), false})
		case "o365_export":
			out = append(out, writtenPath{e.id, stringOr(asMap(e.settings["directory"])["path"], ""), false})
		case "o365_events":
			out = append(out, writtenPath{e.id, stringOr(e.settings["path"], ""), true})
		}
	}
	for _, w := range out {
		require.True(t, filepath.IsAbs(w.path), "%s writes %q: an absolute path (the working directory is the image's)", w.component, w.path)
	}
	return out
}

// workloadIdentityTenants maps the o365 receivers' tenants that use workload identity to their client_id.
func (c collectorConfig) workloadIdentityTenants(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range c.active(t, "receivers") {
		if r.typ != "o365" {
			continue
		}
		for _, tenant := range r.settings["tenants"].([]any) {
			tm := asMap(tenant)
			if _, ok := tm["workload_identity"]; ok {
				out[stringOr(tm["name"], "")] = stringOr(tm["client_id"], "")
			}
		}
	}
	return out
}

// checkDelivery checks the rules of the receiver README's "Delivery guarantee and the pipeline" that
// every shipped configuration keeps (shipcheck), and what several replicas add: state in a storage
// extension, shared through Postgres, and exporter queues never in that shared database.
func (c collectorConfig) checkDelivery(t *testing.T, replicas int32) {
	t.Helper()
	assert.Empty(t, shipcheck.Violations(shipcheck.Config(c.m)))
	storage := map[string]component{}
	for _, e := range c.active(t, "extensions") {
		storage[e.id] = e
	}
	sharedDB := func(id string) bool {
		e, ok := storage[id]
		return ok && e.typ == "sql_storage" && e.settings["driver"] == "postgres"
	}
	var receivers int
	for _, r := range c.active(t, "receivers") {
		if r.typ != "o365" {
			continue
		}
		receivers++
		id := stringOr(r.settings["storage"], "")
		_, ok := storage[id]
		require.True(t, ok, "receiver %s: storage %q is an active extension", r.id, id)
		if replicas > 1 {
			assert.True(t, sharedDB(id), "receiver %s: %d replicas share tenants only through sql_storage on Postgres", r.id, replicas)
		}
	}
	require.Positive(t, receivers, "an o365 receiver runs")
	for _, e := range c.active(t, "exporters") {
		id := stringOr(asMap(e.settings["sending_queue"])["storage"], "")
		assert.False(t, sharedDB(id), "exporter %s: a queue in the shared database would be every replica's", e.id)
	}
}
