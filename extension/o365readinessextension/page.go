package o365readinessextension

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Parse(pageSource))

// pageData is what the status page shows.
type pageData struct {
	Ready      bool
	CheckedAt  string
	Version    string
	Datasets   []string
	Rows       []pageRow
	Reasons    []string
	Warnings   []string
	Components []ComponentStatus
}

type pageRow struct {
	Tenant   string
	Receiver string
	Ready    bool
	Cells    []pageCell
}

// pageCell is one tenant × dataset.
type pageCell struct {
	Present bool
	// Class is ok, warn, bad or off (not counted towards readiness).
	Class     string
	State     string
	Lag       string
	Records   int
	LastPoll  string
	LastError string
	Title     string
}

// maxCellError bounds the error text shown in a cell; the full text is in the cell's title and the JSON.
const maxCellError = 160

func (e *readinessExtension) handlePage(w http.ResponseWriter, r *http.Request) {
	agg, tenants := e.aggregate(r.Context())
	data := pageData{
		Ready: agg.Ready, CheckedAt: agg.CheckedAt.Format(time.RFC3339), Version: e.set.BuildInfo.Version,
		Reasons: agg.Reasons, Warnings: agg.Warnings, Components: agg.Components,
	}
	// Columns: every dataset of any tenant, in order of first appearance.
	seen := map[string]bool{}
	for _, t := range tenants {
		for _, d := range t.Datasets {
			if !seen[d.Name] {
				seen[d.Name] = true
				data.Datasets = append(data.Datasets, d.Name)
			}
		}
	}
	for _, t := range tenants {
		row := pageRow{Tenant: t.Tenant, Receiver: t.Receiver, Ready: t.Ready}
		byName := map[string]DatasetReadiness{}
		for _, d := range t.Datasets {
			byName[d.Name] = d
		}
		for _, name := range data.Datasets {
			d, ok := byName[name]
			if !ok {
				row.Cells = append(row.Cells, pageCell{})
				continue
			}
			row.Cells = append(row.Cells, cellOf(d))
		}
		data.Rows = append(data.Rows, row)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		writeError(w, http.StatusInternalServerError, "rendering the status page failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Inline styles only; no script, no external resource of any kind.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	// Always 200: the page is for people; probes use /readiness.
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func cellOf(d DatasetReadiness) pageCell {
	c := pageCell{Present: true, State: d.State, Records: d.RecordsLastPoll}
	switch {
	case !d.CountsForReadiness, d.State == o365status.StateStandby:
		c.Class = "off"
	case !d.Ready:
		c.Class = "bad"
	case len(d.Warnings) > 0:
		c.Class = "warn"
	default:
		c.Class = "ok"
	}
	if d.WatermarkLagSeconds != nil {
		c.Lag = time.Duration(*d.WatermarkLagSeconds * float64(time.Second)).Round(time.Second).String()
	}
	if d.LastPollEnd != nil {
		c.LastPoll = d.LastPollEnd.Format(time.RFC3339)
	}
	var errs []string
	for _, s := range d.Streams {
		if s.LastError != "" {
			errs = append(errs, s.LastError)
		}
	}
	if len(errs) == 0 && len(d.Reasons) > 0 {
		errs = d.Reasons
	}
	full := strings.Join(errs, "\n")
	c.Title = full
	if r := []rune(full); len(r) > maxCellError {
		full = string(r[:maxCellError]) + "…"
	}
	c.LastError = full
	return c
}
