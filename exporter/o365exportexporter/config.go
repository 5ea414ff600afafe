package o365exportexporter

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the `o365_export` exporter's configuration.
type Config struct {
	// Period is the width of the UTC-aligned time buckets a document covers (by record timestamp). It
	// must divide 24h evenly in whole minutes, so that periods start at the same instants every day.
	Period time.Duration `mapstructure:"period"`
	// FlushDelay is how long after its period ended, and after its oldest unwritten record arrived, a
	// document is written: late records inside it share one write.
	FlushDelay time.Duration `mapstructure:"flush_delay"`
	// StateIdleTimeout is how long a period's state stays in memory after its document was written and
	// its last record arrived; a record that comes later resumes from the written document (directory).
	StateIdleTimeout time.Duration `mapstructure:"state_idle_timeout"`
	// MaxRecordsPerTenant bounds the records (their dedup keys, and events with include_events) held in
	// memory for one tenant across its periods.
	MaxRecordsPerTenant int `mapstructure:"max_records_per_tenant"`
	// IncludeEvents adds the normalized events (every attribute of every normalized record) to documents.
	IncludeEvents bool `mapstructure:"include_events"`
	// IncludeGeneratedAt adds `generated_at`, the wall-clock time the document was built. Documents are
	// then no longer byte-for-byte reproducible.
	IncludeGeneratedAt bool `mapstructure:"include_generated_at"`

	// Directory writes one file per tenant and period.
	Directory configoptional.Optional[DirectoryConfig] `mapstructure:"directory"`
	// HTTP POSTs every written document (confighttp client settings; `endpoint` is the full URL).
	HTTP configoptional.Optional[confighttp.ClientConfig] `mapstructure:"http"`
	// RetryConfig and QueueConfig apply to the HTTP destination (exporterhelper).
	RetryConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// SummaryServer serves GET /export/summary.
	SummaryServer configoptional.Optional[SummaryServerConfig] `mapstructure:"summary_server"`
	// Journal makes acceptance durable: every record counted is on disk before ConsumeLogs returns.
	// On unless `enabled: false`.
	Journal configoptional.Optional[JournalConfig] `mapstructure:"journal"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DirectoryConfig is the directory destination.
type DirectoryConfig struct {
	// Path of the directory; created at start when missing. Documents go to <path>/<tenant>/<file>.
	Path string `mapstructure:"path"`
	// MaxAge deletes documents whose period ended longer ago than this (0: keep them).
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxDocumentsPerTenant keeps only the newest N documents (by period) of each tenant (0: all).
	MaxDocumentsPerTenant int `mapstructure:"max_documents_per_tenant"`

	_ struct{}
}

// JournalConfig is where the journal of accepted records lives.
type JournalConfig struct {
	// Path of the journal's directory; default <directory.path>/.journal. Required without `directory`.
	Path string `mapstructure:"path"`

	_ struct{}
}

// journalDirName is the journal's directory inside `directory.path` by default. Tenant directories
// never start with a dot (tenant names start with a letter or digit).
const journalDirName = ".journal"

// journalPath is the journal's directory, "" when the journal is disabled.
func (cfg *Config) journalPath() string {
	if !cfg.Journal.HasValue() {
		return ""
	}
	if p := cfg.Journal.Get().Path; strings.TrimSpace(p) != "" {
		return p
	}
	if cfg.Directory.HasValue() {
		return filepath.Join(cfg.Directory.Get().Path, journalDirName)
	}
	return ""
}

// SummaryServerConfig is the HTTP server of GET /export/summary.
type SummaryServerConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// MaxDocumentsPerTenant is how many recent documents (by period) of each tenant the server keeps in
	// memory for `since` queries.
	MaxDocumentsPerTenant int `mapstructure:"max_documents_per_tenant"`

	_ struct{}
}

// Defaults.
const (
	defaultPeriod              = time.Hour
	defaultFlushDelay          = 5 * time.Minute
	defaultStateIdleTimeout    = 2 * time.Hour
	defaultMaxRecordsPerTenant = 500_000
	defaultSummaryDocuments    = 168 // a week of hourly documents
	defaultSummaryEndpoint     = "127.0.0.1:13135"
	defaultHTTPTimeout         = 30 * time.Second
)

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	day := 24 * time.Hour
	switch {
	case cfg.Period < time.Minute || cfg.Period > day || cfg.Period%time.Minute != 0 || day%cfg.Period != 0:
		errs = append(errs, fmt.Errorf("`period` must divide 24h evenly in whole minutes (e.g. 15m, 1h, 6h, 24h), got %s", cfg.Period))
	}
	if cfg.FlushDelay < 0 {
		errs = append(errs, fmt.Errorf("`flush_delay` must not be negative, got %s", cfg.FlushDelay))
	}
	if cfg.StateIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("`state_idle_timeout` must be positive, got %s", cfg.StateIdleTimeout))
	}
	if cfg.MaxRecordsPerTenant < 1 {
		errs = append(errs, fmt.Errorf("`max_records_per_tenant` must be at least 1, got %d", cfg.MaxRecordsPerTenant))
	}
	if !cfg.Directory.HasValue() && !cfg.HTTP.HasValue() && !cfg.SummaryServer.HasValue() {
		errs = append(errs, errors.New("at least one of `directory`, `http` or `summary_server` must be configured"))
	}
	if cfg.Directory.HasValue() {
		d := cfg.Directory.Get()
		if strings.TrimSpace(d.Path) == "" {
			errs = append(errs, errors.New("`directory.path` must be set"))
		} else if filepath.Clean(d.Path) == string(filepath.Separator) {
			errs = append(errs, errors.New("`directory.path` must not be the root directory"))
		}
		if d.MaxAge < 0 {
			errs = append(errs, fmt.Errorf("`directory.max_age` must not be negative (0 keeps every document), got %s", d.MaxAge))
		}
		if d.MaxDocumentsPerTenant < 0 {
			errs = append(errs, fmt.Errorf("`directory.max_documents_per_tenant` must not be negative (0 keeps every document), got %d", d.MaxDocumentsPerTenant))
		}
	}
	if cfg.HTTP.HasValue() {
		h := cfg.HTTP.Get()
		if u, err := url.Parse(h.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("`http.endpoint` must be an http:// or https:// URL, got %q", h.Endpoint))
		}
	}
	if cfg.SummaryServer.HasValue() {
		s := cfg.SummaryServer.Get()
		if strings.TrimSpace(s.ServerConfig.NetAddr.Endpoint) == "" {
			errs = append(errs, errors.New("`summary_server.endpoint` must be set (host:port, e.g. "+defaultSummaryEndpoint+")"))
		}
		if s.MaxDocumentsPerTenant < 1 {
			errs = append(errs, fmt.Errorf("`summary_server.max_documents_per_tenant` must be at least 1, got %d", s.MaxDocumentsPerTenant))
		}
	}
	if cfg.Journal.HasValue() {
		path := strings.TrimSpace(cfg.Journal.Get().Path)
		switch {
		case path == "" && (cfg.HTTP.HasValue() || cfg.SummaryServer.HasValue()) && !cfg.Directory.HasValue():
			errs = append(errs, errors.New("`journal.path` must be set when there is no `directory` "+
				"(or `journal: { enabled: false }` to count records in memory only, which a crash loses)"))
		case path != "" && filepath.Clean(path) == string(filepath.Separator):
			errs = append(errs, errors.New("`journal.path` must not be the root directory"))
		}
	}
	return errors.Join(errs...)
}
