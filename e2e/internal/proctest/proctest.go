// Package proctest runs the ocb-built otelcol-o365 distribution (and other programs) as child
// processes for the end-to-end tests, benchmarks and the reliability suite: start, wait for a line,
// stop, kill -9, and read the process's RSS and CPU time from /proc.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Distribution returns the otelcol-o365 binary: $OTELCOL_O365_BIN (set by `make test` after `make
// build`), or one built here with ocb, so that `go test ./...` alone tests the real distribution too.
func Distribution(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("OTELCOL_O365_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		out, err := os.MkdirTemp("", "otelcol-o365-e2e")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "run", "go.opentelemetry.io/collector/cmd/builder@v0.161.0",
			"--config", "builder-config.yaml", "--output-path", out)
		cmd.Dir = repoRoot()
		if log, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("ocb build failed: %v\n%s", err, log)
			return
		}
		binPath = filepath.Join(out, "otelcol-o365")
	})
	require.NoError(tb, buildErr)
	return binPath
}

// repoRoot is the module root, three levels above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Buffer is a bytes.Buffer safe for a process writing while the test reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is a running child process whose combined output is kept.
type Proc struct {
	Cmd     *exec.Cmd
	Out     *Buffer
	done    chan struct{}
	readyAt time.Time // when WaitReady saw the collector ready
}

// signalSettle is how long after "Everything is ready" a collector is given to install its SIGTERM and
// SIGHUP handlers: it logs the line just before, and a signal in between kills it instead.
const signalSettle = time.Second

// Signal sends sig, once a collector seen ready has had the time to handle it.
func (p *Proc) Signal(sig os.Signal) error {
	if !p.readyAt.IsZero() {
		time.Sleep(time.Until(p.readyAt.Add(signalSettle)))
	}
	return p.Cmd.Process.Signal(sig)
}

// Start runs bin with args (env added to the test's environment). It is stopped at cleanup, and its
// output logged if the test failed.
func Start(tb testing.TB, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Cmd: exec.Command(bin, args...), Out: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	require.NoError(tb, p.Cmd.Start())
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop(tb)
		if tb.Failed() {
			tb.Logf("%s (pid %d) output, last 16 KiB:\n%s", filepath.Base(bin), p.Pid(), Tail(p.Out.String(), 16<<10))
		}
	})
	return p
}

// StartCollector runs the distribution with args.
func StartCollector(tb testing.TB, env []string, args ...string) *Proc {
	tb.Helper()
	return Start(tb, env, Distribution(tb), args...)
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// WaitFor waits until the output contains s.
func (p *Proc) WaitFor(tb testing.TB, s string, within time.Duration) {
	tb.Helper()
	require.Eventually(tb, func() bool { return strings.Contains(p.Out.String(), s) || !p.Running() }, within, 20*time.Millisecond)
	require.Contains(tb, p.Out.String(), s, "the process exited first")
}

// WaitReady waits until the collector reports that its pipelines run.
func (p *Proc) WaitReady(tb testing.TB) {
	tb.Helper()
	p.WaitFor(tb, "Everything is ready", time.Minute)
	p.readyAt = time.Now()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill(tb testing.TB) {
	tb.Helper()
	if p.Running() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("process %d did not die of SIGKILL", p.Pid())
	}
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit (then kills).
func (p *Proc) Stop(tb testing.TB) {
	tb.Helper()
	if !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
		tb.Errorf("process %d did not stop within 30 s of SIGTERM", p.Pid())
	}
}

// Wait waits for the process to exit by itself and returns its exit code.
func (p *Proc) Wait(tb testing.TB, within time.Duration) int {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		tb.Fatalf("the process still runs after %s; output:\n%s", within, Tail(p.Out.String(), 8<<10))
	}
	return p.Cmd.ProcessState.ExitCode()
}

// ExitCode is the exit code of a process that has exited (-1 while it runs).
func (p *Proc) ExitCode() int {
	if p.Running() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// RSS is the process's resident set size (VmRSS), 0 once it has exited.
func (p *Proc) RSS() int64 { return p.statusBytes("VmRSS:") }

// PeakRSS is the largest resident set size the process has had (VmHWM), 0 once it has exited.
func (p *Proc) PeakRSS() int64 { return p.statusBytes("VmHWM:") }

// statusBytes reads a size in kB from /proc/<pid>/status.
func (p *Proc) statusBytes(field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// CPU is the process's user + system CPU time so far (from /proc/<pid>/stat, clock ticks of 1/100 s).
func (p *Proc) CPU(tb testing.TB) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	require.NoError(tb, err)
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// WriteFile writes content to path (creating its directory) and returns path.
func WriteFile(tb testing.TB, path, content string) string {
	tb.Helper()
	require.NoError(tb, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(tb, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// FreePort is a TCP port on 127.0.0.1 free at the time of the call.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// EachRecord calls fn with every log record of a file exporter's OTLP JSON lines, and its resource's
// attributes. A missing file has none. With partial, a line that does not parse is skipped (the exporter
// may be writing it; the caller polls again); otherwise it fails the test.
func EachRecord(tb testing.TB, path string, partial bool, fn func(resource pcommon.Map, lr plog.LogRecord)) {
	tb.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(tb, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	var um plog.JSONUnmarshaler
	for sc.Scan() {
		logs, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil && partial {
			continue
		}
		require.NoError(tb, err, path)
		for i := 0; i < logs.ResourceLogs().Len(); i++ {
			rl := logs.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					fn(rl.Resource().Attributes(), lrs.At(k))
				}
			}
		}
	}
	require.NoError(tb, sc.Err(), path)
}

// RecordIDs returns the o365.record.id of a file exporter's records by dataset (lines being written
// skipped).
func RecordIDs(tb testing.TB, path string) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	EachRecord(tb, path, true, func(res pcommon.Map, lr plog.LogRecord) {
		ds, _ := res.Get("o365.dataset")
		id, _ := lr.Attributes().Get("o365.record.id")
		out[ds.Str()] = append(out[ds.Str()], id.Str())
	})
	return out
}
