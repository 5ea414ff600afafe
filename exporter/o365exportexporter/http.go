package o365exportexporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadata"
)

// HTTP headers of every POST.
const (
	// HeaderIdempotencyKey carries IdempotencyKey(document): the same for every attempt to deliver
	// one version of a document, different for every other version (draft-ietf-httpapi-idempotency-key-header).
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderDocumentID carries the document_id: the same for every version of a tenant's period.
	HeaderDocumentID = "O365-Export-Document-Id"
	// HeaderExportVersion carries the export_version.
	HeaderExportVersion = "O365-Export-Version"
)

// Attributes of the log records the HTTP queue carries (one per document; the body is the document).
const (
	queueAttrDocumentID = "document_id"
	queueAttrTenant     = "tenant"
)

// IdempotencyKey returns the value of the Idempotency-Key header for a document: its document_id, '@'
// and the first 32 hex digits of the SHA-256 of its bytes, as a structured-field string (quoted, as
// the IETF draft specifies), e.g. "1111…/2024-03-13T11:00:00Z/PT1H@9f86d081884c7d659a2feaa0c55ad015".
// A retried POST of the same document carries the same key; an updated document of the same period a
// different one.
func IdempotencyKey(documentID string, body []byte) string {
	sum := sha256.Sum256(body)
	key := documentID + "@" + hex.EncodeToString(sum[:16])
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range key {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e: // sf-string allows printable ASCII only
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// httpSender POSTs documents. Its queue and retries are exporterhelper's (`sending_queue`,
// `retry_on_failure`): every document is one log record (body: the document's bytes) in a queue of its
// own, so a retry sends exactly the bytes and the key of the failed attempt.
type httpSender struct {
	cfg    *confighttp.ClientConfig
	set    exporter.Settings
	tb     *metadata.TelemetryBuilder
	client *http.Client
	queue  exporter.Logs
}

// deliveryID is the component id under which exporterhelper reports the HTTP stage's queue and send
// metrics (otelcol_exporter_queue_size, otelcol_exporter_sent_log_records — here: documents — ...):
// the exporter's own id with "/http_delivery" appended to its name.
func deliveryID(id component.ID) component.ID {
	name := "http_delivery"
	if id.Name() != "" {
		name = id.Name() + "/" + name
	}
	return component.NewIDWithName(id.Type(), name)
}

func newHTTPSender(ctx context.Context, set exporter.Settings, cfg *Config, tb *metadata.TelemetryBuilder) (*httpSender, error) {
	s := &httpSender{cfg: cfg.HTTP.Get(), set: set, tb: tb}
	qset := set
	qset.ID = deliveryID(set.ID)
	q, err := exporterhelper.NewLogs(ctx, qset, cfg, s.push,
		exporterhelper.WithStart(s.startClient),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}), // the client's `http.timeout` bounds each POST
		exporterhelper.WithRetry(cfg.RetryConfig),
		exporterhelper.WithQueue(cfg.QueueConfig),
	)
	if err != nil {
		return nil, err
	}
	s.queue = q
	return s, nil
}

func (s *httpSender) startClient(ctx context.Context, host component.Host) error {
	client, err := s.cfg.ToClient(ctx, host.GetExtensions(), s.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("`http`: %w", err)
	}
	s.client = client
	return nil
}

func (s *httpSender) start(ctx context.Context, host component.Host) error {
	return s.queue.Start(ctx, host)
}

func (s *httpSender) shutdown(ctx context.Context) error {
	return s.queue.Shutdown(ctx)
}

// enqueue hands a document to the queue (or, without a queue, sends it with retries).
func (s *httpSender) enqueue(ctx context.Context, d due) error {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetEmptyBytes().FromRaw(d.body)
	lr.Attributes().PutStr(queueAttrDocumentID, d.id)
	lr.Attributes().PutStr(queueAttrTenant, d.key.label())
	return s.queue.ConsumeLogs(ctx, ld)
}

// push POSTs every document of a queued request. An error makes exporterhelper retry the request; a
// document already accepted is then POSTed again with the same key, which the server de-duplicates.
func (s *httpSender) push(ctx context.Context, ld plog.Logs) error {
	var errs []error
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				id := attrString(lr.Attributes(), queueAttrDocumentID)
				tenant := attrString(lr.Attributes(), queueAttrTenant)
				err := s.post(ctx, id, lr.Body().Bytes().AsRaw())
				opt := metric.WithAttributes(attribute.String("tenant", tenant))
				if err != nil {
					s.tb.O365ExportDeliveryFailures.Add(ctx, 1, metric.WithAttributes(
						attribute.String("tenant", tenant), attribute.String("destination", "http")))
					s.set.Logger.Warn("POST of the export document failed", zap.String("tenant", tenant),
						zap.String("document_id", id), zap.Bool("retryable", !consumererror.IsPermanent(err)), zap.Error(err))
					errs = append(errs, err)
					continue
				}
				s.tb.O365ExportDocumentsPosted.Add(ctx, 1, opt)
			}
		}
	}
	return joinSendErrors(errs)
}

// joinSendErrors is permanent only when every failure was.
func joinSendErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		if !consumererror.IsPermanent(err) {
			return errors.Join(errs...)
		}
	}
	return consumererror.NewPermanent(errors.Join(errs...))
}

func (s *httpSender) post(ctx context.Context, id string, body []byte) error {
	if s.client == nil {
		return errors.New("the HTTP client is not started")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, IdempotencyKey(id, body))
	req.Header.Set(HeaderDocumentID, id)
	req.Header.Set(HeaderExportVersion, strconv.Itoa(ExportVersion))
	resp, err := s.client.Do(req)
	if err != nil {
		return err // network errors are retryable
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s answered %s: %s", s.cfg.Endpoint, resp.Status, strings.TrimSpace(string(msg)))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return exporterhelper.NewThrottleRetry(err, d)
		}
		return err
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly:
		// 409: a request with the same Idempotency-Key is still being processed (IETF draft).
		return err
	}
	if resp.StatusCode >= 500 {
		return err
	}
	return consumererror.NewPermanent(err) // 4xx: sending the same bytes again cannot succeed
}

// retryAfter parses Retry-After: delay seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}
