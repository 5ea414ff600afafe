package shipping

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDebInstallPurge installs the .deb with dpkg in a Debian bookworm root (the debootstrap'd root of the
// image test's build stage base, systemd's systemctl included but not running, as in an image build or a
// chroot) and follows its life: install creates the system user and enables the unit without starting it;
// an edited config survives a reinstall; remove disables the unit and keeps config and state; purge
// deletes both.
func TestDebInstallPurge(t *testing.T) {
	b := buildah{bin: tool(t, "buildah", "buildah")}
	deb, _, _ := buildPackages(t)
	base := buildBase(t, b)
	defer timed(t, "TestDebInstallPurge (install, reinstall, remove, purge)")()
	c := b.run(t, time.Minute, "from", base)
	t.Cleanup(func() { _ = exec.Command(b.bin, "--storage-driver", "vfs", "rm", c).Run() })
	root := b.run(t, time.Minute, "mount", c)
	t.Cleanup(func() { _ = exec.Command(b.bin, "--storage-driver", "vfs", "umount", c).Run() })
	run(t, time.Minute, "", "cp", deb, filepath.Join(root, "tmp/otelcol-o365.deb"))

	// dpkg in the root, with /proc and /dev mounted in a private mount namespace.
	dpkg := func(args ...string) string {
		t.Helper()
		script := `set -e; mount -t proc proc "$0/proc"; mount --rbind /dev "$0/dev"; exec chroot "$0" "$@"`
		return run(t, 2*time.Minute, "", "unshare", append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, root, "dpkg"}, args...)...)
	}
	path := func(p string) string { return filepath.Join(root, p) }
	const wants = "etc/systemd/system/multi-user.target.wants/otelcol-o365.service"

	out := dpkg("-i", "/tmp/otelcol-o365.deb")
	assert.Contains(t, out, "fill in /etc/otelcol-o365/otelcol-o365.env")
	user := passwdEntry(t, path("etc/passwd"), "otelcol-o365")
	require.NotNil(t, user, "postinst creates the service's user")
	assert.Equal(t, "/usr/sbin/nologin", user[6])
	assert.Equal(t, "/var/lib/otelcol-o365", user[5])
	assert.NotNil(t, passwdEntry(t, path("etc/group"), "otelcol-o365"), "and its group")
	target, err := os.Readlink(path(wants))
	require.NoError(t, err, "postinst enables the unit")
	// /lib/… or /usr/lib/… (bookworm's /lib is a link to usr/lib): the packaged unit either way.
	assert.Equal(t, mustRead(t, path("usr/lib/systemd/system/otelcol-o365.service")), mustRead(t, path(target)), "the link points at the packaged unit")
	assert.FileExists(t, path("usr/bin/otelcol-o365"))
	assert.NoDirExists(t, path(stateDir), "nothing started: systemd makes the StateDirectory at the first start")
	st, err := os.Stat(path("etc/otelcol-o365/otelcol-o365.env"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the secrets file")

	// An operator edits the config; a reinstall (dpkg's upgrade path) keeps the edit and the unit enabled.
	cfg := path(installedConfig)
	edited := append(mustRead(t, cfg), []byte("# edited by the operator\n")...)
	require.NoError(t, os.WriteFile(cfg, edited, 0o644))
	dpkg("-i", "/tmp/otelcol-o365.deb")
	assert.Equal(t, string(edited), string(mustRead(t, cfg)), "config|noreplace: the edit survives")
	assert.FileExists(t, path(wants))
	assert.Len(t, passwdEntries(t, path("etc/passwd"), "otelcol-o365"), 1, "the user is created once")

	// State as a run would leave it; remove keeps config and state, disables the unit.
	require.NoError(t, os.MkdirAll(path(stateDir), 0o750))
	require.NoError(t, os.WriteFile(path(stateDir+"/state.db"), []byte("watermarks"), 0o640))
	dpkg("-r", "otelcol-o365")
	assert.NoFileExists(t, path("usr/bin/otelcol-o365"))
	assert.NoFileExists(t, path(wants), "prerm disables the unit")
	assert.Equal(t, string(edited), string(mustRead(t, cfg)), "remove keeps the config")
	assert.FileExists(t, path(stateDir+"/state.db"), "remove keeps the state")

	dpkg("-P", "otelcol-o365")
	assert.NoFileExists(t, cfg, "purge deletes the config")
	assert.NoDirExists(t, path(stateDir), "purge deletes the state")
	assert.NotNil(t, passwdEntry(t, path("etc/passwd"), "otelcol-o365"), "the user stays (Debian policy)")
}

// passwdEntries are the colon-separated lines of an /etc/passwd or /etc/group file whose name is name.
func passwdEntries(t *testing.T, file, name string) [][]string {
	t.Helper()
	var out [][]string
	for _, line := range strings.Split(string(mustRead(t, file)), "\n") {
		if f := strings.Split(line, ":"); f[0] == name {
			out = append(out, f)
		}
	}
	return out
}

func passwdEntry(t *testing.T, file, name string) []string {
	t.Helper()
	if e := passwdEntries(t, file, name); len(e) > 0 {
		return e[0]
	}
	return nil
}
