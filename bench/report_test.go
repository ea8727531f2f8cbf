package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeResults() *Results {
	mk := func(name string, bytes int64, eng, full, signed float64) ModelResult {
		return ModelResult{
			Name: name, Title: name, Source: "test", Bytes: bytes, SHA256: strings.Repeat("ab", 32),
			Inputs: []string{"x float32[1,4]"}, Outputs: []string{"y float32[1,3]"},
			Engine: Summary{N: 50, P50US: eng, P99US: eng * 1.2}, Full: Summary{N: 50, P50US: full, P99US: full * 1.2},
			Signed: Summary{N: 50, P50US: signed}, ServerEngine: Summary{N: 50, P50US: eng},
			OutputsMatch: true,
			RatioP50:     full / eng, RatioP99: full / eng, SignedRatioP50: signed / eng,
			AddedP50US: full - eng, SignedAddedUS: signed - eng,
			Throughput: []ThroughputPoint{{1, 100, 95, 0.95, 9000, 900, 9500}, {2, 180, 150, 150.0 / 180, 9100, 950, 9600}},
			Upload: UploadResult{Runs: 1, ChunkBytes: 32 << 10, TransferS: 1, MBps: float64(bytes) / 1e6, ReadyS: 2, ReadyMBps: 1,
				RSSBeforeBytes: 50e6, PeakBytes: 50e6 + 2*bytes, RSSAfterBytes: 50e6 + bytes, PeakAddedBytes: 2 * bytes,
				PeakAddedRatio: 2, PeakTotalRatio: float64(50e6+2*bytes) / float64(bytes), PeakMethod: "test"},
		}
	}
	res := &Results{
		FormatVersion: FormatVersion, StartedAt: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), DurationS: 12, Command: "make bench",
		Machine:  Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.26", ORTVersion: "1.30.0"},
		Settings: Settings{Concurrency: []int{1, 2}, Warmup: 1, MinRuns: 1, MaxRuns: 2},
		Models:   []ModelResult{mk("mlp", 805, 10, 200, 400), mk("encoder", 265e6, 100000, 102000, 102500)},
		BlindAI:  BlindAIPublished,
	}
	res.Targets = EvaluateTargets(res, Models())
	return res
}

func TestEvaluateTargets(t *testing.T) {
	res := fakeResults()
	got := map[string]TargetResult{}
	for _, tr := range res.Targets {
		got[tr.Name] = tr
	}
	for name, met := range map[string]bool{
		"mlp added cost":         true,  // 190 µs ≤ 250
		"mlp added cost, signed": false, // 390 µs > 300
		"encoder latency":        true,  // 1.02 ≤ 1.03
		"encoder throughput":     false, // 0.83 at 2 < 0.9
		"encoder upload":         true,  // 265 MB/s ≥ 150
		"encoder server memory":  true,  // (50+530)/265 = 2.19 ≤ 2.5
	} {
		tr, ok := got[name]
		if !ok {
			t.Errorf("no target %q in %v", name, res.Targets)
			continue
		}
		if tr.Met != met {
			t.Errorf("target %q met = %v, want %v (%+v)", name, tr.Met, met, tr)
		}
		if prefix := map[bool]string{true: "met", false: "missed by"}[met]; !strings.HasPrefix(tr.Margin, prefix) {
			t.Errorf("target %q margin %q does not start with %q", name, tr.Margin, prefix)
		}
	}
	if tr := got["mlp added cost, signed"]; !strings.Contains(tr.Margin, "90 µs") {
		t.Errorf("signed MLP margin = %q, want it to say 90 µs", tr.Margin)
	}
	if _, ok := got["mlp upload"]; ok {
		t.Error("an 805-byte model is held to the upload-speed target")
	}
	if s := TargetsText(res); !strings.Contains(s, "MISSED") || !strings.Contains(s, "MET") {
		t.Errorf("TargetsText = %q", s)
	}
}

func TestRenderMarkdown(t *testing.T) {
	res := fakeResults()
	doc := RenderMarkdown(res, "benchmarks.svg", "Some analysis.")
	for _, want := range []string{
		"# Benchmarks", "Test CPU", "1.30.0", "`make bench`", "## Targets", "**missed**", "**met**",
		"| encoder | 265 MB |", "1.020×", "BlindAI", "Wav2vec2", "4.2×", "![", "benchmarks.svg",
		"Some analysis.", "benchstat old.txt new.txt", "## Throughput", "**CPU time per request**", "| mlp | 9000 µs / 9100 µs | 900 µs / 950 µs | 9500 µs / 9600 µs | 1.16× / 1.16× |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	doc, chart := filepath.Join(dir, "b.md"), filepath.Join(dir, "b.svg")
	if err := writeReport(fakeResults(), doc, chart); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("chart is not SVG (err %v)", err)
	}
	md, err := os.ReadFile(doc)
	if err != nil || !strings.Contains(string(md), "](b.svg)") {
		t.Fatalf("doc does not link the chart by a relative path (err %v)", err)
	}
}
