package reliability

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// --- The built distribution -----------------------------------------------------------------------

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// distribution returns the otelcol-o365 binary: $OTELCOL_O365_BIN (set by `make test` after `make
// build`), or one built here with ocb, so that `go test ./...` alone tests the real distribution too.
func distribution(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OTELCOL_O365_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		out, err := os.MkdirTemp("", "otelcol-o365-reliability")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "run", "go.opentelemetry.io/collector/cmd/builder@v0.161.0",
			"--config", "builder-config.yaml", "--output-path", out)
		cmd.Dir = filepath.Join("..", "..")
		if log, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("ocb build failed: %v\n%s", err, log)
			return
		}
		binPath = filepath.Join(out, "otelcol-o365")
	})
	require.NoError(t, buildErr)
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running otelcol-o365 process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startProc runs the distribution with args (and env added to the test's environment). It is stopped
// at cleanup; its output is logged if the test failed.
func startProc(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(distribution(t), args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("collector (pid %d) output, last 16 KiB:\n%s", p.cmd.Process.Pid, tail(p.out.String(), 16<<10))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("process %d did not die of SIGKILL", p.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and waits up to 30 s for a clean exit (then kills).
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("collector did not stop within 30 s of SIGTERM")
	}
}

// wait waits for the process to exit by itself and returns its exit code.
func (p *proc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("the collector still runs after %s; output:\n%s", within, tail(p.out.String(), 8<<10))
	}
	return p.cmd.ProcessState.ExitCode()
}

// rssBytes is the process's resident set size (VmRSS), 0 if it cannot be read.
func (p *proc) rssBytes() int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// --- Delivery ledger ------------------------------------------------------------------------------

// ledger records every record delivered to a sink, by key (dataset|o365.record.id), in batches tagged
// with the epoch (collector run) that sent them. It is the ground for lost / duplicated counts.
type ledger struct {
	mu      sync.Mutex
	counts  map[string]int
	batches []batch
	total   int
}

type batch struct {
	epoch int
	keys  []string
}

func newLedger() *ledger { return &ledger{counts: map[string]int{}} }

// add records one accepted batch.
func (l *ledger) add(epoch int, keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.counts[k]++
	}
	l.total += len(keys)
	l.batches = append(l.batches, batch{epoch: epoch, keys: keys})
}

// unique is the number of distinct keys delivered.
func (l *ledger) unique() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counts)
}

// deliveries is the number of records delivered, duplicates included.
func (l *ledger) deliveries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// tally compares the ledger with the ground truth: ids never delivered, deliveries beyond the first,
// and keys delivered that the ground truth does not hold.
type tally struct {
	lost, duplicated, unknown int
	lostSample, dupSample     []string
}

func (l *ledger) compare(want []string) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r tally
	wanted := make(map[string]bool, len(want))
	for _, k := range want {
		wanted[k] = true
		if l.counts[k] == 0 {
			r.lost++
			if len(r.lostSample) < 5 {
				r.lostSample = append(r.lostSample, k)
			}
		}
	}
	for k, n := range l.counts {
		if n > 1 {
			r.duplicated += n - 1
			if len(r.dupSample) < 5 {
				r.dupSample = append(r.dupSample, k)
			}
		}
		if !wanted[k] {
			r.unknown++
		}
	}
	sort.Strings(r.dupSample)
	return r
}

// exactlyOnce fails the test unless every wanted key was delivered exactly once and nothing else.
func (l *ledger) exactlyOnce(t testing.TB, want []string) tally {
	t.Helper()
	r := l.compare(want)
	require.Zero(t, r.lost, "ids never delivered, e.g. %v", r.lostSample)
	require.Zero(t, r.duplicated, "ids delivered more than once, e.g. %v", r.dupSample)
	require.Zero(t, r.unknown, "records that are not in the ground truth")
	return r
}

// waitUnique waits until n distinct keys were delivered.
func (l *ledger) waitUnique(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.unique() < n {
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d records were delivered", within, l.unique(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keysOf lists dataset|o365.record.id of every record in ld.
func keysOf(ld plog.Logs) []string {
	var out []string
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		ds, _ := rl.Resource().Attributes().Get("o365.dataset")
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				id, _ := lrs.At(k).Attributes().Get("o365.record.id")
				out = append(out, ds.Str()+"|"+id.Str())
			}
		}
	}
	return out
}

// truth turns simulator ids of a dataset into ledger keys.
func truth(dataset string, ids ...[]string) []string {
	var out []string
	for _, list := range ids {
		for _, id := range list {
			out = append(out, dataset+"|"+id)
		}
	}
	return out
}

// --- OTLP sink ------------------------------------------------------------------------------------

// otlpSink is an OTLP/gRPC logs endpoint served by the test process. It records the ids of a request in
// its ledger before it answers, so a record the collector saw acknowledged is durably recorded (the
// test process outlives every collector it kills). The epoch of a request is its `x-epoch` header (the
// run number, set in each run's exporter `headers`). While refusing, it answers UNAVAILABLE (retryable)
// and records nothing.
type otlpSink struct {
	plogotlp.UnimplementedGRPCServer
	addr     string
	ledger   *ledger
	refusing atomic.Bool
	refused  atomic.Int64
	accepted atomic.Int64 // requests accepted
}

func startOTLPSink(t testing.TB) *otlpSink {
	t.Helper()
	s := &otlpSink{ledger: newLedger()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	plogotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if s.refusing.Load() {
		s.refused.Add(1)
		return plogotlp.NewExportResponse(), status.Error(codes.Unavailable, "the test sink refuses (back-pressure scenario)")
	}
	epoch := -1
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-epoch"); len(v) == 1 {
			_, _ = fmt.Sscanf(v[0], "%d", &epoch)
		}
	}
	s.ledger.add(epoch, keysOf(req.Logs()))
	s.accepted.Add(1)
	return plogotlp.NewExportResponse(), nil
}
