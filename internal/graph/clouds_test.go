package graph

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Each cloud's tokens are for its own Graph resource (learn.microsoft.com/graph/deployments), not for
// whatever URL reaches Graph.
func TestScopePerCloud(t *testing.T) {
	want := map[string]string{
		"public":   "https://graph.microsoft.com/.default",
		"usgov":    "https://graph.microsoft.us/.default",
		"usgovdod": "https://dod-graph.microsoft.us/.default",
		"china":    "https://microsoftgraph.chinacloudapi.cn/.default",
	}
	assert.Len(t, Clouds, len(want))
	for name, scope := range want {
		assert.Equal(t, scope, Scope(Clouds[name].GraphResource), name)
	}
	assert.Equal(t, "https://graph.microsoft.us/.default", Scope("https://graph.microsoft.us/"), "a trailing slash is not doubled")
}
