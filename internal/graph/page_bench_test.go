package graph

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// samplePage is a page of 1000 sign-ins served by the simulator (testdata, ~1.9 KB per record).
func samplePage(tb testing.TB) []byte {
	tb.Helper()
	f, err := os.Open("testdata/signins_page_1000.json.gz")
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	b, err := io.ReadAll(zr)
	require.NoError(tb, err)
	return b
}

// decodeToLogs decodes a page into log record bodies, as the receiver does.
func decodeToLogs(d PageDecoder, body []byte) (plog.Logs, error) {
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	_, err := d.Decode(body, func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
	return logs, err
}

// stdMapDecode is the baseline a user would write: encoding/json into map[string]any, then copied into
// the log body.
func stdMapDecode(body []byte) (plog.Logs, error) {
	var page struct {
		Value    []map[string]any `json:"value"`
		NextLink string           `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return plog.Logs{}, err
	}
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, rec := range page.Value {
		if err := lrs.AppendEmpty().Body().SetEmptyMap().FromRaw(rec); err != nil {
			return plog.Logs{}, err
		}
	}
	return logs, nil
}

func BenchmarkDecodePage(b *testing.B) {
	body := samplePage(b)
	for _, c := range []struct {
		name   string
		decode func([]byte) (plog.Logs, error)
	}{
		{"decoder=ours", func(p []byte) (plog.Logs, error) { return decodeToLogs(FastDecoder{}, p) }},
		{"decoder=std_tokens", func(p []byte) (plog.Logs, error) { return decodeToLogs(StdDecoder{}, p) }},
		{"decoder=std_map", stdMapDecode},
		{"decoder=msgraph_sdk", sdkParse},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
		})
	}
}
