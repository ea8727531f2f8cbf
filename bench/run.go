package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/tensor"
)

// runner measures one model.
type runner struct {
	set      Settings
	rt       *engine.Runtime
	log      io.Writer
	stateDir string
	// serverProfile, when set, is the path of the server's CPU profile.
	serverProfile string
}

// target runs one request on some path.
type target func(ctx context.Context) error

// measureModel measures m as described in the package documentation.
func (r *runner) measureModel(ctx context.Context, m Model, model []byte) (ModelResult, error) {
	res := ModelResult{Name: m.Name, Title: m.Title, Source: m.Source, Bytes: int64(len(model)), SHA256: sha256Hex(model)}
	inputs, err := m.Inputs()
	if err != nil {
		return res, err
	}

	// The engine alone, in this process.
	t0 := time.Now()
	sess, err := r.rt.Load(model)
	if err != nil {
		return res, fmt.Errorf("bench: %s: engine load: %w", m.Name, err)
	}
	defer sess.Close()
	res.Upload.EngineLoadS = time.Since(t0).Seconds()
	for _, s := range sess.Inputs() {
		res.Inputs = append(res.Inputs, s.String())
	}
	for _, s := range sess.Outputs() {
		res.Outputs = append(res.Outputs, s.String())
	}
	want, err := sess.Run(ctx, inputs)
	if err != nil {
		return res, fmt.Errorf("bench: %s: engine run: %w", m.Name, err)
	}

	// A fresh server process for this model.
	srv, err := startServer(ctx, childConfig{
		StateDir: r.stateDir, IntraOpThreads: r.set.IntraOpThreads, InterOpThreads: r.set.InterOpThreads, NoSpinning: r.set.NoSpinning,
		CPUProfile: r.serverProfile,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			fmt.Fprintf(r.log, "warning: %v\n", err)
		}
	}()
	nClients := 1
	for _, c := range r.set.Concurrency {
		nClients = max(nClients, c)
	}
	clients := make([]*client.Client, nClients)
	for i := range clients {
		clients[i], err = connect(ctx, srv.ready)
		if err != nil {
			return res, err
		}
		defer clients[i].Close()
	}
	fmt.Fprintf(r.log, "  upload (%d MB) ...\n", len(model)/1e6)
	id := "bench-" + m.Name
	if res.Upload, err = r.upload(ctx, clients[0], srv.pid(), id, model, res.Upload.EngineLoadS); err != nil {
		return res, fmt.Errorf("bench: %s: %w", m.Name, err)
	}

	engineRun := func(ctx context.Context) error {
		_, err := sess.Run(ctx, inputs)
		return err
	}
	var srvTimes []time.Duration
	var srvMu sync.Mutex
	fullRun := func(c *client.Client, signed bool) target {
		opts := []client.RunOption{client.WithChunkSize(r.set.RunChunkBytes)}
		if signed {
			opts = append(opts, client.Sign())
		}
		return func(ctx context.Context) error {
			out, err := c.Run(ctx, id, inputs, opts...)
			if err != nil {
				return err
			}
			if !signed {
				srvMu.Lock()
				srvTimes = append(srvTimes, out.InferenceTime)
				srvMu.Unlock()
			}
			return nil
		}
	}
	got, err := clients[0].Run(ctx, id, inputs)
	if err != nil {
		return res, fmt.Errorf("bench: %s: full-path run: %w", m.Name, err)
	}
	res.OutputsMatch = sameOutputs(want, got.Outputs)

	// Latency: warm up, size the sample from the engine's speed, then
	// alternate blocks of the three paths.
	paths := []target{engineRun, fullRun(clients[0], false), fullRun(clients[0], true)}
	var warm []time.Duration
	for _, p := range paths {
		d, err := timeRuns(ctx, p, r.set.Warmup)
		if err != nil {
			return res, fmt.Errorf("bench: %s: warm-up: %w", m.Name, err)
		}
		if warm == nil {
			warm = d
		}
	}
	n := r.set.MaxRuns
	if len(warm) > 0 {
		per := Summarize(warm).P50US * 1e-6
		n = int(r.set.LatencyBudgetS / max(per, 1e-6))
	}
	n = min(max(n, r.set.MinRuns), r.set.MaxRuns)
	fmt.Fprintf(r.log, "  latency: %d runs per path ...\n", n)
	samples := make([][]time.Duration, len(paths))
	block := max(r.set.Block, 1)
	for len(samples[0]) < n {
		k := min(block, n-len(samples[0]))
		for i, p := range paths {
			// One settling run after each switch of path, not counted.
			if _, err := timeRuns(ctx, p, 1); err != nil {
				return res, fmt.Errorf("bench: %s: %w", m.Name, err)
			}
			d, err := timeRuns(ctx, p, k)
			if err != nil {
				return res, fmt.Errorf("bench: %s: %w", m.Name, err)
			}
			samples[i] = append(samples[i], d...)
		}
	}
	srvMu.Lock()
	res.ServerEngine = Summarize(srvTimes)
	srvMu.Unlock()
	res.Engine, res.Full, res.Signed = Summarize(samples[0]), Summarize(samples[1]), Summarize(samples[2])
	res.RatioP50 = ratio(res.Full.P50US, res.Engine.P50US)
	res.RatioP99 = ratio(res.Full.P99US, res.Engine.P99US)
	res.SignedRatioP50 = ratio(res.Signed.P50US, res.Engine.P50US)
	res.SignedRatioP99 = ratio(res.Signed.P99US, res.Engine.P99US)
	res.AddedP50US = res.Full.P50US - res.Engine.P50US
	res.AddedP99US = res.Full.P99US - res.Engine.P99US
	res.SignedAddedUS = res.Signed.P50US - res.Engine.P50US
	for _, t := range inputs {
		res.MovedBytes += int64(len(t.Data))
	}
	for _, t := range got.Outputs {
		res.MovedBytes += int64(len(t.Data))
	}
	if res.MovedBytes > 0 {
		res.AddedMsPerMB = res.AddedP50US / 1e3 / (float64(res.MovedBytes) / 1e6)
	}

	// Throughput at each concurrency, the engine alone then the full path.
	for _, c := range r.set.Concurrency {
		fmt.Fprintf(r.log, "  throughput at %d concurrent ...\n", c)
		eng := make([]target, c)
		full := make([]target, c)
		for i := range c {
			eng[i] = engineRun
			full[i] = fullRun(clients[i], false)
		}
		// At least three engine-alone latencies per client, within 3x the
		// configured time.
		d := time.Duration(r.set.ThroughputS * float64(time.Second))
		need := time.Duration(3 * float64(c) * res.Engine.P50US * float64(time.Microsecond))
		d = min(max(d, need), 3*d)
		e, err := throughput(ctx, eng, d, 0)
		if err != nil {
			return res, fmt.Errorf("bench: %s: engine throughput: %w", m.Name, err)
		}
		f, err := throughput(ctx, full, d, srv.pid())
		if err != nil {
			return res, fmt.Errorf("bench: %s: full-path throughput: %w", m.Name, err)
		}
		res.Throughput = append(res.Throughput, ThroughputPoint{Concurrency: c, EngineRPS: e.RPS, FullRPS: f.RPS, Ratio: ratio(f.RPS, e.RPS),
			EngineCPUUS: e.SelfCPUUS, ClientCPUUS: f.SelfCPUUS, ServerCPUUS: f.ServerCPUUS})
	}
	if err := clients[0].DeleteModel(ctx, id); err != nil {
		return res, fmt.Errorf("bench: %s: deleting the model: %w", m.Name, err)
	}
	return res, nil
}

// quietLog drops the client's per-connection simulation warnings, which
// the benchmark knows about.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// connect opens a simulation-mode client to the benchmark server.
func connect(ctx context.Context, ready childReady, opts ...client.Option) (*client.Client, error) {
	_, port, err := client.SplitAddr(ready.Attested)
	if err != nil {
		return nil, err
	}
	c, err := client.Connect(ctx, ready.Untrusted, append([]client.Option{client.WithSimulation(),
		client.WithHostCertificateFile(ready.HostCertPEM), client.WithAttestedPort(port),
		client.WithMaxReceiveBytes(64 << 20), client.WithLogger(quietLog)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: connecting to the benchmark server: %w", err)
	}
	return c, nil
}

// upload sends model to the server set.Uploads times (deleting it in
// between) and measures the first upload's memory.
func (r *runner) upload(ctx context.Context, c *client.Client, pid int, id string, model []byte, engineLoad float64) (UploadResult, error) {
	u := UploadResult{Runs: max(r.set.Uploads, 1), ChunkBytes: r.set.UploadChunkBytes, EngineLoadS: engineLoad}
	if u.ChunkBytes <= 0 {
		u.ChunkBytes = client.DefaultChunkSize
	}
	// Let the idle server settle so that its RSS is a fair baseline.
	time.Sleep(200 * time.Millisecond)
	var transfers, readies []float64
	for i := range u.Runs {
		if i > 0 {
			if err := c.DeleteModel(ctx, id); err != nil {
				return u, fmt.Errorf("deleting the model between uploads: %w", err)
			}
		}
		var sampler *memSampler
		if i == 0 {
			rss, _, err := procMemory(pid)
			if err != nil {
				return u, err
			}
			u.RSSBeforeBytes = rss
			u.PeakMethod = "VmHWM after clear_refs reset"
			if !resetPeak(pid) {
				u.PeakMethod = "largest VmRSS sampled every 2ms"
			}
			sampler = sampleMemory(pid, 2*time.Millisecond)
		}
		var sent time.Duration
		start := time.Now()
		_, err := c.UploadModel(ctx, model, client.WithModelID(id), client.WithChunkSize(u.ChunkBytes),
			client.WithProgress(func(done, total int64) {
				if done == total {
					sent = time.Since(start)
				}
			}))
		ready := time.Since(start)
		if err != nil {
			if sampler != nil {
				sampler.Peak()
			}
			return u, fmt.Errorf("uploading: %w", err)
		}
		transfers = append(transfers, sent.Seconds())
		readies = append(readies, ready.Seconds())
		if sampler != nil {
			sampled := sampler.Peak()
			rss, hwm, err := procMemory(pid)
			if err != nil {
				return u, err
			}
			u.RSSAfterBytes = rss
			u.PeakBytes = max(sampled, rss)
			if u.PeakMethod == "VmHWM after clear_refs reset" {
				u.PeakBytes = max(hwm, u.PeakBytes)
			}
		}
	}
	slices.Sort(transfers)
	slices.Sort(readies)
	u.TransferS = Percentile(transfers, 50)
	u.ReadyS = Percentile(readies, 50)
	mb := float64(len(model)) / 1e6
	u.MBps = ratio(mb, u.TransferS)
	u.ReadyMBps = ratio(mb, u.ReadyS)
	u.PeakAddedBytes = u.PeakBytes - u.RSSBeforeBytes
	u.PeakAddedRatio = ratio(float64(u.PeakAddedBytes), float64(len(model)))
	u.PeakTotalRatio = ratio(float64(u.PeakBytes), float64(len(model)))
	return u, nil
}

// timeRuns runs p n times in a row and returns each run's duration.
func timeRuns(ctx context.Context, p target, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := p(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

// throughput runs each target in its own goroutine, in a loop, for a
// quarter of d to warm up and then until d has passed, and returns the
// requests completed after the warm-up divided by the time from the end of
// the warm-up to the last completion. Requests still running at the
// deadline are waited for and counted, so that long requests at high
// concurrency are not cut off.
func throughput(ctx context.Context, targets []target, d time.Duration, serverPID int) (tputResult, error) {
	start := time.Now()
	measureFrom, end := start.Add(d/4), start.Add(d/4+d)
	var mu sync.Mutex
	var done int
	var last time.Time
	var first error
	var wg sync.WaitGroup
	// CPU from the start of the measured window to the end of the last
	// request; requests are counted over the same span.
	cpu0 := make(chan cpuSample, 1)
	timer := time.AfterFunc(time.Until(measureFrom), func() { cpu0 <- sampleCPU(serverPID) })
	defer timer.Stop()
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				err := t(ctx)
				now := time.Now()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil && now.After(measureFrom) {
					done++
					if now.After(last) {
						last = now
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return tputResult{}, first
	}
	if done == 0 {
		return tputResult{}, fmt.Errorf("no request completed in %v", d)
	}
	res := tputResult{RPS: float64(done) / last.Sub(measureFrom).Seconds()}
	select {
	case c0 := <-cpu0:
		c1 := sampleCPU(serverPID)
		res.SelfCPUUS = float64((c1.self - c0.self).Microseconds()) / float64(done)
		res.ServerCPUUS = float64((c1.server - c0.server).Microseconds()) / float64(done)
	default: // the window ended before the sample: no CPU figures
	}
	return res, nil
}

// tputResult is one throughput measurement: requests per second, and the
// CPU time each request took in this process and in the server's.
type tputResult struct {
	RPS                    float64
	SelfCPUUS, ServerCPUUS float64
}

// cpuSample is the CPU time (user and system) used so far by this process
// and by the server process.
type cpuSample struct{ self, server time.Duration }

// clockTick is the unit of /proc/PID/stat's CPU times: USER_HZ, 100 on
// every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

func sampleCPU(serverPID int) cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if serverPID > 0 {
		if f, err := procStat(fmt.Sprintf("/proc/%d/stat", serverPID)); err == nil {
			u, _ := strconv.ParseInt(f[statUTime], 10, 64)
			k, _ := strconv.ParseInt(f[statSTime], 10, 64)
			s.server = time.Duration(u+k) * clockTick
		}
	}
	return s
}

// sameOutputs reports whether a and b hold the same tensors, bit for bit.
func sameOutputs(a, b []tensor.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DType != b[i].DType || !slices.Equal(a[i].Shape, b[i].Shape) || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// readFileOr returns the trimmed contents of path, or def.
func readFileOr(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(bytes.TrimSpace(b))
}

// Fields of /proc/PID/stat (and /proc/PID/task/TID/stat) as procStat
// returns them, counted from the state (field 3 in proc(5)).
const (
	statUTime = 11 // utime, clock ticks
	statSTime = 12 // stime, clock ticks
	statNice  = 16 // nice
)

// procStat reads a stat file of /proc and returns its fields after the
// command name (which may hold spaces and parentheses), from the state on.
func procStat(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) <= statNice {
		return nil, fmt.Errorf("%s: %d fields", path, len(f))
	}
	return f, nil
}
