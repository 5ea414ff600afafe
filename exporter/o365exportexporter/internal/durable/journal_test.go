package durable

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func frames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = Frame(b, []byte(p))
	}
	return b
}

func payloads(c Contents) []string {
	out := []string{}
	for _, f := range c.Frames {
		out = append(out, string(f))
	}
	return out
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "p.jnl")
	j, err := CreateJournal(path, frames("header", ""))
	require.NoError(t, err)
	require.NoError(t, j.Append(frames("one", "two")))
	require.NoError(t, j.Append(nil))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, info.Size(), j.Size())
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())

	j2, c, err := OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"header", "", "one", "two"}, payloads(c))
	assert.Zero(t, c.Dropped)
	require.NoError(t, j2.Append(frames("three")))
	_, c, err = OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"header", "", "one", "two", "three"}, payloads(c))

	// CreateJournal replaces a journal whole.
	_, err = CreateJournal(path, frames("fresh"))
	require.NoError(t, err)
	_, c, err = OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"fresh"}, payloads(c))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")

	require.NoError(t, j2.Remove())
	require.NoError(t, j2.Remove(), "removing a missing journal is not an error")
	assert.NoFileExists(t, path)
}

// TestJournalTornTail: the last frame cut at every length (as a crash during its append leaves it) is
// dropped, the file cut back to the frames before it, and an append after that reads back whole.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.jnl")
	j, err := CreateJournal(path, frames("header", "first"))
	require.NoError(t, err)
	good := j.Size()
	last := frames("a frame whose append was cut short")
	full := append(append([]byte(nil), []byte(magic)...), frames("header", "first")...)
	for cut := 1; cut < len(last); cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, append(append([]byte(nil), full...), last[:cut]...), 0o640))
			j, c, err := OpenJournal(path)
			require.NoError(t, err)
			assert.Equal(t, []string{"header", "first"}, payloads(c))
			assert.Equal(t, int64(cut), c.Dropped)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, good, info.Size())
			assert.Equal(t, good, j.Size())

			require.NoError(t, j.Append(frames("after")))
			_, c, err = OpenJournal(path)
			require.NoError(t, err)
			assert.Equal(t, []string{"header", "first", "after"}, payloads(c))
		})
	}
}

// TestJournalDamage: a frame whose checksum fails ends the journal there (frames cannot be found again
// after it); so does a length that cannot be.
func TestJournalDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jnl")
	_, err := CreateJournal(path, frames("header", "middle", "last"))
	require.NoError(t, err)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	middle := len(magic) + len(frames("header"))
	damaged := append([]byte(nil), raw...)
	damaged[middle+frameHeader+2] ^= 0x20 // "mi[d]dle"
	require.NoError(t, os.WriteFile(path, damaged, 0o640))
	_, c, err := OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"header"}, payloads(c))
	assert.Equal(t, int64(len(raw)-middle), c.Dropped)

	huge := append([]byte(nil), raw[:middle]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0)
	require.NoError(t, os.WriteFile(path, huge, 0o640))
	_, c, err = OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"header"}, payloads(c))
	assert.Equal(t, int64(frameHeader), c.Dropped)
}

func TestNotAJournal(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"short": "O365", "other": "{\"export_version\": 1}", "v2": "O365JNL\x02"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o640))
		_, _, err := OpenJournal(path)
		require.ErrorIs(t, err, ErrNotJournal, name)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, content, string(b), "%s is left as it was", name)
	}
	_, _, err := OpenJournal(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestAppendFailureKeepsTheEnd: an append that fails leaves the journal's known end where it was.
func TestAppendFailureKeepsTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jnl")
	j, err := CreateJournal(path, frames("header"))
	require.NoError(t, err)
	size := j.Size()
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o750)) // the append cannot open it for writing
	require.Error(t, j.Append(frames("lost")))
	assert.Equal(t, size, j.Size())
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x", "doc.json")
	require.NoError(t, WriteFile(path, []byte("one"), 0o640))
	require.NoError(t, WriteFile(path, []byte("two"), 0o640))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// A write that fails leaves the old content and no temporary file.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "x", "sub.json"), 0o750))
	require.Error(t, WriteFile(filepath.Join(dir, "x", "sub.json"), []byte("three"), 0o640))
	entries, err = os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 2)

	f, err := os.CreateTemp(dir, ".doc.json.tmp-*")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.True(t, IsTemporary(filepath.Base(f.Name())), f.Name())
	assert.False(t, IsTemporary("doc.json"))
	assert.False(t, IsTemporary(".doc.json"))
}

// BenchmarkJournalAppend measures one append (write and fsync) of a frame of the size the o365_export
// journal appends per page of 1000 sign-ins (≈ 150 KB; ≈ 1.7 MB with include_events), to compare with
// a commit of the storage extension (sqlstorageextension BenchmarkBatchSet). One op is one append.
func BenchmarkJournalAppend(b *testing.B) {
	for _, size := range []int{150_000, 1_700_000} {
		b.Run(fmt.Sprintf("value=%dKB", size/1000), func(b *testing.B) {
			j, err := CreateJournal(filepath.Join(b.TempDir(), "p.jnl"), frames("header"))
			require.NoError(b, err)
			frame := Frame(nil, make([]byte, size))
			for b.Loop() {
				require.NoError(b, j.Append(frame))
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}
