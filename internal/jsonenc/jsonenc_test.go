package jsonenc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendStringReadsBackAsEncodingJSON: every string reads back (encoding/json) as encoding/json's
// own encoding of it does, and the output is valid JSON.
func TestAppendStringReadsBackAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back/slash`, "ctl\x00\x01\x07\n\r\t\x1f\x7f", "bad\xff\xfeutf8\xc3",
		"sep\u2028\u2029", "ünïcødé ✓ <&> 😀", string([]byte{0xed, 0xa0, 0x80})} {
		got := AppendString([]byte("x"), s)
		require.Equal(t, byte('x'), got[0])
		var back, want string
		require.NoError(t, json.Unmarshal(got[1:], &back), "%q → %s", s, got[1:])
		ref, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(ref, &want))
		assert.Equal(t, want, back, "%q", s)
	}
}
