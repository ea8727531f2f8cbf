package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
)

// Main is cmd/blindfold-bench: it parses args, runs the benchmark and
// writes the results, and returns the exit code. In the server process the
// benchmark starts (see IsChildProcess) it serves instead.
func Main(args []string, stdout, stderr io.Writer) int {
	if IsChildProcess() {
		return RunChild()
	}
	fs := flag.NewFlagSet("blindfold-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a short run (fewer runs, shorter throughput windows, concurrency 1 and 2, one upload); writes no doc unless --doc is given")
	modelList := fs.String("models", "", "comma-separated models to run (default all: "+strings.Join(modelNames(), ",")+")")
	out := fs.String("out", "", "JSON results file (default bench/results/latest.json, or quick.json with --quick)")
	doc := fs.String("doc", "auto", "Markdown report to render (default docs/benchmarks.md; none with --quick; \"\" for none)")
	chart := fs.String("chart", "auto", "SVG chart to write next to the report (default docs/benchmarks.svg when a doc is written)")
	render := fs.String("render", "", "render the doc and chart from this JSON results file, without measuring")
	cacheDir := fs.String("cache-dir", "", "where benchmark models are made or fetched to (default .cache/bench in the repository)")
	warmup := fs.Int("warmup", 5, "warm-up runs per path")
	minRuns := fs.Int("min-runs", 30, "fewest timed runs per path")
	maxRuns := fs.Int("max-runs", 2000, "most timed runs per path")
	budget := fs.Float64("latency-budget", 6, "seconds of engine-alone time that sizes each latency sample")
	block := fs.Int("block", 10, "runs of one path before switching to the next (paths alternate in blocks)")
	conc := fs.String("concurrency", "1,2,4,8", "concurrency levels for throughput")
	tput := fs.Float64("throughput-time", 3, "seconds measured per throughput point (after a quarter as much warm-up)")
	uploads := fs.Int("uploads", 3, "uploads per model (the median is reported; memory is read on the first)")
	noSpin := fs.Bool("no-spinning", false, "turn ONNX Runtime's thread-pool spinning off, for the engine alone and the server alike")
	chunk := fs.Int("upload-chunk", 0, "upload chunk size in bytes (0: the client's default, client.DefaultChunkSize)")
	runChunk := fs.Int("run-chunk", 0, "size in bytes of the pieces a run's input tensors are sent in (0: the client's default, client.DefaultChunkSize)")
	intra := fs.Int("intra-op-threads", 0, "ONNX Runtime intra-op threads, for the engine alone and the server alike (0: its default)")
	inter := fs.Int("inter-op-threads", 0, "ONNX Runtime inter-op threads (0: its default)")
	scaling := fs.String("scaling", "1,10,100,1000", "small-model counts of the scaling section, each on a fresh server (\"\" for none)")
	medium := fs.Int("medium-models", 10, "medium (4 MiB) models of the scaling section, under a memory budget that holds 3 (0 for none)")
	fairness := fs.Float64("fairness-time", 5, "seconds of each phase of the fairness section (tenant B alone, then under tenant A's flood; 0 for none)")
	tenantsOnly := fs.Bool("tenants-only", false, "run only the scaling and fairness sections, not the per-model measurements")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (client side and engine alone) here")
	serverProfile := fs.String("server-cpuprofile", "", "write each server process's CPU profile to FILE.MODEL")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: blindfold-bench [flags]\n\nMeasures the engine alone against the full confidential path for each benchmark\nmodel and renders docs/benchmarks.md. See docs/benchmarks.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "blindfold-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	root := repoRoot()
	if *doc == "auto" {
		*doc = ""
		if !*quick || *render != "" {
			*doc = filepath.Join(root, "docs", "benchmarks.md")
		}
	}
	if *chart == "auto" {
		*chart = ""
		if *doc != "" {
			*chart = filepath.Join(filepath.Dir(*doc), "benchmarks.svg")
		}
	}
	if *render != "" {
		b, err := os.ReadFile(*render)
		var res Results
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err == nil {
			err = writeReport(&res, *doc, *chart)
		}
		if err != nil {
			fmt.Fprintf(stderr, "blindfold-bench: rendering %s: %v\n", *render, err)
			return 1
		}
		return 0
	}
	set := Settings{
		Quick: *quick, Warmup: *warmup, MinRuns: *minRuns, MaxRuns: *maxRuns, LatencyBudgetS: *budget, Block: *block,
		ThroughputS: *tput, Uploads: *uploads, UploadChunkBytes: *chunk, RunChunkBytes: *runChunk, IntraOpThreads: *intra, InterOpThreads: *inter,
		NoSpinning: *noSpin, MediumModels: *medium, FairnessS: *fairness, TenantsOnly: *tenantsOnly,
	}
	if *quick {
		set.Warmup, set.MinRuns, set.MaxRuns, set.LatencyBudgetS = min(set.Warmup, 3), min(set.MinRuns, 20), min(set.MaxRuns, 200), min(set.LatencyBudgetS, 0.5)
		set.ThroughputS, set.Uploads = min(set.ThroughputS, 0.4), 1
		if !flagSet(fs, "concurrency") {
			*conc = "1,2"
		}
		if !flagSet(fs, "scaling") {
			*scaling = "1,10"
		}
		if !flagSet(fs, "medium-models") {
			set.MediumModels = 4
		}
		if !flagSet(fs, "fairness-time") {
			set.FairnessS = 1
		}
	}
	var err error
	if set.Concurrency, err = parseInts(*conc); err != nil {
		fmt.Fprintf(stderr, "blindfold-bench: --concurrency: %v\n", err)
		return 2
	}
	if strings.TrimSpace(*scaling) != "" {
		if set.ScalingCounts, err = parseInts(*scaling); err != nil {
			fmt.Fprintf(stderr, "blindfold-bench: --scaling: %v\n", err)
			return 2
		}
	}
	models, err := selectModels(*modelList)
	if err != nil {
		fmt.Fprintf(stderr, "blindfold-bench: %v\n", err)
		return 2
	}
	if *out == "" {
		name := "latest.json"
		if *quick {
			name = "quick.json"
		}
		*out = filepath.Join(root, "bench", "results", name)
	}
	if *cacheDir == "" {
		*cacheDir = filepath.Join(root, ".cache", "bench")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "blindfold-bench: CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, set, models, *cacheDir, *serverProfile, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "blindfold-bench: %v\n", err)
		return 1
	}
	res.Command = commandLine(args)
	if set.TenantsOnly {
		// Keep the per-model figures of the results already at out; only
		// the scaling and fairness sections are new.
		if old, err := readResults(*out); err == nil {
			fresh := *res
			*res = *old
			res.Scaling, res.Fairness = fresh.Scaling, fresh.Fairness
			res.Settings.ScalingCounts, res.Settings.MediumModels, res.Settings.FairnessS = set.ScalingCounts, set.MediumModels, set.FairnessS
			res.TenantsRun = TenantsRun{Command: fresh.Command, StartedAt: fresh.StartedAt, GitCommit: fresh.Machine.GitCommit}
		}
	}
	if err := writeJSON(*out, res); err != nil {
		fmt.Fprintf(stderr, "blindfold-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "results: %s\n", *out)
	if err := writeReport(res, *doc, *chart); err != nil {
		fmt.Fprintf(stderr, "blindfold-bench: %v\n", err)
		return 1
	}
	if *doc != "" {
		fmt.Fprintf(stdout, "report: %s\n", *doc)
	}
	fmt.Fprint(stdout, TargetsText(res))
	return 0
}

// Run measures models with settings set and returns the results.
func Run(ctx context.Context, set Settings, models []Model, cacheDir, serverProfile string, log io.Writer) (*Results, error) {
	began := time.Now()
	rt, err := engine.Open(engine.Options{IntraOpThreads: set.IntraOpThreads, InterOpThreads: set.InterOpThreads, DisableSpinning: set.NoSpinning})
	if err != nil {
		return nil, fmt.Errorf("opening the engine: %w", err)
	}
	stateDir, err := os.MkdirTemp("", "blindfold-bench-state-")
	if err != nil {
		return nil, fmt.Errorf("temporary server state folder: %w", err)
	}
	defer os.RemoveAll(stateDir)
	res := &Results{
		FormatVersion: FormatVersion, StartedAt: began.UTC().Truncate(time.Second),
		Machine: machineInfo(rt), Settings: set, BlindAI: BlindAIPublished,
	}
	r := &runner{set: set, rt: rt, log: log, stateDir: stateDir}
	if set.TenantsOnly {
		models = nil
	}
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "%s: preparing the model\n", m.Name)
		b, err := m.Bytes(ctx, cacheDir, log)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		if serverProfile != "" {
			r.serverProfile = serverProfile + "." + m.Name
		}
		fmt.Fprintf(log, "%s: measuring (%d bytes)\n", m.Name, len(b))
		mr, err := r.measureModel(ctx, m, b)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  p50 engine %.0fµs, full %.0fµs (%.3fx), signed %.0fµs (%.3fx)\n",
			mr.Engine.P50US, mr.Full.P50US, mr.RatioP50, mr.Signed.P50US, mr.SignedRatioP50)
		res.Models = append(res.Models, mr)
	}
	if len(set.ScalingCounts) > 0 || set.MediumModels > 0 {
		if res.Scaling, err = runScaling(ctx, set, set.ScalingCounts, set.MediumModels, stateDir, log); err != nil {
			return nil, err
		}
	}
	if set.FairnessS > 0 {
		if res.Fairness, err = runFairness(ctx, set, time.Duration(set.FairnessS*float64(time.Second)), 8, stateDir, log); err != nil {
			return nil, err
		}
	}
	res.Targets = EvaluateTargets(res, models)
	res.DurationS = time.Since(began).Seconds()
	return res, nil
}

func modelNames() []string {
	var out []string
	for _, m := range Models() {
		out = append(out, m.Name)
	}
	return out
}

// selectModels returns the models named in the comma-separated list, or
// all of them for an empty list.
func selectModels(list string) ([]Model, error) {
	all := Models()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var out []Model
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, m := range all {
			if m.Name == name {
				out = append(out, m)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(modelNames(), ", "))
		}
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func commandLine(args []string) string {
	if len(args) == 0 {
		return "make bench"
	}
	return "go run ./cmd/blindfold-bench " + strings.Join(args, " ")
}

// repoRoot returns the repository root (the folder of go.mod above the
// working directory), or the working directory.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}

// machineInfo describes this machine.
func machineInfo(rt *engine.Runtime) Machine {
	m := Machine{
		Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Kernel: readFileOr("/proc/sys/kernel/osrelease", "unknown"), GoVersion: runtime.Version(),
		ORTVersion: rt.Version(), CPU: "unknown",
	}
	for _, line := range strings.Split(readFileOr("/proc/cpuinfo", ""), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPU = strings.TrimSpace(v)
			break
		}
	}
	for _, line := range strings.Split(readFileOr("/proc/meminfo", ""), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			m.MemBytes = n << 10
		}
	}
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(b))
	}
	return m
}

func writeJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// readResults reads a JSON results file.
func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
