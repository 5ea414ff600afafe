package o365readinessextension

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// chromiumPath finds a Chromium to drive headless (Debian package `chromium`; the Makefile installs it).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runChromium runs headless Chromium with a throw-away profile and no network of its own besides url.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir=" + filepath.Join(dir, "profile"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium failed: %s", stderr.String())
	return stdout.Bytes()
}

// The status page, rendered by a real browser: the DOM holds the tenants × datasets grid with each
// cell's state, and the screenshot shows a drawn table (header, green and red cells, dark borders and
// text on a light background).
func TestStatusPageInChromium(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		t.Skip("chromium is not installed (Debian: apt-get install -y chromium); skipping the headless-browser check of the status page")
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 41, Tenants: []graphsim.Tenant{simTenant(1, false), simTenant(2, true)}})
	ext, c := startExtension(t)
	startReceiver(t, simReceiverConfig(sim, 1, 2), new(consumertest.LogsSink), ext)
	c.waitTenant("tenant1", polledOnce)
	c.waitTenant("tenant2", polledOnce)
	url := c.base + "/"

	// The DOM after rendering.
	dom := string(runChromium(t, bin, "--dump-dom", url))
	c.record([]byte(dom))
	require.Contains(t, dom, `<table id="readiness">`)
	assert.Contains(t, dom, `<span class="badge not-ready" id="overall">not ready</span>`)
	assert.Regexp(t, `<th>tenant</th>\s*<th>signins</th>\s*<th>directory_audits</th>`, dom)
	rows := regexp.MustCompile(`(?s)<tr data-tenant="([^"]+)">(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
	require.Len(t, rows, 2, dom)
	cells := func(row string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`(?s)<td class="(ok|warn|bad|off|none)"[^>]*>(.*?)</td>`).FindAllStringSubmatch(row, -1) {
			out = append(out, m[1]+": "+strings.Join(strings.Fields(stripTags(m[2])), " "))
		}
		return out
	}
	assert.Equal(t, "tenant1", rows[0][1])
	t1 := cells(rows[0][2])
	require.Len(t, t1, 2, rows[0][2])
	assert.Regexp(t, `^ok: ok records last poll: 40 · lag \S+ last poll \S+$`, t1[0])
	assert.Regexp(t, `^ok: ok records last poll: 25 · lag \S+ last poll \S+$`, t1[1])
	assert.Equal(t, "tenant2", rows[1][1])
	t2 := cells(rows[1][2])
	require.Len(t, t2, 2, rows[1][2])
	assert.Contains(t, t2[0], "bad: cooling_down records last poll: 0")
	assert.Contains(t, t2[0], "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	assert.Regexp(t, `^ok: ok records last poll: 25 `, t2[1])
	assert.Contains(t, dom, "tenant2: signins: tenant2/signins/interactive: last poll failed")

	// The screenshot.
	shot := filepath.Join(t.TempDir(), "status.png")
	runChromium(t, bin, "--window-size=1200,800", "--screenshot="+shot, url)
	if dir := os.Getenv("O365_READINESS_SCREENSHOT_DIR"); dir != "" { // to look at it
		raw, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "o365_readiness_status.png"), raw, 0o600))
	}
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "the screenshot is a PNG")
	require.Equal(t, image.Rect(0, 0, 1200, 800), img.Bounds())

	// Locate the table by its colours (header #1f2933, ok cells #c8f0c8, bad cells #f8c9c9) and look
	// inside its bounding box.
	near := func(r, g, b, R, G, B uint32) bool {
		return absDiff(r, R) <= 8 && absDiff(g, G) <= 8 && absDiff(b, B) <= 8
	}
	var header, green, red, dark, light int
	box := image.Rectangle{Min: img.Bounds().Max, Max: img.Bounds().Min}
	for y := 0; y < 800; y++ {
		for x := 0; x < 1200; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			inTable := false
			switch {
			case near(r, g, b, 0x1f, 0x29, 0x33):
				header++
				inTable = true
			case near(r, g, b, 0xc8, 0xf0, 0xc8):
				green++
				inTable = true
			case near(r, g, b, 0xf8, 0xc9, 0xc9):
				red++
				inTable = true
			}
			if inTable {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	assert.Greater(t, header, 2000, "the header row is drawn")
	assert.Greater(t, green, 2000, "ready cells are green")
	assert.Greater(t, red, 1000, "the unlicensed sign-ins cell is red")
	require.False(t, box.Empty())
	assert.Greater(t, box.Dx(), 300, "the table spans the columns")
	assert.Greater(t, box.Dy(), 100, "and the rows")
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			switch luma := (299*(r>>8) + 587*(g>>8) + 114*(b>>8)) / 1000; {
			case luma < 80:
				dark++
			case luma > 200:
				light++
			}
		}
	}
	area := box.Dx() * box.Dy()
	assert.Greater(t, dark, area/50, "dark pixels (borders, text, header) inside the table")
	assert.Greater(t, light, area/4, "light pixels (cell backgrounds) inside the table")
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

var tagPattern = regexp.MustCompile(`<[^>]*>`)

func stripTags(s string) string { return tagPattern.ReplaceAllString(s, " ") }
