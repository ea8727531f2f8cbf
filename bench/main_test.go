package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/engine"
)

// TestMain lets the test binary act as the benchmark's server process,
// which Main starts by running its own executable again.
func TestMain(m *testing.M) {
	if IsChildProcess() {
		os.Exit(RunChild())
	}
	os.Exit(m.Run())
}

// TestQuickRun runs `blindfold-bench --quick` on the tiny MLP end to end and
// checks that the JSON results hold every field with plausible values.
func TestQuickRun(t *testing.T) {
	if _, err := engine.FindLibrary(""); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			t.Fatalf("ONNX Runtime library not found (run make onnxruntime or set %s): %v", engine.LibraryEnv, err)
		}
		t.Skipf("ONNX Runtime library not found (run make onnxruntime or set %s): %v", engine.LibraryEnv, err)
	}
	dir := t.TempDir()
	out, doc := filepath.Join(dir, "r.json"), filepath.Join(dir, "benchmarks.md")
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--models", "mlp", "--out", out, "--doc", doc, "--cache-dir", filepath.Join(dir, "cache"), "--concurrency", "1,2"}
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("Main exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	checkFields(t, "results", reflect.TypeOf(Results{}), raw)

	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Models) != 1 || res.Models[0].Name != "mlp" {
		t.Fatalf("models = %+v, want the MLP only", res.Models)
	}
	m := res.Models[0]
	for name, s := range map[string]Summary{"engine": m.Engine, "full": m.Full, "signed": m.Signed, "server_engine": m.ServerEngine} {
		if s.N < 20 || s.P50US <= 0 || s.P99US < s.P50US || s.MinUS > s.P50US || s.MaxUS < s.P99US {
			t.Errorf("%s latency summary is implausible: %+v", name, s)
		}
	}
	if !m.OutputsMatch {
		t.Error("the full path returned different outputs from the engine alone")
	}
	if m.RatioP50 <= 1 || m.AddedP50US <= 0 || m.SignedAddedUS <= 0 {
		t.Errorf("the full path looks free: ratio %v, added %v µs, signed added %v µs", m.RatioP50, m.AddedP50US, m.SignedAddedUS)
	}
	if len(m.Throughput) != 2 || m.Throughput[1].Concurrency != 2 {
		t.Fatalf("throughput = %+v, want concurrency 1 and 2", m.Throughput)
	}
	for _, p := range m.Throughput {
		if p.EngineRPS <= 0 || p.FullRPS <= 0 || p.Ratio <= 0 {
			t.Errorf("throughput point %+v has a zero", p)
		}
		// Every request costs CPU on both sides; the full path's, over a
		// TLS gRPC call, more than the engine alone's (a few µs of MLP).
		if p.EngineCPUUS <= 0 || p.ClientCPUUS <= p.EngineCPUUS || p.ServerCPUUS <= p.EngineCPUUS {
			t.Errorf("CPU per request implausible: %+v", p)
		}
	}
	u := m.Upload
	if u.ReadyS <= 0 || u.MBps <= 0 || u.RSSBeforeBytes <= 0 || u.PeakBytes < u.RSSBeforeBytes || u.RSSAfterBytes <= 0 || u.PeakMethod == "" {
		t.Errorf("upload result is implausible: %+v", u)
	}
	if res.Machine.Cores < 1 || res.Machine.ORTVersion == "" || res.Machine.GoVersion == "" {
		t.Errorf("machine = %+v", res.Machine)
	}
	// The quick scaling and fairness sections: 1 and 10 small models, 4
	// medium under a budget of 3, one second a fairness phase.
	if sc := res.Scaling; sc == nil || len(sc.Small) != 2 || sc.Medium == nil {
		t.Fatalf("scaling = %+v, want two counts and the medium models", sc)
	}
	for _, p := range append(res.Scaling.Small, res.Scaling.Medium.ScalePoint) {
		if !p.AnswersRight || p.ThreadsAfter <= 0 || p.RSSAfterBytes <= 0 || p.LoadPerModelMS <= 0 {
			t.Errorf("scaling point implausible: %+v", p)
		}
	}
	if small := res.Scaling.Small; small[1].ThreadsAfter > small[0].ThreadsAfter+4 {
		t.Errorf("threads grew with the models: %d with 1, %d with 10", small[0].ThreadsAfter, small[1].ThreadsAfter)
	}
	if m := res.Scaling.Medium; m.Cold.N != 12 || m.Warm.N != 12 || m.ColdOverWarm <= 0 {
		t.Errorf("medium = %+v, want 12 cold and 12 warm runs", m)
	}
	if f := res.Fairness; f == nil || !f.AnswersRight || f.Alone.N == 0 || f.UnderFlood.N == 0 || f.FloodRuns == 0 || f.RatioP99 <= 0 ||
		f.UnderLowFlood.N == 0 || f.LowFloodRuns == 0 || f.LowFloodNice != 19 || f.UnderFloodServerRun.N != f.UnderFlood.N || f.UnderFloodBusy <= 0 || f.UnderFloodBusy > 1 {
		t.Errorf("fairness = %+v", f)
	}
	if !strings.Contains(string(mustRead(t, doc)), "## Many tenants") {
		t.Error("report lacks the many-tenants section")
	}
	if len(res.Targets) != 3 { // added, added signed, throughput
		t.Errorf("targets = %+v, want the MLP's three", res.Targets)
	}
	md, err := os.ReadFile(doc)
	if err != nil || !strings.Contains(string(md), "| mlp |") {
		t.Errorf("report not written or lacks the MLP row (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "benchmarks.svg")); err != nil {
		t.Errorf("chart not written next to the report: %v", err)
	}
	if !strings.Contains(stdout.String(), "mlp added cost") {
		t.Errorf("stdout does not list the targets:\n%s", stdout.String())
	}
}

// checkFields fails t for each field of struct type typ (by its JSON name,
// recursively) that the decoded JSON object v lacks.
func checkFields(t *testing.T, path string, typ reflect.Type, v any) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Struct:
		if typ.PkgPath() == "time" {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s is %T, want an object", path, v)
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			val, ok := obj[name]
			if !ok {
				t.Errorf("%s.%s is missing", path, name)
				continue
			}
			checkFields(t, path+"."+name, f.Type, val)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			t.Errorf("%s is %v, want a non-empty array", path, v)
			return
		}
		for i, e := range arr {
			checkFields(t, path+"["+string(rune('0'+i%10))+"]", typ.Elem(), e)
		}
	}
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"--models", "nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown model") {
		t.Errorf("unknown model: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"--concurrency", "1,x"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "concurrency") {
		t.Errorf("bad concurrency: exit %d, %q", code, errb.String())
	}
	if code := Main([]string{"--help"}, &out, &errb); code != 0 {
		t.Errorf("--help exited %d", code)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
