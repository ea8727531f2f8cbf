package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

// ScalingResult is the many-models section: small models in growing
// numbers, each count on a fresh server, and medium models under a memory
// budget that holds only some of them.
type ScalingResult struct {
	Small  []ScalePoint `json:"small"`
	Medium *MediumScale `json:"medium,omitempty"`
}

// ScalePoint is one server holding Models models of ModelBytes bytes.
type ScalePoint struct {
	Models     int   `json:"models"`
	ModelBytes int64 `json:"model_bytes"`
	// Threads and RSS of the server process before the first upload and
	// after every model was uploaded and run once.
	ThreadsBefore  int   `json:"threads_before"`
	ThreadsAfter   int   `json:"threads_after"`
	RSSBeforeBytes int64 `json:"rss_before_bytes"`
	RSSAfterBytes  int64 `json:"rss_after_bytes"`
	// LoadPerModelMS is the mean time from upload start to the server's
	// reply (the model loaded), one upload after another.
	LoadPerModelMS float64 `json:"load_per_model_ms"`
	// AnswersRight says whether every model's run returned its own
	// answer.
	AnswersRight bool `json:"answers_right"`
}

// MediumScale is the medium models under a budget that holds Budget of
// them: each round-robin run finds its model evicted and reloads it.
type MediumScale struct {
	ScalePoint
	Budget int `json:"budget"`
	// Cold is the latency of runs that reloaded their model from sealed
	// storage; Warm that of the same model's next run.
	Cold Summary `json:"cold"`
	Warm Summary `json:"warm"`
	// ColdOverWarm is Cold.P50US / Warm.P50US.
	ColdOverWarm float64 `json:"cold_over_warm"`
}

// FairnessResult is the many-tenants section: tenant B's latency alone
// and while tenant A floods the server, in one run. A's flood runs in its
// own process twice: at the server's priority (nice 0), where its clients
// take cores from the server as the benchmark's own load, and at nice
// LowFloodNice, where they take only what the server and B leave idle,
// standing in for clients on other machines.
type FairnessResult struct {
	FloodClients   int     `json:"flood_clients"`
	Slots          int     `json:"slots"`
	SlotsPerTenant int     `json:"slots_per_tenant"`
	DurationS      float64 `json:"duration_s"`
	ModelBytes     int64   `json:"model_bytes"`
	Alone          Summary `json:"alone"`
	UnderFlood     Summary `json:"under_flood"`
	FloodRuns      int     `json:"flood_runs"`
	RatioP50       float64 `json:"ratio_p50"`
	RatioP99       float64 `json:"ratio_p99"`
	// The flood at low priority.
	LowFloodNice  int     `json:"low_flood_nice"`
	UnderLowFlood Summary `json:"under_low_flood"`
	LowFloodRuns  int     `json:"low_flood_runs"`
	LowRatioP50   float64 `json:"low_ratio_p50"`
	LowRatioP99   float64 `json:"low_ratio_p99"`
	// B's runs as the server timed them (its Session.Run only), and the
	// machine's busy share of CPU time (0 to 1), in each phase.
	AloneServerRun         Summary `json:"alone_server_run"`
	UnderFloodServerRun    Summary `json:"under_flood_server_run"`
	UnderLowFloodServerRun Summary `json:"under_low_flood_server_run"`
	AloneBusy              float64 `json:"alone_busy"`
	UnderFloodBusy         float64 `json:"under_flood_busy"`
	UnderLowFloodBusy      float64 `json:"under_low_flood_busy"`
	AnswersRight           bool    `json:"answers_right"`
	IntraOpThreads         int     `json:"intra_op_threads"`
}

// scaledInput is the input of onnxgen.Scaled(n, c) models: [batch,n] of
// small integers, so that c·x is exact.
func scaledInput(batch, n int) tensor.Tensor {
	x := make([]float32, batch*n)
	for i := range x {
		x[i] = float32(i%13 - 6)
	}
	t, err := tensor.New("x", []int64{int64(batch), int64(n)}, x)
	if err != nil {
		panic(err)
	}
	return t
}

// checkScaled reports whether out is c times in.
func checkScaled(in tensor.Tensor, out []tensor.Tensor, c float32) bool {
	if len(out) != 1 {
		return false
	}
	x, err1 := tensor.Values[float32](in)
	y, err2 := tensor.Values[float32](out[0])
	if err1 != nil || err2 != nil || len(x) != len(y) {
		return false
	}
	for i := range x {
		if y[i] != c*x[i] {
			return false
		}
	}
	return true
}

// scaleFactor is model i's factor.
func scaleFactor(i int) float32 { return float32(i%50 + 2) }

// runScaling measures the scaling section: counts small models, each on a
// fresh server, then medium models under a budget of 3.
func runScaling(ctx context.Context, set Settings, counts []int, mediumN int, stateDir string, log io.Writer) (*ScalingResult, error) {
	res := &ScalingResult{}
	for _, n := range counts {
		fmt.Fprintf(log, "scaling: %d small models ...\n", n)
		p, err := scaleSmall(ctx, set, n, stateDir)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  threads %d -> %d, RSS %.0f -> %.0f MB, %.2f ms a load\n", p.ThreadsBefore, p.ThreadsAfter, float64(p.RSSBeforeBytes)/1e6, float64(p.RSSAfterBytes)/1e6, p.LoadPerModelMS)
		res.Small = append(res.Small, p)
	}
	if mediumN > 0 {
		fmt.Fprintf(log, "scaling: %d medium models, budget 3 ...\n", mediumN)
		m, err := scaleMedium(ctx, set, mediumN, 3, stateDir)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  cold p50 %.1f ms, warm p50 %.1f ms (%.1fx)\n", m.Cold.P50US/1000, m.Warm.P50US/1000, m.ColdOverWarm)
		res.Medium = m
	}
	return res, nil
}

func scaleSmall(ctx context.Context, set Settings, n int, stateDir string) (ScalePoint, error) {
	dir, err := os.MkdirTemp(stateDir, "scale-")
	if err != nil {
		return ScalePoint{}, err
	}
	srv, err := startServer(ctx, childConfig{StateDir: dir, IntraOpThreads: set.IntraOpThreads, InterOpThreads: set.InterOpThreads,
		NoSpinning: set.NoSpinning, MaxModels: n + 16})
	if err != nil {
		return ScalePoint{}, err
	}
	defer srv.stop()
	c, err := connect(ctx, srv.ready)
	if err != nil {
		return ScalePoint{}, err
	}
	defer c.Close()
	models := make([][]byte, n)
	for i := range models {
		if models[i], err = onnxgen.Scaled(8, scaleFactor(i)); err != nil {
			return ScalePoint{}, err
		}
	}
	return measureScale(ctx, c, srv.pid(), models, false, func(i int) float32 { return scaleFactor(i) }, 8)
}

// measureScale uploads models one after another, runs each once and reads
// the server's threads and memory.
func measureScale(ctx context.Context, c *client.Client, pid int, models [][]byte, save bool, factor func(int) float32, width int) (ScalePoint, error) {
	p := ScalePoint{Models: len(models), ModelBytes: int64(len(models[0])), AnswersRight: true}
	var err error
	if p.ThreadsBefore, err = procThreads(pid); err != nil {
		return p, err
	}
	if p.RSSBeforeBytes, _, err = procMemory(pid); err != nil {
		return p, err
	}
	start := time.Now()
	for i, m := range models {
		opts := []client.UploadOption{client.WithModelID(fmt.Sprintf("m%d", i))}
		if save {
			opts = append(opts, client.SaveModel())
		}
		if _, err := c.UploadModel(ctx, m, opts...); err != nil {
			return p, fmt.Errorf("bench: scaling: upload %d of %d: %w", i+1, len(models), err)
		}
	}
	p.LoadPerModelMS = time.Since(start).Seconds() * 1000 / float64(len(models))
	in := scaledInput(1, width)
	for i := range models {
		out, err := c.Run(ctx, fmt.Sprintf("m%d", i), []tensor.Tensor{in})
		if err != nil {
			return p, fmt.Errorf("bench: scaling: run %d: %w", i, err)
		}
		p.AnswersRight = p.AnswersRight && checkScaled(in, out.Outputs, factor(i))
	}
	if p.ThreadsAfter, err = procThreads(pid); err != nil {
		return p, err
	}
	if p.RSSAfterBytes, _, err = procMemory(pid); err != nil {
		return p, err
	}
	return p, nil
}

// mediumWidth makes medium models of 4 MiB (a 1024×1024 float32 matrix).
const mediumWidth = 1024

func scaleMedium(ctx context.Context, set Settings, n, budget int, stateDir string) (*MediumScale, error) {
	models := make([][]byte, n)
	var err error
	for i := range models {
		if models[i], err = onnxgen.Scaled(mediumWidth, scaleFactor(i)); err != nil {
			return nil, err
		}
	}
	size := int64(len(models[0]))
	dir, err := os.MkdirTemp(stateDir, "medium-")
	if err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, childConfig{StateDir: dir, IntraOpThreads: set.IntraOpThreads, InterOpThreads: set.InterOpThreads,
		NoSpinning: set.NoSpinning, MaxModelBytes: size, MaxTotalModelBytes: int64(budget)*size + size/2})
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	c, err := connect(ctx, srv.ready)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	p, err := measureScale(ctx, c, srv.pid(), models, true, scaleFactor, mediumWidth)
	if err != nil {
		return nil, err
	}
	m := &MediumScale{ScalePoint: p, Budget: budget}
	// Round robin over n models with room for budget: every first run
	// reloads; the run right after it is warm.
	in := scaledInput(1, mediumWidth)
	var cold, warm []time.Duration
	for round := 0; round < 3; round++ {
		for i := range models {
			id := fmt.Sprintf("m%d", i)
			for k, into := range []*[]time.Duration{&cold, &warm} {
				t0 := time.Now()
				out, err := c.Run(ctx, id, []tensor.Tensor{in})
				if err != nil {
					return nil, fmt.Errorf("bench: medium run %s (%d): %w", id, k, err)
				}
				*into = append(*into, time.Since(t0))
				m.AnswersRight = m.AnswersRight && checkScaled(in, out.Outputs, scaleFactor(i))
			}
		}
	}
	m.Cold, m.Warm = Summarize(cold), Summarize(warm)
	m.ColdOverWarm = ratio(m.Cold.P50US, m.Warm.P50US)
	if m.ThreadsAfter, err = procThreads(srv.pid()); err != nil {
		return nil, err
	}
	if m.RSSAfterBytes, _, err = procMemory(srv.pid()); err != nil {
		return nil, err
	}
	return m, nil
}

// The fairness model: 24 products of 4 rows by a 512×512 matrix, a few
// milliseconds of one core on 8 KiB of input and of output, so that a
// run's time is mostly its slot's, not its bytes' (the clients share the
// machine with the server).
const (
	fairnessWidth = 512
	fairnessBatch = 4
	fairnessDepth = 24
)

// runFairness measures tenant B's latency alone, then while tenant A
// floods from floodClients clients, on one server with authentication.
func runFairness(ctx context.Context, set Settings, d time.Duration, floodClients int, stateDir string, log io.Writer) (*FairnessResult, error) {
	dir, err := os.MkdirTemp(stateDir, "fair-")
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "tokens.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	token := func(sub string) (string, error) {
		return jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(priv)
	}
	// One thread per run, one slot per core: a run's speed then depends on
	// getting a slot, which is what the scheduler shares.
	cores := max(2, runtime.NumCPU())
	res := &FairnessResult{FloodClients: floodClients, Slots: cores, SlotsPerTenant: max(1, cores*3/4), DurationS: d.Seconds(), IntraOpThreads: 1, AnswersRight: true}
	srv, err := startServer(ctx, childConfig{StateDir: dir, IntraOpThreads: 1, InterOpThreads: 1, NoSpinning: set.NoSpinning,
		MaxConcurrentRuns: cores, AuthKeyFile: keyFile})
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	connectAs := func(sub string) (*client.Client, error) {
		tok, err := token(sub)
		if err != nil {
			return nil, err
		}
		return connect(ctx, srv.ready, client.WithToken(tok))
	}
	model, err := onnxgen.ScaledDeep(fairnessWidth, fairnessDepth, 3)
	if err != nil {
		return nil, err
	}
	res.ModelBytes = int64(len(model))
	b, err := connectAs("tenant-b")
	if err != nil {
		return nil, err
	}
	defer b.Close()
	a, err := connectAs("tenant-a")
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if _, err := b.UploadModel(ctx, model, client.WithModelID("m")); err != nil {
		return nil, err
	}
	if _, err := a.UploadModel(ctx, model, client.WithModelID("m")); err != nil {
		return nil, err
	}
	in := scaledInput(fairnessBatch, fairnessWidth)
	// measureB runs B for d and returns its latencies and its runs as the
	// server timed them.
	measureB := func() (lat, srvRun []time.Duration, err error) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			t0 := time.Now()
			out, err := b.Run(ctx, "m", []tensor.Tensor{in})
			if err != nil {
				return nil, nil, fmt.Errorf("bench: fairness: tenant B: %w", err)
			}
			lat = append(lat, time.Since(t0))
			srvRun = append(srvRun, out.InferenceTime)
			res.AnswersRight = res.AnswersRight && checkScaled(in, out.Outputs, 3)
		}
		return lat, srvRun, nil
	}
	// phase measures B for d while A floods at nice (none when nice < 0).
	phase := func(nice int) (lat, srvRun Summary, busy float64, floodRuns int, err error) {
		var f *floodProc
		if nice >= 0 {
			tok, err := token("tenant-a")
			if err != nil {
				return lat, srvRun, 0, 0, err
			}
			f, err = startFlood(ctx, floodConfig{Server: srv.ready, Token: tok, ModelID: "m", Clients: floodClients,
				Batch: fairnessBatch, Width: fairnessWidth, Factor: 3, Nice: nice})
			if err != nil {
				return lat, srvRun, 0, 0, err
			}
			defer f.stop()
			time.Sleep(200 * time.Millisecond) // the flood fills every slot A may hold
		}
		cpu0, err := readCPUTimes()
		if err != nil {
			return lat, srvRun, 0, 0, err
		}
		ls, rs, err := measureB()
		if err != nil {
			return lat, srvRun, 0, 0, err
		}
		cpu1, err := readCPUTimes()
		if err != nil {
			return lat, srvRun, 0, 0, err
		}
		if f != nil {
			rep, err := f.finish()
			if err != nil {
				return lat, srvRun, 0, 0, err
			}
			if rep.MinNice < nice {
				return lat, srvRun, 0, 0, fmt.Errorf("bench: fairness: a thread of the flood ran at nice %d, not %d", rep.MinNice, nice)
			}
			res.AnswersRight = res.AnswersRight && rep.AnswersRight
			floodRuns = rep.Runs
		}
		return Summarize(ls), Summarize(rs), cpu1.busySince(cpu0), floodRuns, nil
	}
	for range 10 { // warm-up
		if _, err := b.Run(ctx, "m", []tensor.Tensor{in}); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "fairness: tenant B alone for %s ...\n", d)
	if res.Alone, res.AloneServerRun, res.AloneBusy, _, err = phase(-1); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "fairness: tenant B while tenant A floods from %d clients at the server's priority ...\n", floodClients)
	if res.UnderFlood, res.UnderFloodServerRun, res.UnderFloodBusy, res.FloodRuns, err = phase(0); err != nil {
		return nil, err
	}
	res.LowFloodNice = 19
	fmt.Fprintf(log, "fairness: tenant B while tenant A floods from %d clients at nice %d ...\n", floodClients, res.LowFloodNice)
	if res.UnderLowFlood, res.UnderLowFloodServerRun, res.UnderLowFloodBusy, res.LowFloodRuns, err = phase(res.LowFloodNice); err != nil {
		return nil, err
	}
	res.RatioP50 = ratio(res.UnderFlood.P50US, res.Alone.P50US)
	res.RatioP99 = ratio(res.UnderFlood.P99US, res.Alone.P99US)
	res.LowRatioP50 = ratio(res.UnderLowFlood.P50US, res.Alone.P50US)
	res.LowRatioP99 = ratio(res.UnderLowFlood.P99US, res.Alone.P99US)
	fmt.Fprintf(log, "  B p99 %.1f ms alone, %.1f ms under the flood: %.2fx (p50 %.2fx); A ran %d; CPU busy %.0f%% → %.0f%%\n",
		res.Alone.P99US/1000, res.UnderFlood.P99US/1000, res.RatioP99, res.RatioP50, res.FloodRuns, 100*res.AloneBusy, 100*res.UnderFloodBusy)
	fmt.Fprintf(log, "  under the flood at nice %d: %.1f ms: %.2fx (p50 %.2fx); A ran %d; CPU busy %.0f%%\n",
		res.LowFloodNice, res.UnderLowFlood.P99US/1000, res.LowRatioP99, res.LowRatioP50, res.LowFloodRuns, 100*res.UnderLowFloodBusy)
	fmt.Fprintf(log, "  B's server-side run p99: %.1f ms alone, %.1f ms and %.1f ms under the floods\n",
		res.AloneServerRun.P99US/1000, res.UnderFloodServerRun.P99US/1000, res.UnderLowFloodServerRun.P99US/1000)
	return res, nil
}

// cpuTimes are the machine's CPU times from /proc/stat, in clock ticks.
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes reads the first line of /proc/stat: user, nice, system,
// idle, iowait, irq, softirq, steal (guest time is inside user).
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("bench: reading CPU times: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("bench: unexpected /proc/stat line %q", line)
	}
	var t cpuTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("bench: /proc/stat: %w", err)
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, nil
}

// busySince is the busy share of the CPU time since t0.
func (t cpuTimes) busySince(t0 cpuTimes) float64 {
	if t.total <= t0.total {
		return 0
	}
	return float64(t.busy-t0.busy) / float64(t.total-t0.total)
}

// renderTenants writes the scaling and fairness sections of the report.
func renderTenants(p func(string, ...any), res *Results) {
	if t := res.TenantsRun; t.Command != "" && (res.Scaling != nil || res.Fairness != nil) {
		p("*The two sections below were measured apart from the rest of this page, on the same machine: `%s` on %s at commit %s.*\n\n", t.Command, t.StartedAt.Format("2006-01-02 15:04 UTC"), orDash(t.GitCommit))
	}
	if s := res.Scaling; s != nil {
		p("## Many models\n\n")
		p("Each count of small models (a %d-byte `onnxgen.Scaled(8, c)`, each with its own factor) is uploaded one after another to a fresh server process, then each model is run once and its answer checked; threads and RSS are the server's, from `/proc/PID/status`, before the first upload and after the last run. Every session runs on ONNX Runtime's shared thread pools, so threads should not grow with the count.\n\n", smallBytes(s))
		p("| models | threads before → after | RSS before → after | RSS per model | load per model | answers right |\n|---|---|---|---|---|---|\n")
		for _, pt := range s.Small {
			per := float64(pt.RSSAfterBytes-pt.RSSBeforeBytes) / float64(pt.Models)
			p("| %d | %d → %d | %.0f → %.0f MB | %.0f KB | %.2f ms | %s |\n", pt.Models, pt.ThreadsBefore, pt.ThreadsAfter, float64(pt.RSSBeforeBytes)/1e6, float64(pt.RSSAfterBytes)/1e6, per/1e3, pt.LoadPerModelMS, yesNo(pt.AnswersRight))
		}
		if m := s.Medium; m != nil {
			p("\n**Eviction.** %d medium models (%.1f MB each, `onnxgen.Scaled(%d, c)`), uploaded with `save_model` to a server whose memory budget (`max_total_model_bytes`) holds %d. Each is then run in a round robin, three rounds: every first run finds its model evicted and reloads it from sealed storage (decrypt, check, load); the run right after is warm.\n\n", m.Models, float64(m.ModelBytes)/1e6, mediumWidth, m.Budget)
			p("| | p50 | p99 | runs |\n|---|---|---|---|\n")
			p("| first run after eviction | %s | %s | %d |\n| warm run | %s | %s | %d |\n\n", us(m.Cold.P50US), us(m.Cold.P99US), m.Cold.N, us(m.Warm.P50US), us(m.Warm.P99US), m.Warm.N)
			p("A first run after eviction takes %.1fx a warm run (p50). Threads %d → %d, RSS %.0f → %.0f MB with %d models held and at most %d in memory; load %.1f ms a model (sealing included); answers right: %s.\n\n", m.ColdOverWarm, m.ThreadsBefore, m.ThreadsAfter, float64(m.RSSBeforeBytes)/1e6, float64(m.RSSAfterBytes)/1e6, m.Models, m.Budget, m.LoadPerModelMS, yesNo(m.AnswersRight))
		}
	}
	if f := res.Fairness; f != nil {
		p("## Many tenants\n\n")
		p("One server with authentication, %d inference slots (`max_concurrent_runs`, one per core), at most %d per tenant (the default of `max_runs_per_subject`), ONNX Runtime on one thread a run. Tenant B runs a model (%d products of %d rows by a 512×512 matrix) from one client in the benchmark process for %.0f s alone, then for %.0f s while tenant A runs the same model from %d clients as fast as they can, and again for %.0f s with A's clients at nice %d. A's clients run in a process of their own on the same machine: at the server's priority they take cores from it as much as its own work does; at nice %d they take only what the server and B leave idle, as clients on other machines would. *Server run* is B's `Session.Run` as the server timed it; *CPU busy* the machine's busy share of CPU time during the phase.\n\n", f.Slots, f.SlotsPerTenant, fairnessDepth, fairnessBatch, f.DurationS, f.DurationS, f.FloodClients, f.DurationS, f.LowFloodNice, f.LowFloodNice)
		p("| tenant B | p50 | p99 | p99 / alone | server run p50 | server run p99 | A's runs | CPU busy | runs |\n|---|---|---|---|---|---|---|---|---|\n")
		p("| alone | %s | %s | | %s | %s | | %.0f%% | %d |\n", us(f.Alone.P50US), us(f.Alone.P99US), us(f.AloneServerRun.P50US), us(f.AloneServerRun.P99US), 100*f.AloneBusy, f.Alone.N)
		p("| under A's flood | %s | %s | %.2fx | %s | %s | %d | %.0f%% | %d |\n", us(f.UnderFlood.P50US), us(f.UnderFlood.P99US), f.RatioP99, us(f.UnderFloodServerRun.P50US), us(f.UnderFloodServerRun.P99US), f.FloodRuns, 100*f.UnderFloodBusy, f.UnderFlood.N)
		if f.UnderLowFlood.N > 0 {
			p("| under A's flood at nice %d | %s | %s | %.2fx | %s | %s | %d | %.0f%% | %d |\n", f.LowFloodNice, us(f.UnderLowFlood.P50US), us(f.UnderLowFlood.P99US), f.LowRatioP99, us(f.UnderLowFloodServerRun.P50US), us(f.UnderLowFloodServerRun.P99US), f.LowFloodRuns, 100*f.UnderLowFloodBusy, f.UnderLowFlood.N)
		}
		p("\nUnder the flood B's p99 is **%.2fx** its p99 alone (p50 %.2fx; target: within 1.5x)", f.RatioP99, f.RatioP50)
		if f.UnderLowFlood.N > 0 {
			p(", and %.2fx (p50 %.2fx) with A's clients at nice %d", f.LowRatioP99, f.LowRatioP50, f.LowFloodNice)
		}
		p(". Answers right: %s.\n\n", yesNo(f.AnswersRight))
	}
}

func smallBytes(s *ScalingResult) int64 {
	if len(s.Small) == 0 {
		return 0
	}
	return s.Small[0].ModelBytes
}
