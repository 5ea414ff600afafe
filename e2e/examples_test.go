package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/e2e/internal/shipcheck"
)

// shippedConfigs are the configurations users start from: collector-config.yaml, packaging/config.yaml
// and every whole configuration (one with a `service:` section) in a README, by "file:line".
func shippedConfigs(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..")
	out := map[string]string{}
	for _, file := range []string{"collector-config.yaml", "packaging/config.yaml"} { // the demo's; the packages' and the image's
		raw, err := os.ReadFile(filepath.Join(root, file))
		require.NoError(t, err)
		out[file] = string(raw)
	}
	readmes, err := filepath.Glob(filepath.Join(root, "*", "*", "README.md"))
	require.NoError(t, err)
	readmes = append(readmes, filepath.Join(root, "README.md"))
	for _, path := range readmes {
		blocks, err := shipcheck.MarkdownConfigs(path)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, path)
		for line, block := range blocks {
			out[fmt.Sprintf("%s:%d", rel, line)] = block
		}
	}
	require.GreaterOrEqual(t, len(out), 8, "collector-config.yaml and the READMEs' examples")
	return out
}

// Every configuration we ship keeps the delivery guarantee: no batch processor after the receiver,
// persistent OTLP queues that never give up, file exporters that append unbuffered.
func TestShippedConfigsKeepTheDeliveryGuarantee(t *testing.T) {
	for name, text := range shippedConfigs(t) {
		c, err := shipcheck.Parse(text)
		require.NoError(t, err, name)
		assert.Empty(t, shipcheck.Violations(c), name)
	}
}

var implicitSecret = regexp.MustCompile(`O365_SECRET_[A-Z0-9_]+`)

// Every configuration we ship is one the distribution accepts: `otelcol-o365 validate` (components
// exist, every key is known, every Validate passes) with the environment variables it references set.
func TestShippedConfigsValidate(t *testing.T) {
	bin := proctest.Distribution(t)
	// The files examples point o365_mapping at are the user's; the embedded defaults stand in for them.
	userFiles := map[string]string{}
	for _, name := range []string{"mapping.yml", "correlation.yml"} {
		raw, err := os.ReadFile(filepath.Join("..", "processor", "o365mappingprocessor", name))
		require.NoError(t, err)
		userFiles["/etc/otelcol-o365/"+name] = proctest.WriteFile(t, filepath.Join(t.TempDir(), name), string(raw))
	}
	for name, text := range shippedConfigs(t) {
		for example, stand := range userFiles {
			text = strings.ReplaceAll(text, example, stand)
		}
		path := proctest.WriteFile(t, filepath.Join(t.TempDir(), "config.yaml"), text)
		cmd := exec.Command(bin, "validate", "--config", path)
		cmd.Dir = ".." // collector-config.yaml's relative paths
		cmd.Env = os.Environ()
		for _, v := range shipcheck.EnvRefs(text) {
			cmd.Env = append(cmd.Env, v+"="+shipcheck.ExampleValue(v))
		}
		// A tenant without a credential reads O365_SECRET_<TENANT_ID>; the example names the variable.
		for _, v := range implicitSecret.FindAllString(text, -1) {
			cmd.Env = append(cmd.Env, v+"=example-secret")
		}
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: %s", name, out)
	}
}
