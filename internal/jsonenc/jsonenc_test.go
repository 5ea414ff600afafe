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
		assertReadsBackAsEncodingJSON(t, s, got[1:])
	}
}

// assertReadsBackAsEncodingJSON: got, AppendString's encoding of s, is valid JSON and reads back as
// encoding/json's own encoding of s does.
func assertReadsBackAsEncodingJSON(t *testing.T, s string, got []byte) {
	t.Helper()
	var back, want string
	require.NoError(t, json.Unmarshal(got, &back), "%q → %s", s, got)
	ref, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(ref, &want))
	assert.Equal(t, want, back, "%q", s)
}

// TestAppendStringEscapesAtEveryPosition: each byte that needs escaping (or is not ASCII) is found
// wherever it sits in a long run of plain ASCII, which AppendString skips 8 bytes at a time.
func TestAppendStringEscapesAtEveryPosition(t *testing.T) {
	plain := "abcdefghijklmnopqrstuvwx"
	for _, special := range []string{`"`, `\`, "\x00", "\x1f", "\n", "\x7f", "é", "\xff", "\u2028"} {
		for i := 0; i <= len(plain); i++ {
			s := plain[:i] + special + plain[i:]
			assertReadsBackAsEncodingJSON(t, s, AppendString(nil, s))
		}
	}
}

// TestAppendStringAsMarshalIsEncodingJSON: AppendStringAsMarshal writes exactly json.Marshal's bytes,
// wherever the bytes that need escaping sit.
func TestAppendStringAsMarshalIsEncodingJSON(t *testing.T) {
	plain := "abcdefghijklmnop"
	for _, special := range []string{"", `"`, `\`, "\x00", "\b", "\f", "\n", "\r", "\t", "\x1f", "\x7f", "<", ">", "&",
		"é", "✓", "😀", "\xff", "\xc3", "\u2028", "\u2029", string([]byte{0xed, 0xa0, 0x80}), "é<", "✓\b", "\xff&"} {
		for i := 0; i <= len(plain); i++ {
			s := plain[:i] + special + plain[i:]
			want, err := json.Marshal(s)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(AppendStringAsMarshal(nil, s)), "%q", s)
		}
	}
}

func FuzzAppendStringAsMarshal(f *testing.F) {
	f.Add("a<b>&c\u2028\xff\b")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(AppendStringAsMarshal(nil, s)))
		assertReadsBackAsEncodingJSON(t, s, AppendString(nil, s))
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.114"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
