package o365exportexporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/durable"
)

// directory is the directory destination: <path>/<tenant>/<start>_<period>.json, e.g.
// export/contoso/20240313T110000Z_PT1H.json.
type directory struct {
	cfg    *DirectoryConfig
	period time.Duration
}

func newDirectory(cfg *DirectoryConfig, period time.Duration) *directory {
	return &directory{cfg: cfg, period: period}
}

// fileTimeLayout is ISO 8601's basic format: no ':' (not allowed in Windows file names).
const fileTimeLayout = "20060102T150405Z"

var fileNameRE = regexp.MustCompile(`^(\d{8}T\d{6}Z)_(PT[0-9HM]+)\.json$`)

// tenantDir is the tenant's sub-directory: its label with every character other than letters, digits,
// '.', '_' and '-' replaced by '_' (the receiver allows only those in tenant names).
func tenantDir(key tenantKey) string {
	label := key.label()
	var b strings.Builder
	for _, r := range label {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s == "." || s == ".." {
		s = "_" + s
	}
	return s
}

func fileName(start time.Time, period time.Duration) string {
	return start.UTC().Format(fileTimeLayout) + "_" + isoDuration(period) + ".json"
}

// Path returns where the document of a tenant and period is written.
func (d *directory) path(key tenantKey, start time.Time) string {
	return filepath.Join(d.cfg.Path, tenantDir(key), fileName(start, d.period))
}

// prepare creates the directory and removes temporary files a crash may have left behind.
func (d *directory) prepare() error {
	if err := os.MkdirAll(d.cfg.Path, 0o750); err != nil {
		return fmt.Errorf("`directory.path`: %w", err)
	}
	tenants, err := os.ReadDir(d.cfg.Path)
	if err != nil {
		return fmt.Errorf("`directory.path`: %w", err)
	}
	for _, t := range tenants {
		if !t.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.cfg.Path, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if durable.IsTemporary(f.Name()) {
				_ = os.Remove(filepath.Join(d.cfg.Path, t.Name(), f.Name()))
			}
		}
	}
	return nil
}

// write replaces the document atomically (durable.WriteFile): a reader sees the old or the new
// document, never a part of one, and a crash leaves one of them.
func (d *directory) write(key tenantKey, start time.Time, body []byte) error {
	return durable.WriteFile(d.path(key, start), body, 0o640)
}

// exists tells whether a document was written for the tenant's period.
func (d *directory) exists(key tenantKey, start time.Time) bool {
	_, err := os.Stat(d.path(key, start))
	return err == nil
}

// read returns the document written earlier for a tenant and period, nil when there is none.
func (d *directory) read(key tenantKey, start time.Time) (*document, error) {
	raw, err := os.ReadFile(d.path(key, start))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	doc, err := parseDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path(key, start), err)
	}
	if doc.Tenant.ID != key.id || doc.Tenant.Name != key.name {
		return nil, fmt.Errorf("%s: belongs to tenant %q (%s), not %q (%s)", d.path(key, start), doc.Tenant.Name, doc.Tenant.ID, key.name, key.id)
	}
	return doc, nil
}

// parseDocument reads a version 1 document (numbers inside entities and context stay exact).
func parseDocument(raw []byte) (*document, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc.ExportVersion != ExportVersion {
		return nil, fmt.Errorf("export_version %d is not %d", doc.ExportVersion, ExportVersion)
	}
	return &doc, nil
}

// retain applies max_age and max_documents_per_tenant to a tenant's documents (of any period length)
// and returns how many it deleted. Only files named as this exporter names documents are touched.
func (d *directory) retain(key tenantKey, now time.Time) (int, error) {
	if d.cfg.MaxAge == 0 && d.cfg.MaxDocumentsPerTenant == 0 {
		return 0, nil
	}
	dir := filepath.Join(d.cfg.Path, tenantDir(key))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	type file struct {
		name       string
		start, end time.Time
	}
	var files []file
	for _, en := range entries {
		m := fileNameRE.FindStringSubmatch(en.Name())
		if m == nil || en.IsDir() {
			continue
		}
		start, err := time.Parse(fileTimeLayout, m[1])
		if err != nil {
			continue
		}
		length, ok := parseISODuration(m[2])
		if !ok {
			continue
		}
		files = append(files, file{name: en.Name(), start: start, end: start.Add(length)})
	}
	sort.Slice(files, func(i, j int) bool { // newest first
		if !files[i].start.Equal(files[j].start) {
			return files[i].start.After(files[j].start)
		}
		return files[i].name > files[j].name
	})
	deleted := 0
	var errs []error
	for i, f := range files {
		old := d.cfg.MaxAge > 0 && now.Sub(f.end) > d.cfg.MaxAge
		surplus := d.cfg.MaxDocumentsPerTenant > 0 && i >= d.cfg.MaxDocumentsPerTenant
		if !old && !surplus {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}
