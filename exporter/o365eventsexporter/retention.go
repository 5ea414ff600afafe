package o365eventsexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// deleteChunkRecords bounds one retention transaction, so that writes wait for it only briefly.
const deleteChunkRecords = 10_000

// retentionLoop enforces the retention at start and then every `retention.interval`.
func (e *eventsExporter) retentionLoop(stop <-chan struct{}) {
	defer e.done.Done()
	t := time.NewTicker(e.cfg.Retention.Interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := e.enforceRetention(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("Retention pass failed; it runs again at the next interval", zap.Error(e.db.Redact.Error(err)))
		}
		cancel()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// enforceRetention deletes, per tenant, the records older than `max_age` and then the oldest beyond
// `max_records_per_tenant`, in transactions of at most deleteChunkRecords.
func (e *eventsExporter) enforceRetention(ctx context.Context) error {
	s := e.currentStore()
	if s == nil {
		return errNotStarted
	}
	if e.cfg.Retention.MaxAge <= 0 && e.cfg.Retention.MaxRecordsPerTenant <= 0 {
		return nil
	}
	tenants, err := s.tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if e.cfg.Retention.MaxAge > 0 {
			cutoff := e.now().Add(-e.cfg.Retention.MaxAge).UnixNano()
			for {
				n, err := s.deleteBefore(ctx, t.tenant, cutoff, deleteChunkRecords)
				if err != nil {
					return err
				}
				e.countDeleted(ctx, reasonMaxAge, n)
				t.records -= n
				if n < deleteChunkRecords {
					break
				}
			}
		}
		for max := e.cfg.Retention.MaxRecordsPerTenant; max > 0 && t.records > max; {
			n, err := s.deleteBeyond(ctx, t.tenant, max, min(t.records-max, deleteChunkRecords))
			if err != nil {
				return err
			}
			e.countDeleted(ctx, reasonMaxRecords, n)
			if n == 0 {
				break
			}
			t.records -= n
		}
	}
	return nil
}

func (e *eventsExporter) countDeleted(ctx context.Context, reason string, n int64) {
	if n > 0 {
		e.tb.O365EventsRecordsDeleted.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
}
