// Package shipping tests what users install rather than build: the container image of the Dockerfile
// (built with buildah, run from its root filesystem), the .deb and .rpm packages of scripts/package.sh
// (contents, metadata, the systemd unit, the binary they carry, install and purge in a Debian root), and
// the demo's restart behaviour (`make run` twice, counted with scripts/count-records.sh).
//
// The tools come from Debian's packages, installed here when missing (as root, as `make test` runs):
// buildah, debootstrap, rpm, systemd (systemd-analyze), jq. A test skips, saying so, only where they
// cannot be installed.
package shipping

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// repoRoot is the repository's root, two levels above this package.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	require.NoError(tb, err)
	return root
}

var aptMu sync.Mutex

// tool returns the path of command, installing Debian's package pkg first when the command is missing.
// The test skips, with the reason, when it cannot be installed (no root, no apt-get, no mirror).
func tool(tb testing.TB, command, pkg string) string {
	tb.Helper()
	aptMu.Lock()
	defer aptMu.Unlock()
	if p, err := exec.LookPath(command); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		tb.Skipf("%s is missing and installing Debian's %s needs root", command, pkg)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		tb.Skipf("%s is missing and there is no apt-get to install Debian's %s", command, pkg)
	}
	tb.Logf("installing Debian's %s for %s", pkg, command)
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil { // a stale package list: update once, then try again
		if out, err := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err != nil {
			tb.Skipf("cannot install Debian's %s (apt-get update: %v)\n%s", pkg, err, out)
		}
		if out, err := install(); err != nil {
			tb.Skipf("cannot install Debian's %s: %v\n%s", pkg, err, out)
		}
	}
	p, err := exec.LookPath(command)
	require.NoError(tb, err, "Debian's %s installed, but %s is not on PATH", pkg, command)
	return p
}

// run runs a command (in dir, when not empty) and returns its standard output; it fails the test with
// the command's output when it exits non-zero or takes longer than timeout.
func run(tb testing.TB, timeout time.Duration, dir string, name string, args ...string) string {
	tb.Helper()
	out, errOut, err := runErr(timeout, dir, nil, name, args...)
	require.NoError(tb, err, "%s %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), tail(out), tail(errOut))
	return out
}

// runErr is run that returns the error, and the standard error, instead of failing. env, when not nil,
// is added to the test's environment.
func runErr(timeout time.Duration, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	return o.String(), e.String(), err
}

func tail(s string) string {
	if len(s) > 8<<10 {
		return "…" + s[len(s)-8<<10:]
	}
	return s
}

// timed logs how long a step took: the figures the report and the README quote come from these lines.
func timed(tb testing.TB, step string) func() {
	start := time.Now()
	return func() { tb.Logf("TIME %s: %.1f s", step, time.Since(start).Seconds()) }
}

var debootstrap struct {
	once sync.Once
	dir  string
	err  error
}

// bookwormRoot returns a Debian bookworm root filesystem made once per test run by debootstrap
// (minbase, plus ca-certificates and make — what the golang image's build stage uses — and systemd,
// whose systemctl the package's scripts call). Callers copy it before they change it.
func bookwormRoot(tb testing.TB) string {
	tb.Helper()
	bin := tool(tb, "debootstrap", "debootstrap")
	debootstrap.once.Do(func() {
		defer timed(tb, "debootstrap bookworm")()
		dir, err := os.MkdirTemp("", "otelcol-o365-bookworm-")
		if err != nil {
			debootstrap.err = err
			return
		}
		out, errOut, err := runErr(10*time.Minute, "", nil, bin, "--variant=minbase",
			"--include=ca-certificates,make,systemd", "bookworm", dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			debootstrap.err = fmt.Errorf("debootstrap bookworm: %v\n%s\n%s", err, tail(out), tail(errOut))
			return
		}
		debootstrap.dir = dir
	})
	require.NoError(tb, debootstrap.err)
	return debootstrap.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{debootstrap.dir, packages.dir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
