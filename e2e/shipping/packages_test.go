package shipping

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// packageFile is one file a package installs.
type packageFile struct {
	mode  string // rwx string, e.g. -rw-------
	owner string // user/group
}

// wantFiles are the files both packages install, with their modes.
var wantFiles = map[string]packageFile{
	"/usr/bin/otelcol-o365":                        {"-rwxr-xr-x", "root/root"},
	"/etc/otelcol-o365/config.yaml":                {"-rw-r--r--", "root/root"},
	"/etc/otelcol-o365/otelcol-o365.env":           {"-rw-------", "root/root"}, // secrets
	"/usr/lib/systemd/system/otelcol-o365.service": {"-rw-r--r--", "root/root"},
	"/usr/share/doc/otelcol-o365/LICENSE":          {"-rw-r--r--", "root/root"},
}

// installedConfig is where the packages install the shipped config, relative to the root.
const installedConfig = "etc/otelcol-o365/config.yaml"

var wantConfigFiles = []string{"/etc/otelcol-o365/config.yaml", "/etc/otelcol-o365/otelcol-o365.env"}

// packages are the .deb and .rpm that scripts/package.sh (what `make package` runs) built once per test
// run from the distribution under test, in a directory TestMain removes.
var packages struct {
	sync.Mutex
	deb, rpm, bin, dir string
}

func buildPackages(t *testing.T) (deb, rpm, bin string) {
	t.Helper()
	packages.Lock()
	defer packages.Unlock()
	if packages.deb == "" {
		bin := proctest.Distribution(t)
		dir, err := os.MkdirTemp("", "otelcol-o365-packages-")
		require.NoError(t, err)
		packages.dir = dir
		done := timed(t, "scripts/package.sh (deb + rpm)")
		run(t, 10*time.Minute, repoRoot(t), "./scripts/package.sh", bin, dir)
		done()
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
		require.Len(t, debs, 1, "one .deb in %s", dir)
		require.Len(t, rpms, 1, "one .rpm in %s", dir)
		packages.deb, packages.rpm, packages.bin = debs[0], rpms[0], bin
	}
	return packages.deb, packages.rpm, packages.bin
}

// version is the ocb manifest's dist.version, which the packages carry.
func version(t *testing.T) string {
	m := regexp.MustCompile(`(?m)^  version: *(\S+)$`).FindSubmatch(readRepoFile(t, "builder-config.yaml"))
	require.NotNil(t, m, "builder-config.yaml has a dist.version")
	return string(m[1])
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDebPackage checks the .deb's metadata, files, conffiles and maintainer scripts, that its systemd
// unit passes `systemd-analyze verify` and keeps its hardening, and that the binary it carries runs the
// shipped configuration against the simulator (records arrive, /readiness answers 200).
func TestDebPackage(t *testing.T) {
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	deb, _, bin := buildPackages(t)
	defer timed(t, "TestDebPackage checks")()

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Section", "Homepage"} {
		fields[f] = strings.TrimSpace(run(t, time.Minute, "", dpkgDeb, "-f", deb, f))
	}
	assert.Equal(t, map[string]string{
		"Package": "otelcol-o365", "Version": version(t) + "-1", "Architecture": runtime.GOARCH,
		"Depends": "passwd", "Section": "net", "Homepage": "https://github.com/otelcol-o365/otelcol-o365",
	}, fields)
	assert.Contains(t, run(t, time.Minute, "", dpkgDeb, "-I", deb), "Description: OpenTelemetry Collector distribution for Microsoft 365")

	// Files: exactly these, with these modes and owners (dpkg-deb -c lists directories too).
	got := map[string]packageFile{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, time.Minute, "", dpkgDeb, "-c", deb)), "\n") {
		f := strings.Fields(line) // mode owner size date time path
		require.Len(t, f, 6, line)
		if !strings.HasSuffix(f[5], "/") {
			got[strings.TrimPrefix(f[5], ".")] = packageFile{f[0], f[1]}
		}
	}
	assert.Equal(t, wantFiles, got)

	// Control files: conffiles and the maintainer scripts as written in packaging/scripts.
	ctrl := t.TempDir()
	run(t, time.Minute, "", dpkgDeb, "-e", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	require.NoError(t, err)
	assert.ElementsMatch(t, wantConfigFiles, strings.Fields(string(conffiles)), "conffiles: kept on upgrade when edited")
	for script, src := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		b, err := os.ReadFile(filepath.Join(ctrl, script))
		require.NoError(t, err, "the .deb has a %s", script)
		assert.Equal(t, string(readRepoFile(t, "packaging/scripts/"+src)), string(b), script)
	}

	root := t.TempDir()
	run(t, time.Minute, "", dpkgDeb, "-x", deb, root)
	assert.Equal(t, sha(t, bin), sha(t, filepath.Join(root, "usr/bin/otelcol-o365")), "the .deb carries the distribution under test")
	assert.Equal(t, string(readRepoFile(t, shippedConfigPath)), string(mustRead(t, filepath.Join(root, "etc/otelcol-o365/config.yaml"))))

	t.Run("systemd unit", func(t *testing.T) { checkUnit(t, root) })
	t.Run("runs the shipped config", func(t *testing.T) { runPackagedBinary(t, root) })
}

// TestRpmPackage checks the .rpm's metadata, files, config flags, scripts and requirements, and that it
// carries the same binary as the .deb.
func TestRpmPackage(t *testing.T) {
	rpmBin := tool(t, "rpm", "rpm")
	_, rpm, bin := buildPackages(t)
	defer timed(t, "TestRpmPackage checks")()
	q := func(args ...string) string {
		return run(t, time.Minute, "", rpmBin, append([]string{"-qp"}, append(args, rpm)...)...)
	}
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	assert.Equal(t, "otelcol-o365 "+version(t)+" 1 "+arch+" Apache-2.0 https://github.com/otelcol-o365/otelcol-o365",
		q("--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE} %{URL}"))
	assert.Contains(t, q("-i"), "Summary     : OpenTelemetry Collector distribution for Microsoft 365")

	// Files with mode, owner and flags: config files are %config(noreplace) ("cn").
	got := map[string]packageFile{}
	flags := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(q("--queryformat", `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 { // no flags
			f = []string{f[0], f[1], "", f[2]}
		}
		require.Len(t, f, 4, line)
		got[f[3]] = packageFile{f[0], f[1]}
		flags[f[3]] = f[2]
	}
	assert.Equal(t, wantFiles, got)
	var config []string
	for path, fl := range flags {
		if strings.Contains(fl, "c") {
			assert.Contains(t, fl, "n", "%s is config(noreplace)", path)
			config = append(config, path)
		}
	}
	sort.Strings(config)
	assert.Equal(t, wantConfigFiles, config)

	assert.Contains(t, strings.Fields(q("-R")), "shadow-utils", "useradd / groupadd")
	scripts := q("--scripts")
	for section, src := range map[string]string{"postinstall": "postinstall.sh", "preuninstall": "preremove.sh", "postuninstall": "postremove.sh"} {
		body := strings.TrimSpace(string(readRepoFile(t, "packaging/scripts/"+src)))
		assert.Contains(t, scripts, section+" scriptlet (using /bin/sh):\n"+body, "the .rpm's %s is packaging/scripts/%s", section, src)
	}

	// The payload's binary is the distribution under test (rpm2cpio ships with Debian's rpm). nfpm
	// writes absolute names into the payload: extracted under root, never over the host.
	tool(t, "cpio", "cpio")
	root := t.TempDir()
	extract := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -idm --quiet --no-absolute-filenames`, "sh", rpm)
	extract.Dir = root
	out, err := extract.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, sha(t, bin), sha(t, filepath.Join(root, "usr/bin/otelcol-o365")))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// checkUnit verifies the packaged unit with systemd-analyze inside the package's root (so ExecStart's
// binary is the packaged one) beside the host's own units (which it names: network-online.target, …),
// and that its hardening keeps an exposure of at most 2.0 ("OK"; 1.4 when written; systemd's
// threshold is in tenths).
func checkUnit(t *testing.T, pkgRoot string) {
	analyze := tool(t, "systemd-analyze", "systemd")
	const unit = "/usr/lib/systemd/system/otelcol-o365.service"
	root := t.TempDir()
	run(t, time.Minute, "", "cp", "-a", pkgRoot+"/.", root)
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			run(t, time.Minute, "", "cp", "-an", dir+"/.", filepath.Join(root, "usr/lib/systemd/system"))
		}
	}
	// systemd-analyze exits 0 on unknown keys and bad values too (it warns): any output fails.
	out, errOut, err := runErr(time.Minute, "", nil, analyze, "verify", "--man=no", "--root="+root, unit)
	require.NoError(t, err, "%s%s", out, errOut)
	assert.Empty(t, strings.TrimSpace(out+errOut), "systemd-analyze verify warns")

	out, errOut, err = runErr(time.Minute, "", nil, analyze, "security", "--offline=yes", "--threshold=20", "--root="+root, unit)
	overall := regexp.MustCompile(`Overall exposure level for otelcol-o365.service: [0-9.]+ \S+`).FindString(out)
	t.Logf("systemd-analyze security: %s", overall)
	require.NoError(t, err, "exposure above 2.0:\n%s%s", out, errOut)
	require.NotEmpty(t, overall, "%s%s", out, errOut)

	// What the unit promises users: its own user, the state directory the config writes to, secrets
	// from the environment file, restart on failure, the packaged binary and config.
	body := string(mustRead(t, filepath.Join(pkgRoot, unit)))
	for _, line := range []string{
		"User=otelcol-o365", "StateDirectory=otelcol-o365", "EnvironmentFile=-/etc/otelcol-o365/otelcol-o365.env",
		"Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ExecStart=/usr/bin/otelcol-o365 --config /etc/otelcol-o365/config.yaml",
	} {
		assert.Contains(t, strings.Split(body, "\n"), line)
	}
	assert.FileExists(t, filepath.Join(pkgRoot, "etc/otelcol-o365/config.yaml"))
	assert.Contains(t, string(mustRead(t, filepath.Join(pkgRoot, installedConfig))), stateDir+"/state.db", "the config keeps its state in the unit's StateDirectory")
}

// runPackagedBinary runs the .deb's binary: `validate` refuses the installed config until the
// environment file names a tenant, accepts it then, and the config (pointed at the simulator, its state
// under a temporary directory) collects every record.
func runPackagedBinary(t *testing.T, root string) {
	defer timed(t, "the .deb's binary against the simulator")()
	bin := filepath.Join(root, "usr/bin/otelcol-o365")
	cfgPath := filepath.Join(root, installedConfig)
	sim := startSimulator(t)

	_, errOut, err := runErr(time.Minute, "", []string{"O365_TENANT_ID=", "O365_CLIENT_ID=", "O365_ADMIN_TOKEN="}, bin, "validate", "--config", cfgPath)
	require.Error(t, err, "an unconfigured tenant fails at start")
	assert.Contains(t, errOut, "`tenants[0].tenant_id` is required")
	_, errOut, err = runErr(time.Minute, "", sim.env(), bin, "validate", "--config", cfgPath)
	require.NoError(t, err, "the installed config with the environment file filled in: %s", errOut)

	state := t.TempDir()
	cfg, ep := shippedConfigFor(t, mustRead(t, cfgPath), sim, state)
	cfgFile := proctest.WriteFile(t, filepath.Join(t.TempDir(), "config.yaml"), cfg)
	// SSL_CERT_FILE: the simulator's certificate as the system's trust store (no ca_file in the config).
	p := proctest.Start(t, append(sim.env(), "SSL_CERT_FILE="+sim.CAFile), bin, "--config", cfgFile)
	p.WaitReady(t)
	waitForRecords(t, filepath.Join(state, "o365-raw.json"), sim.want, p)
	waitForReadiness(t, ep.readiness, p)
	assertMetrics(t, ep.metrics)
	p.Stop(t)
	assert.Equal(t, 0, p.ExitCode(), "a clean stop")
	for _, f := range []string{"state.db", "events.db"} {
		assert.FileExists(t, filepath.Join(state, f))
	}
	assert.NotContains(t, p.Out.String(), graphsimtest.Secret)
}
