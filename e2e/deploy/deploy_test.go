// Package deploy tests what deploy/ ships — the Kubernetes manifests (kustomize), the values for the
// upstream opentelemetry-collector Helm chart and the example Secret — and a user's own ocb build that
// adds our components to stock ones (owndist_test.go).
package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// repoRoot is the repository root, two levels above this package.
const repoRoot = "../.."

var deployDir = filepath.Join(repoRoot, "deploy")

// TestDeployments checks each way of deploying that deploy/ ships — the kustomizations under
// deploy/kubernetes, rendered with the kustomize library kubectl embeds and decoded strictly into their
// Kubernetes API types, and deploy/helm/values.yaml, decoded strictly into the chart's values schema
// and turned into the pod the chart renders — against the collector configuration it runs
// (checkDeployment). The Helm values run deploy/kubernetes/sqlite/config.yaml verbatim, and every key of
// deploy/secret.example.yaml is read by one of them.
func TestDeployments(t *testing.T) {
	secret := exampleSecret(t)
	used := map[string]bool{}
	var sqlite deployment
	for _, variant := range []struct {
		dir      string
		replicas int32
	}{
		{"sqlite", 1},
		{"postgres", 3},
	} {
		t.Run("kubernetes/"+variant.dir, func(t *testing.T) {
			d := renderKustomization(t, filepath.Join(deployDir, "kubernetes", variant.dir))
			require.Equal(t, variant.replicas, d.replicas)
			for k := range checkDeployment(t, d, secret) {
				used[k] = true
			}
			if variant.dir == "sqlite" {
				sqlite = d
			}
		})
	}
	t.Run("helm", func(t *testing.T) {
		d := helmDeployment(t, filepath.Join(deployDir, "helm", "values.yaml"))
		require.Equal(t, int32(1), d.replicas)
		for k := range checkDeployment(t, d, secret) {
			used[k] = true
		}
		require.NotNil(t, sqlite.config)
		assert.Equal(t, sqlite.config, d.config, "alternateConfig differs from deploy/kubernetes/sqlite/config.yaml")
	})
	for key := range secret.StringData {
		assert.True(t, used[key], "deploy/secret.example.yaml: no deployment reads key %s", key)
	}
}

// TestDeployFilesParse: every YAML file under deploy/ parses, and each is used by a test here — a
// kustomization, a file one of them names, the Helm values or the example Secret — so none is
// shipped untested.
func TestDeployFilesParse(t *testing.T) {
	used := map[string]bool{
		filepath.Join(deployDir, "helm", "values.yaml"): true,
		filepath.Join(deployDir, "secret.example.yaml"): true,
	}
	var files []string
	require.NoError(t, filepath.WalkDir(deployDir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		require.True(t, strings.HasSuffix(path, ".yaml"), "%s: only YAML belongs in deploy/", path)
		files = append(files, path)
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		for n := 0; ; n++ {
			var doc any
			if err := dec.Decode(&doc); err != nil {
				require.ErrorContains(t, err, "EOF", "%s: document %d", path, n)
				require.Positive(t, n, "%s: no document", path)
				break
			}
		}
		if filepath.Base(path) == "kustomization.yaml" {
			used[path] = true
			for _, f := range kustomizationFiles(t, path) {
				used[filepath.Join(filepath.Dir(path), f)] = true
			}
		}
		return nil
	}))
	require.NotEmpty(t, files)
	for _, f := range files {
		assert.True(t, used[filepath.Clean(f)], "%s is used by no kustomization and no test", f)
	}
}

// kustomizationFiles lists the files a kustomization names: resources that are files, patches and
// configMapGenerator inputs.
func kustomizationFiles(t *testing.T, path string) []string {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
		Patches   []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
		ConfigMapGenerator []struct {
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &k))
	var out []string
	for _, r := range k.Resources {
		if strings.HasSuffix(r, ".yaml") {
			out = append(out, r)
		}
	}
	for _, p := range k.Patches {
		out = append(out, p.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		out = append(out, g.Files...)
	}
	return out
}

// exampleSecret is deploy/secret.example.yaml, decoded strictly: the Secret every deployment reads.
func exampleSecret(t *testing.T) corev1.Secret {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "secret.example.yaml"))
	require.NoError(t, err)
	var s corev1.Secret
	require.NoError(t, sigsyaml.UnmarshalStrict(raw, &s))
	require.Equal(t, "Secret", s.Kind)
	require.NotEmpty(t, s.StringData)
	return s
}
