package shipcheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rules flag each setting that answers the receiver before the write, in the pipelines it feeds only.
func TestViolations(t *testing.T) {
	c, err := Parse(`
exporters:
  otlp_grpc/mem: { endpoint: x:4317 }
  otlp_grpc/ok:
    endpoint: x:4317
    sending_queue: { storage: sql_storage }
    retry_on_failure: { max_elapsed_time: 0 }
  otlp_http/gives_up:
    endpoint: https://x
    sending_queue: { storage: sql_storage }
    retry_on_failure: { max_elapsed_time: 5m }
  otlp_grpc/unbounded:
    endpoint: x:4317
    sending_queue: { storage: sql_storage, batch: {} }
    retry_on_failure: { max_elapsed_time: 0 }
  otlp_grpc/bounded:
    endpoint: x:4317
    sending_queue: { storage: sql_storage, batch: { sizer: bytes, min_size: 1000000, max_size: 3000000 } }
    retry_on_failure: { max_elapsed_time: 0 }
  otlp/no_queue:
    endpoint: x:4317
    sending_queue: { enabled: false }
  file/buffered: { path: a.json }
  file/ok: { path: b.json, rotation: { max_megabytes: 100 } }
  o365_export/memory: { directory: { path: x }, journal: { enabled: false } }
  o365_export/ok: { directory: { path: y } }
  debug/mem: { verbosity: basic }
  debug/ok: { sending_queue: { enabled: false } }
service:
  pipelines:
    logs/a: { receivers: [o365], processors: [batch], exporters: [otlp_grpc/mem, otlp_grpc/ok, otlp_grpc/unbounded, otlp_grpc/bounded, otlp/no_queue] }
    logs/b: { receivers: [o365/x], processors: [o365_mapping], exporters: [otlp_http/gives_up, file/buffered, file/ok, o365_export/memory, o365_export/ok, debug/mem, debug/ok] }
    logs/other: { receivers: [otlp], processors: [batch], exporters: [otlp_grpc/mem] }
`)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"pipeline logs/a: processor batch acknowledges before the exporters wrote",
		"pipeline logs/a: exporter otlp_grpc/mem queues in memory (sending_queue.storage is not set)",
		"pipeline logs/a: exporter otlp_grpc/mem drops a queued batch after retry_on_failure.max_elapsed_time (<nil>; want 0)",
		"pipeline logs/a: exporter otlp_grpc/unbounded batches without sending_queue.batch.max_size (requests can outgrow what the backend takes, and a rejected batch is dropped)",
		"pipeline logs/b: exporter otlp_http/gives_up drops a queued batch after retry_on_failure.max_elapsed_time (5m; want 0)",
		"pipeline logs/b: exporter file/buffered without rotation buffers its writes",
		"pipeline logs/b: exporter o365_export/memory counts in memory (journal disabled)",
		"pipeline logs/b: exporter debug/mem queues in memory (sending_queue.storage is not set)",
	}, Violations(c))
}

func TestEnvRefs(t *testing.T) {
	assert.Equal(t, []string{"A", "B_2"}, EnvRefs("x: ${env:A}\ny: ${env:B_2:-d}\nz: ${env:A}"))
}
