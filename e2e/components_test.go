package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
)

// readmeStockComponents reads the README's sentence "Next to our components the distribution carries
// the collector's own …": its `name`s by the kind each `;`-separated part ends with ("the `otlp`
// receiver; the `memory_limiter`, … processors; …").
func readmeStockComponents(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(raw), "Next to our components the distribution carries")
	require.True(t, ok, "README.md says which stock components the distribution carries")
	sentence, _, _ := strings.Cut(rest, "\n\n")
	kinds := regexp.MustCompile(`\b(receiver|processor|exporter|extension)s?\b`)
	names := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	for _, part := range strings.Split(sentence, ";") {
		kind := kinds.FindStringSubmatch(part)
		require.NotNil(t, kind, "README: %q names no kind", part)
		for _, m := range names.FindAllStringSubmatch(part, -1) {
			out[kind[1]+"s"] = append(out[kind[1]+"s"], m[1])
		}
	}
	return out
}

// The built distribution carries every stock component the README says it does — among them what a
// security pipeline reaches for next to ours: the transform, filter, attributes, resource and redaction
// processors and the zpages extension (no shipped configuration uses the last four, so no other test
// would notice one missing from builder-config.yaml).
func TestDistributionCarriesTheREADMEsComponents(t *testing.T) {
	want := readmeStockComponents(t)
	for _, kind := range []string{"receivers", "processors", "exporters", "extensions"} {
		require.NotEmpty(t, want[kind], "README names stock %s", kind)
	}
	for _, p := range []string{"transform", "filter", "attributes", "resource", "redaction"} {
		require.Contains(t, want["processors"], p)
	}
	require.Contains(t, want["extensions"], "zpages")

	out, err := exec.Command(proctest.Distribution(t), "components").Output()
	require.NoError(t, err, "otelcol-o365 components")
	type named []struct {
		Name string `yaml:"name"`
	}
	var c struct {
		Receivers  named `yaml:"receivers"`
		Processors named `yaml:"processors"`
		Exporters  named `yaml:"exporters"`
		Extensions named `yaml:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(out, &c), "%s", out)
	got := map[string]named{"receivers": c.Receivers, "processors": c.Processors, "exporters": c.Exporters, "extensions": c.Extensions}
	for kind, names := range want {
		require.Contains(t, got, kind, "README: %v", names)
		var have []string
		for _, c := range got[kind] {
			have = append(have, c.Name)
		}
		for _, name := range names {
			assert.Contains(t, have, name, "the distribution's %s (builder-config.yaml)", kind)
		}
	}
}
