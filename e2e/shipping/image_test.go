package shipping

import (
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// buildah runs Debian's buildah with the vfs storage driver (no overlay or fuse needed), as root.
type buildah struct{ bin string }

func (b buildah) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, timeout, "", b.bin, append([]string{"--storage-driver", "vfs"}, args...)...))
}

func (b buildah) exists(image string) bool {
	return exec.Command(b.bin, "--storage-driver", "vfs", "inspect", "--type", "image", image).Run() == nil
}

// buildBase stands in for the Dockerfile's default GO_IMAGE (golang:1.26-bookworm), which cannot be
// pulled here (no registry but the Go module proxy, Debian's and npm's is reachable): a debootstrap'd
// bookworm with ca-certificates and make, plus this machine's Go toolchain at /usr/local/go, its trust
// store (the machine may reach the module proxy through a CA of its own; golang's image trusts the public
// roots) and the golang image's environment (GOPATH=/go, PATH, GOTOOLCHAIN=local). Built once per
// machine and Go version; later runs reuse it from buildah's storage.
func buildBase(t *testing.T, b buildah) string {
	t.Helper()
	goroot := runtime.GOROOT()
	name := "localhost/otelcol-o365-e2e/golang:" + strings.TrimPrefix(runtime.Version(), "go") + "-bookworm"
	if b.exists(name) {
		t.Logf("build stage base %s: reused from buildah's storage", name)
		return name
	}
	rootfs := bookwormRoot(t)
	defer timed(t, "build stage base image (copy + commit)")()
	c := b.run(t, time.Minute, "from", "scratch")
	defer b.run(t, time.Minute, "rm", c)
	m := b.run(t, time.Minute, "mount", c)
	run(t, 5*time.Minute, "", "cp", "-a", rootfs+"/.", m+"/")
	require.NoError(t, os.MkdirAll(filepath.Join(m, "usr/local"), 0o755))
	run(t, 5*time.Minute, "", "cp", "-a", goroot, filepath.Join(m, "usr/local/go"))
	run(t, time.Minute, "", "cp", "-L", "/etc/ssl/certs/ca-certificates.crt", filepath.Join(m, "etc/ssl/certs/ca-certificates.crt"))
	b.run(t, time.Minute, "umount", c)
	b.run(t, time.Minute, "config",
		"--env", "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--env", "GOPATH=/go", "--env", "GOTOOLCHAIN=local", "--workingdir", "/go", c)
	b.run(t, 5*time.Minute, "commit", "--quiet", c, name)
	return name
}

// imageConfig is what the image tells a container runtime (buildah inspect's OCIv1 and Docker views).
type imageConfig struct {
	OCIv1 struct {
		Config struct {
			User         string
			Env          []string
			Entrypoint   []string
			Cmd          []string
			WorkingDir   string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
		} `json:"config"`
	}
	Docker struct {
		Config struct {
			Healthcheck *json.RawMessage
		} `json:"config"`
	}
}

// TestContainerImage builds the Dockerfile with buildah and runs the image against the simulator.
//
// The build is the Dockerfile as users build it, with two substitutions only where this machine cannot
// reach what it names: GO_IMAGE is the local stand-in of golang:1.26-bookworm (buildBase), and the Go
// module and build caches of this machine are mounted into the build stage (they hold what `make build`
// fetched and compiled; the build stage still runs `make distribution`, ocb and all). The runtime stage
// is FROM scratch, so nothing else is pulled.
//
// podman run is refused on these machines (crun: cgroups in hybrid mode / setrlimit), so the image runs
// as a runtime would run it, by hand: its root filesystem (buildah from + mount), its entrypoint and
// command, its environment, as its user (chroot --userspec), with /proc and /dev mounted in a private
// mount namespace, the state volume as the image leaves it. The test changes, in the container's
// filesystem only, what a user's deployment would: the config file (the shipped one, pointed at the
// simulator — as users mount their own over it) and the trust store (the simulator's CA appended, where
// Graph's CA already is).
func TestContainerImage(t *testing.T) {
	b := buildah{bin: tool(t, "buildah", "buildah")}
	tool(t, "unshare", "util-linux")
	base := buildBase(t, b)
	proctest.Distribution(t) // builds the distribution when make did not: the build stage then finds its cache warm

	image := fmt.Sprintf("localhost/otelcol-o365:e2e-%d", time.Now().UnixNano())
	gomodcache := strings.TrimSpace(run(t, time.Minute, "", "go", "env", "GOMODCACHE"))
	gocache := strings.TrimSpace(run(t, time.Minute, "", "go", "env", "GOCACHE"))
	done := timed(t, "buildah bud of the Dockerfile")
	b.run(t, 20*time.Minute, "bud", "--isolation", "chroot", "--build-arg", "GO_IMAGE="+base,
		"--volume", gomodcache+":/go/pkg/mod", "--volume", gocache+":/root/.cache/go-build",
		"--tag", image, "--file", filepath.Join(repoRoot(t), "Dockerfile"), repoRoot(t))
	done()
	t.Cleanup(func() { _ = exec.Command(b.bin, "--storage-driver", "vfs", "rmi", "--force", image).Run() })

	var img imageConfig
	require.NoError(t, json.Unmarshal([]byte(b.run(t, time.Minute, "inspect", "--type", "image", image)), &img))
	cfg := img.OCIv1.Config
	assert.Equal(t, "10001:10001", cfg.User, "a non-root user")
	assert.Equal(t, []string{"/otelcol-o365"}, cfg.Entrypoint)
	assert.Equal(t, []string{"--config", "/etc/otelcol-o365/config.yaml"}, cfg.Cmd)
	assert.Equal(t, map[string]struct{}{stateDir: {}}, cfg.Volumes)
	assert.Equal(t, map[string]struct{}{"13133/tcp": {}, "13134/tcp": {}, "13136/tcp": {}, "8888/tcp": {}}, cfg.ExposedPorts)
	assert.Equal(t, stateDir, cfg.WorkingDir)
	assert.Contains(t, cfg.Env, "O365_LISTEN_ADDRESS=0.0.0.0")
	assert.Nil(t, img.Docker.Config.Healthcheck, "no HEALTHCHECK: probes belong to the orchestrator")

	c := b.run(t, time.Minute, "from", image)
	t.Cleanup(func() { _ = exec.Command(b.bin, "--storage-driver", "vfs", "rm", c).Run() })
	root := b.run(t, time.Minute, "mount", c)
	t.Cleanup(func() { _ = exec.Command(b.bin, "--storage-driver", "vfs", "umount", c).Run() })

	checkImageFilesystem(t, root)
	runImage(t, root, img)
}

// checkImageFilesystem checks what the image holds: a static binary, a real CA bundle, the shipped
// config, a passwd entry for its user and the state volume owned by it.
func checkImageFilesystem(t *testing.T, root string) {
	bin, err := elf.Open(filepath.Join(root, "otelcol-o365"))
	require.NoError(t, err)
	for _, p := range bin.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary: no program interpreter")
	}
	libs, err := bin.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "a static binary: no shared libraries")
	bin.Close()

	bundle := mustRead(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	n := 0
	for rest := bundle; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		_, err := x509.ParseCertificate(blk.Bytes)
		require.NoError(t, err)
		n++
	}
	assert.Greater(t, n, 100, "the CA bundle holds the public roots (Graph's among them)")

	assert.Equal(t, string(readRepoFile(t, shippedConfigPath)), string(mustRead(t, filepath.Join(root, installedConfig))))
	assert.Contains(t, strings.Split(string(mustRead(t, filepath.Join(root, "etc/passwd"))), "\n"),
		"otelcol-o365:x:10001:10001:otelcol-o365:/var/lib/otelcol-o365:/sbin/nologin")
	st, err := os.Stat(filepath.Join(root, stateDir))
	require.NoError(t, err)
	sys := st.Sys().(*syscall.Stat_t)
	assert.Equal(t, [2]uint32{10001, 10001}, [2]uint32{sys.Uid, sys.Gid}, "the volume belongs to the image's user")
	tmp, err := os.Stat(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, tmp.Mode(), "/tmp: world-writable, sticky")
}

// runImage runs the image's entrypoint and command in its root filesystem as its user, with its
// environment plus the tenant's (what `docker run -e …` adds), and waits for the records and for
// /readiness — reached on 127.0.0.1 through the 0.0.0.0 the image's O365_LISTEN_ADDRESS binds.
func runImage(t *testing.T, root string, img imageConfig) {
	defer timed(t, "the image against the simulator")()
	sim := startSimulator(t)
	cfg, ep := shippedConfigFor(t, mustRead(t, filepath.Join(root, installedConfig)), sim, stateDir)
	require.NoError(t, os.WriteFile(filepath.Join(root, installedConfig), []byte(cfg), 0o644))
	bundle, err := os.OpenFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = bundle.Write(mustRead(t, sim.CAFile))
	require.NoError(t, err)
	require.NoError(t, bundle.Close())
	// What a runtime provides: mount points for /proc and /dev, and /etc/hosts and /etc/resolv.conf
	// (bound over empty files, as runtimes do).
	for _, dir := range []string{"proc", "dev"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
	}
	hosts := proctest.WriteFile(t, filepath.Join(t.TempDir(), "hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	require.NoError(t, os.Chmod(hosts, 0o644))
	for _, f := range []string{"etc/hosts", "etc/resolv.conf"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, f), nil, 0o644))
	}

	chroot, err := exec.LookPath("chroot")
	require.NoError(t, err)
	envBin, err := exec.LookPath("env")
	require.NoError(t, err)
	mount, err := exec.LookPath("mount")
	require.NoError(t, err)
	cfgImg := img.OCIv1.Config
	// env -i: the container sees the image's environment and the tenant's, not the test's.
	inner := append([]string{envBin, "-i"}, append(cfgImg.Env, sim.env()...)...)
	inner = append(inner, chroot, "--userspec="+cfgImg.User, root)
	inner = append(inner, append(cfgImg.Entrypoint, cfgImg.Cmd...)...)
	script := `set -e; "$MOUNT" -t proc proc "$ROOT/proc"; "$MOUNT" --rbind /dev "$ROOT/dev"
"$MOUNT" --bind "$HOSTS" "$ROOT/etc/hosts"; "$MOUNT" --bind /etc/resolv.conf "$ROOT/etc/resolv.conf"; exec "$@"`
	p := proctest.Start(t, []string{"MOUNT=" + mount, "ROOT=" + root, "HOSTS=" + hosts}, tool(t, "unshare", "util-linux"),
		append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"}, inner...)...)
	p.WaitReady(t)
	waitForRecords(t, filepath.Join(root, stateDir, "o365-raw.json"), sim.want, p)
	waitForReadiness(t, ep.readiness, p)
	assertMetrics(t, ep.metrics)
	p.Stop(t)
	assert.Equal(t, 0, p.ExitCode(), "a clean stop")

	// Everything was written by the image's user, into the volume.
	entries, err := os.ReadDir(filepath.Join(root, stateDir))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, uint32(10001), info.Sys().(*syscall.Stat_t).Uid, "%s is the image user's", e.Name())
	}
	assert.Subset(t, names, []string{"state.db", "events.db", "o365-raw.json", "export"})
	assert.NotContains(t, p.Out.String(), graphsimtest.Secret)
}
