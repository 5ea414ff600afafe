// Package shipcheck reads the collector configurations we ship (collector-config.yaml, the README
// examples, the deploy files) and says where one would break the receiver's delivery guarantee: its
// acceptance of a page must mean the page is written, in every pipeline the o365 receiver feeds
// (receiver/o365receiver/README.md, "Delivery guarantee and the pipeline").
package shipcheck

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a collector configuration as YAML maps.
type Config map[string]any

// Parse reads a collector configuration.
func Parse(text string) (Config, error) {
	var m map[string]any // not Config: yaml would decode every nested map as one
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		return nil, err
	}
	return Config(m), nil
}

// componentType is a component id's type: "otlp_grpc/siem" → "otlp_grpc".
func componentType(id string) string {
	t, _, _ := strings.Cut(id, "/")
	return t
}

// Exporter types whose exporterhelper queue answers before the write, unless it is persistent (or off).
var queuedExporters = map[string]bool{"otlp": true, "otlp_grpc": true, "otlphttp": true, "otlp_http": true}

// Exporter types with the same default in-memory queue but no retries: the debug exporter (core
// v0.161.0). What it writes is no delivery, but its full queue refuses a page with a retryable error, which
// the receiver then re-delivers to every pipeline it feeds.
var queuedWithoutRetry = map[string]bool{"debug": true}

// Violations lists, per pipeline fed by the o365 receiver, what would make its acceptance not durable:
// a batch processor; an OTLP exporter whose sending_queue is in memory, batches without an upper bound
// or gives up retrying; a debug exporter whose sending_queue is in memory; a file exporter without
// rotation (which buffers its writes); an o365_export exporter without its journal.
func Violations(c Config) []string {
	var out []string
	service, _ := c["service"].(map[string]any)
	pipelines, _ := service["pipelines"].(map[string]any)
	exporters, _ := c["exporters"].(map[string]any)
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p, _ := pipelines[name].(map[string]any)
		if !feedsFromO365(p) {
			continue
		}
		for _, id := range list(p["processors"]) {
			if componentType(id) == "batch" {
				out = append(out, fmt.Sprintf("pipeline %s: processor %s acknowledges before the exporters wrote", name, id))
			}
		}
		for _, id := range list(p["exporters"]) {
			cfg, _ := exporters[id].(map[string]any)
			switch t := componentType(id); {
			case queuedExporters[t]:
				out = append(out, queueViolations(name, id, cfg)...)
			case queuedWithoutRetry[t]:
				if v := memoryQueue(name, id, cfg); v != "" {
					out = append(out, v)
				}
			case t == "file":
				if _, ok := cfg["rotation"]; !ok {
					out = append(out, fmt.Sprintf("pipeline %s: exporter %s without rotation buffers its writes", name, id))
				}
			case t == "o365_export":
				j, _ := cfg["journal"].(map[string]any)
				if enabled, ok := j["enabled"].(bool); ok && !enabled {
					out = append(out, fmt.Sprintf("pipeline %s: exporter %s counts in memory (journal disabled)", name, id))
				}
			}
		}
	}
	return out
}

// memoryQueue says when an exporter's sending_queue is enabled (the default) without storage.
func memoryQueue(pipeline, id string, cfg map[string]any) string {
	q, _ := cfg["sending_queue"].(map[string]any)
	if s, _ := q["storage"].(string); s == "" && !queueDisabled(cfg) {
		return fmt.Sprintf("pipeline %s: exporter %s queues in memory (sending_queue.storage is not set)", pipeline, id)
	}
	return ""
}

func queueDisabled(cfg map[string]any) bool {
	q, _ := cfg["sending_queue"].(map[string]any)
	enabled, ok := q["enabled"].(bool)
	return ok && !enabled
}

func queueViolations(pipeline, id string, cfg map[string]any) []string {
	if queueDisabled(cfg) {
		return nil // no queue: the export itself is the acceptance
	}
	var out []string
	if v := memoryQueue(pipeline, id, cfg); v != "" {
		out = append(out, v)
	}
	q, _ := cfg["sending_queue"].(map[string]any)
	if b, ok := q["batch"]; ok && b != nil {
		if m, _ := b.(map[string]any); m["max_size"] == nil {
			out = append(out, fmt.Sprintf("pipeline %s: exporter %s batches without sending_queue.batch.max_size (requests can outgrow what the backend takes, and a rejected batch is dropped)", pipeline, id))
		}
	}
	r, _ := cfg["retry_on_failure"].(map[string]any)
	if enabled, ok := r["enabled"].(bool); ok && !enabled {
		out = append(out, fmt.Sprintf("pipeline %s: exporter %s drops a batch at its first failure (retry_on_failure disabled)", pipeline, id))
	} else if m := fmt.Sprint(r["max_elapsed_time"]); m != "0" && m != "0s" {
		out = append(out, fmt.Sprintf("pipeline %s: exporter %s drops a queued batch after retry_on_failure.max_elapsed_time (%s; want 0)", pipeline, id, m))
	}
	return out
}

func feedsFromO365(p map[string]any) bool {
	for _, id := range list(p["receivers"]) {
		if componentType(id) == "o365" {
			return true
		}
	}
	return false
}

func list(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)`)

// EnvRefs lists the environment variables a configuration references (`${env:NAME}`).
func EnvRefs(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// ExampleValue stands in for an environment variable of a configuration being validated: a connection
// string where one is expected, any text otherwise.
func ExampleValue(name string) string {
	if strings.Contains(name, "DSN") {
		return "postgres://otelcol@127.0.0.1:5432/otelcol"
	}
	return "example-value-for-validate"
}

var (
	yamlBlock  = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	serviceKey = regexp.MustCompile(`(?m)^service:`)
)

// MarkdownConfigs returns the YAML blocks of a Markdown file that are whole collector configurations
// (they have a `service:` section), with the line each starts at.
func MarkdownConfigs(path string) (map[int]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, loc := range yamlBlock.FindAllSubmatchIndex(raw, -1) {
		block := string(raw[loc[2]:loc[3]])
		if serviceKey.MatchString(block) {
			out[1+strings.Count(string(raw[:loc[2]]), "\n")] = block
		}
	}
	return out, nil
}
