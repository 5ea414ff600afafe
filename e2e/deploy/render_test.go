package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// deployment is what one way of deploying (a kustomization, the Helm values) puts on the cluster, as
// far as the checks need it: the pod, its ServiceAccount and the collector configuration it runs.
type deployment struct {
	name     string
	replicas int32
	pod      corev1.PodTemplateSpec
	// claims are the StatefulSet's volumeClaimTemplates: volumes that outlive the pod.
	claims         []string
	serviceAccount corev1.ServiceAccount
	// configFiles are the files of the ConfigMap volumes by mount path (file path → content).
	configFiles map[string]string
	// config is the collector configuration the container's --config names, parsed.
	config     map[string]any
	configText string
	image      string
}

// renderKustomization runs kustomize on dir and decodes each object strictly into its API type.
func renderKustomization(t *testing.T, dir string) deployment {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	out, err := res.AsYaml()
	require.NoError(t, err)

	d := deployment{name: dir, configFiles: map[string]string{}}
	var sets []appsv1.StatefulSet
	var services []corev1.Service
	var accounts []corev1.ServiceAccount
	configMaps := map[string]corev1.ConfigMap{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		require.NoError(t, sigsyaml.Unmarshal(doc, &meta))
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 StatefulSet":
			sets = append(sets, decodeStrict[appsv1.StatefulSet](t, doc))
		case "v1 Service":
			services = append(services, decodeStrict[corev1.Service](t, doc))
		case "v1 ServiceAccount":
			accounts = append(accounts, decodeStrict[corev1.ServiceAccount](t, doc))
		case "v1 ConfigMap":
			cm := decodeStrict[corev1.ConfigMap](t, doc)
			configMaps[cm.Name] = cm
		default:
			t.Fatalf("%s: unexpected object %s %s", dir, meta.APIVersion, meta.Kind)
		}
	}
	require.Len(t, sets, 1, "one StatefulSet")
	require.Len(t, accounts, 1, "one ServiceAccount")
	ss := sets[0]
	d.replicas = *ss.Spec.Replicas
	d.pod = ss.Spec.Template
	d.serviceAccount = accounts[0]
	for _, c := range ss.Spec.VolumeClaimTemplates {
		d.claims = append(d.claims, c.Name)
	}

	// The selector selects the pods; the headless Service it names exists and selects them too.
	require.NotNil(t, ss.Spec.Selector)
	require.Subset(t, toPairs(d.pod.Labels), toPairs(ss.Spec.Selector.MatchLabels), "the selector matches the pod template")
	var governing *corev1.Service
	for i := range services {
		if services[i].Name == ss.Spec.ServiceName {
			governing = &services[i]
		}
	}
	require.NotNil(t, governing, "spec.serviceName %q names a Service", ss.Spec.ServiceName)
	require.Equal(t, corev1.ClusterIPNone, governing.Spec.ClusterIP, "a StatefulSet's governing Service is headless")
	for _, s := range services {
		require.Subset(t, toPairs(d.pod.Labels), toPairs(s.Spec.Selector), "Service %s selects the pods", s.Name)
		for _, p := range s.Spec.Ports {
			_, ok := containerPort(d.pod.Spec.Containers[0], p.TargetPort.String())
			require.True(t, ok, "Service %s port %s: targetPort %s is a container port", s.Name, p.Name, p.TargetPort.String())
		}
	}

	// ConfigMap volumes: kustomize's generated (hashed) names are the ones the pod mounts.
	require.Len(t, d.pod.Spec.Containers, 1)
	c := d.pod.Spec.Containers[0]
	d.image = c.Image
	for _, v := range d.pod.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm, ok := configMaps[v.ConfigMap.Name]
		require.True(t, ok, "volume %s: ConfigMap %s is rendered", v.Name, v.ConfigMap.Name)
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				for key, data := range cm.Data {
					d.configFiles[filepath.Join(m.MountPath, key)] = data
				}
			}
		}
	}
	d.parseConfig(t)
	return d
}

// decodeStrict decodes one YAML object into T, refusing unknown fields and wrong types.
func decodeStrict[T any](t *testing.T, doc []byte) T {
	t.Helper()
	var v T
	require.NoError(t, sigsyaml.UnmarshalStrict(doc, &v), "%s", firstLines(doc))
	return v
}

func firstLines(b []byte) string {
	lines := strings.SplitN(string(b), "\n", 6)
	return strings.Join(lines[:min(len(lines), 5)], "\n")
}

func toPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// parseConfig finds the configuration the container's --config argument names among the ConfigMap
// files, and parses it.
func (d *deployment) parseConfig(t *testing.T) {
	t.Helper()
	c := d.pod.Spec.Containers[0]
	var path string
	for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			require.Empty(t, path, "one --config")
			path = p
		}
	}
	require.NotEmpty(t, path, "the container has a --config= argument")
	text, ok := d.configFiles[path]
	require.True(t, ok, "--config=%s is a file of a mounted ConfigMap (have %v)", path, keys(d.configFiles))
	d.configText = text
	require.NoError(t, yaml.Unmarshal([]byte(text), &d.config), "%s", path)
	require.NotEmpty(t, d.config)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// containerPort resolves a probe's or a Service's port — a number or a container port's name.
func containerPort(c corev1.Container, port string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// readFile reads a file of the repository.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	return raw
}
