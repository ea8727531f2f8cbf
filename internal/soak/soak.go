// Package soak drives a real Blindfold server with many concurrent clients
// and mixed traffic (uploads, runs, signed runs, deletes, bad inputs,
// cancelled streams), half of them over gRPC and half over BlindAI 0.6's
// HTTP/CBOR, for a set time, checks every answer, and checks that
// goroutines, open files and resident memory return to their baseline once
// the load stops.
package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/server/blindai06"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Options configure a soak run.
type Options struct {
	// Duration is how long the load runs.
	Duration time.Duration
	// Clients is the number of concurrent clients.
	Clients int
	// Seed makes the traffic mix reproducible.
	Seed uint64
	// Runtime is the engine to serve with.
	Runtime *engine.Runtime
	// StateDir is the server's state folder (a temporary one if empty).
	StateDir string
	// Progress, if set, receives a line every few seconds.
	Progress io.Writer
	// Evict runs the server with room in memory for only Clients+2 models
	// while the clients use about twice as many, all saved: models are
	// evicted to sealed storage and reloaded throughout, and every answer
	// must stay right.
	Evict bool
}

// Resources is a snapshot of what the process holds.
type Resources struct {
	Goroutines int   `json:"goroutines"`
	OpenFiles  int   `json:"open_files"`
	RSSBytes   int64 `json:"rss_bytes"`
	HeapBytes  int64 `json:"heap_bytes"`
}

// Report is what a soak run saw.
type Report struct {
	Duration time.Duration    `json:"duration"`
	Clients  int              `json:"clients"`
	Requests int64            `json:"requests"`
	ByKind   map[string]int64 `json:"by_kind"`
	ByCode   map[string]int64 `json:"by_code"`
	Wrong    []string         `json:"wrong"`
	Baseline Resources        `json:"baseline"`
	Peak     Resources        `json:"peak"`
	After    Resources        `json:"after"`
	Leaks    []string         `json:"leaks"`
	// ModelsInMemory is the server's max_models (0: its default); the
	// counts below are the server's, over the whole run.
	ModelsInMemory int    `json:"models_in_memory"`
	SharedModels   int    `json:"shared_models"`
	Evictions      uint64 `json:"evictions"`
	Reloads        uint64 `json:"reloads"`
	ReloadFailures uint64 `json:"reload_failures"`
}

// OK reports whether every answer was right and nothing leaked.
func (r *Report) OK() bool { return len(r.Wrong) == 0 && len(r.Leaks) == 0 }

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %s with %d clients: %d requests (%.0f/s)\n", r.Duration.Round(time.Second), r.Clients, r.Requests, float64(r.Requests)/r.Duration.Seconds())
	fmt.Fprintf(&b, "requests by kind:\n")
	for _, k := range sortedKeys(r.ByKind) {
		fmt.Fprintf(&b, "  %-16s %d\n", k, r.ByKind[k])
	}
	fmt.Fprintf(&b, "answers by gRPC code:\n")
	for _, k := range sortedKeys(r.ByCode) {
		fmt.Fprintf(&b, "  %-18s %d\n", k, r.ByCode[k])
	}
	if r.ModelsInMemory > 0 {
		fmt.Fprintf(&b, "eviction: %d shared models, room for %d in memory: %d evictions, %d reloads, %d failed reloads\n", r.SharedModels, r.ModelsInMemory, r.Evictions, r.Reloads, r.ReloadFailures)
	}
	fmt.Fprintf(&b, "%-10s %10s %10s %12s %12s\n", "", "goroutines", "open files", "RSS MiB", "heap MiB")
	for _, row := range []struct {
		n string
		r Resources
	}{{"baseline", r.Baseline}, {"peak", r.Peak}, {"after", r.After}} {
		fmt.Fprintf(&b, "%-10s %10d %10d %12.1f %12.1f\n", row.n, row.r.Goroutines, row.r.OpenFiles, float64(row.r.RSSBytes)/(1<<20), float64(row.r.HeapBytes)/(1<<20))
	}
	if len(r.Wrong) > 0 {
		fmt.Fprintf(&b, "WRONG ANSWERS (%d):\n", len(r.Wrong))
		for _, w := range r.Wrong[:min(len(r.Wrong), 20)] {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	for _, l := range r.Leaks {
		fmt.Fprintf(&b, "LEAK: %s\n", l)
	}
	if r.OK() {
		b.WriteString("result: OK (every answer right; resources back to baseline)\n")
	} else {
		b.WriteString("result: FAILED\n")
	}
	return b.String()
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Snapshot reads the process's goroutines, open files and memory.
func Snapshot() Resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := Resources{Goroutines: runtime.NumGoroutine(), HeapBytes: int64(ms.HeapInuse)}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		r.OpenFiles = len(ents)
	}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				r.RSSBytes = kb << 10
			}
		}
	}
	return r
}

// settle collects garbage and waits for goroutines to wind down.
func settle(target int) Resources {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		debug.FreeOSMemory()
		s := Snapshot()
		if s.Goroutines <= target || time.Now().After(deadline) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// workload is a model the clients share, with inputs and the outputs the
// engine gives for them.
type workload struct {
	name   string
	model  []byte
	inputs []tensor.Tensor
	want   []tensor.Tensor
}

func prepare(rt *engine.Runtime) ([]workload, error) {
	builders := []struct {
		name  string
		build func() ([]byte, error)
	}{{"mlp", onnxgen.MLP}, {"cnn", onnxgen.CNN}, {"demo", onnxgen.Demo}, {"multi", onnxgen.Multi}}
	var out []workload
	r := rand.New(rand.NewPCG(11, 12))
	for _, b := range builders {
		model, err := b.build()
		if err != nil {
			return nil, err
		}
		sess, err := rt.Load(model)
		if err != nil {
			return nil, err
		}
		var inputs []tensor.Tensor
		for _, sp := range sess.Inputs() {
			shape := make([]int64, len(sp.Shape))
			for i, d := range sp.Shape {
				if d < 0 {
					d = 2
				}
				shape[i] = d
			}
			n, _ := tensor.ByteSize(sp.DType, shape)
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.IntN(2)) // valid for every type, bool included
			}
			inputs = append(inputs, tensor.Tensor{Name: sp.Name, DType: sp.DType, Shape: shape, Data: data})
		}
		want, err := sess.Run(context.Background(), inputs)
		sess.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, workload{b.name, model, inputs, want})
	}
	return out, nil
}

// Run starts a server, drives it, stops it, and reports.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Clients <= 0 || opts.Duration <= 0 {
		return nil, errors.New("soak: need a positive duration and client count")
	}
	work, err := prepare(opts.Runtime)
	if err != nil {
		return nil, fmt.Errorf("soak: preparing models: %w", err)
	}
	state := opts.StateDir
	if state == "" {
		if state, err = os.MkdirTemp("", "blindfold-soak-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(state)
	}
	cfg := server.DefaultConfig()
	cfg.Simulation = true
	cfg.UntrustedAddr, cfg.AttestedAddr = "127.0.0.1:0", "127.0.0.1:0"
	// Both protocols at once: every other client speaks BlindAI 0.6's
	// HTTP/CBOR.
	cfg.BlindAI06 = true
	cfg.BlindAI06UnattestedAddr, cfg.BlindAI06AttestedAddr, cfg.BlindAI06ManagementAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.StateDir = state
	cfg.MaxModels = 4*opts.Clients + 16
	// Each client holds one model at a time, so Clients+2 in memory leave
	// room to reload whatever a client asks for; about twice as many
	// shared models keep evicting.
	copies := 1
	if opts.Evict {
		cfg.MaxModels = opts.Clients + 2
		copies = (2*cfg.MaxModels)/len(work) + 1
	}
	cfg.RunQueueTimeout = server.Duration(30 * time.Second)
	fe := blindai06.New()
	srv, err := server.New(server.Options{Config: cfg, Runtime: opts.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Frontends: []server.Frontend{fe}})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Shutdown(context.Background())
		}
	}()
	untrusted, attested := srv.UntrustedAddr(), srv.AttestedAddr()
	port, _ := strconv.Atoi(attested[strings.LastIndex(attested, ":")+1:])
	hostCert := filepath.Join(state, "host_server.pem")
	connect := func() (*client.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return client.Connect(cctx, untrusted, client.WithSimulation(), client.WithAttestedPort(port),
			client.WithHostCertificateFile(hostCert), client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}

	// Shared public models, then a warm-up so that the engine's threads and
	// pools exist before the baseline.
	admin, err := connect()
	if err != nil {
		return nil, err
	}
	for _, w := range work {
		for k := range copies {
			id := sharedID(w, k, opts.Evict)
			up := []client.UploadOption{client.WithModelID(id)}
			if opts.Evict {
				up = append(up, client.SaveModel())
			}
			if _, err := admin.UploadModel(ctx, w.model, up...); err != nil {
				return nil, err
			}
			if _, err := admin.Run(ctx, id, w.inputs); err != nil {
				return nil, err
			}
		}
	}
	admin.Close()
	baseline := settle(0)

	rep := &Report{Clients: opts.Clients, ByKind: map[string]int64{}, ByCode: map[string]int64{}, Baseline: baseline}
	var mu sync.Mutex
	var requests atomic.Int64
	record := func(kind string, err error, wrong string) {
		requests.Add(1)
		mu.Lock()
		defer mu.Unlock()
		rep.ByKind[kind]++
		rep.ByCode[status.Code(err).String()]++
		if wrong != "" {
			rep.Wrong = append(rep.Wrong, kind+": "+wrong)
		}
	}
	expect := func(kind string, err error, code codes.Code) {
		if status.Code(err) != code {
			record(kind, err, fmt.Sprintf("got %v (%v), want %v", status.Code(err), err, code))
			return
		}
		record(kind, err, "")
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, opts.Duration)
	defer stopLoad()
	peak := baseline
	var peakMu sync.Mutex
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-t.C:
				s := Snapshot()
				peakMu.Lock()
				peak.Goroutines = max(peak.Goroutines, s.Goroutines)
				peak.OpenFiles = max(peak.OpenFiles, s.OpenFiles)
				peak.RSSBytes = max(peak.RSSBytes, s.RSSBytes)
				peak.HeapBytes = max(peak.HeapBytes, s.HeapBytes)
				peakMu.Unlock()
				if opts.Progress != nil && time.Since(last) >= 10*time.Second {
					last = time.Now()
					fmt.Fprintf(opts.Progress, "soak: %d requests, %d goroutines, RSS %.0f MiB\n", requests.Load(), s.Goroutines, float64(s.RSSBytes)/(1<<20))
				}
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < opts.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(opts.Seed, uint64(c)))
			if c%2 == 1 {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				h, err := connect06(cctx, fe, hostCert)
				cancel()
				if err != nil {
					record("connect", err, "BlindAI 0.6 connect failed: "+err.Error())
					return
				}
				defer h.close()
				for loadCtx.Err() == nil {
					drive06(loadCtx, h, r, work, copies, opts.Evict, record, expect)
				}
				return
			}
			cl, err := connect()
			if err != nil {
				record("connect", err, "connect failed: "+err.Error())
				return
			}
			defer cl.Close()
			for n := 0; loadCtx.Err() == nil; n++ {
				drive(loadCtx, cl, r, work, copies, opts.Evict, fmt.Sprintf("c%d-%d", c, n), record, expect)
			}
		}()
	}
	wg.Wait()
	<-sampleDone
	rep.Duration = time.Since(start)
	rep.Requests = requests.Load()
	rep.Peak = peak

	// Every client is closed; the server must hold no more than at the
	// baseline. Models uploaded by clients were deleted by them.
	rep.After = settle(baseline.Goroutines)
	if rep.After.Goroutines > baseline.Goroutines+2 {
		rep.Leaks = append(rep.Leaks, fmt.Sprintf("goroutines: %d after, %d at baseline", rep.After.Goroutines, baseline.Goroutines))
	}
	if rep.After.OpenFiles > baseline.OpenFiles+2 {
		rep.Leaks = append(rep.Leaks, fmt.Sprintf("open files: %d after, %d at baseline", rep.After.OpenFiles, baseline.OpenFiles))
	}
	// Resident memory keeps allocator caches (Go's and ONNX Runtime's); a
	// leak shows as growth well beyond them.
	if limit := baseline.RSSBytes + baseline.RSSBytes/2 + 128<<20; rep.After.RSSBytes > limit {
		rep.Leaks = append(rep.Leaks, fmt.Sprintf("resident memory: %d MiB after, %d MiB at baseline", rep.After.RSSBytes>>20, baseline.RSSBytes>>20))
	}
	if n, _ := srv.Usage(); n != copies*len(work) {
		rep.Leaks = append(rep.Leaks, fmt.Sprintf("models: %d held after the load, want the %d shared ones", n, copies*len(work)))
	}
	rep.SharedModels = copies * len(work)
	if opts.Evict {
		rep.ModelsInMemory = cfg.MaxModels
	}
	for _, t := range srv.Tenants() {
		rep.Evictions += t.Evictions
		rep.Reloads += t.Reloads
		rep.ReloadFailures += t.ReloadFailures
	}
	if rep.ReloadFailures > 0 {
		rep.Wrong = append(rep.Wrong, fmt.Sprintf("%d reloads of evicted models failed", rep.ReloadFailures))
	}
	if opts.Evict && (rep.Evictions == 0 || rep.Reloads == 0) {
		rep.Wrong = append(rep.Wrong, fmt.Sprintf("eviction asked for, but %d evictions and %d reloads happened", rep.Evictions, rep.Reloads))
	}
	stopped = true
	if err := srv.Shutdown(context.Background()); err != nil {
		return rep, err
	}
	return rep, nil
}

// drive sends one request of a random kind and checks its answer.
func drive(ctx context.Context, cl *client.Client, r *rand.Rand, work []workload, copies int, save bool, id string,
	record func(string, error, string), expect func(string, error, codes.Code)) {
	w := work[r.IntN(len(work))]
	shared := sharedID(w, r.IntN(copies), save)
	upOpts := []client.UploadOption{client.WithModelID(id)}
	if save {
		upOpts = append(upOpts, client.SaveModel())
	}
	// over reports the end of the run. gRPC ends a call on its own timer at
	// the deadline, a moment before ctx.Err() reports it, so the clock is
	// asked too.
	deadline, hasDeadline := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || (hasDeadline && !time.Now().Before(deadline)) }
	switch p := r.IntN(100); {
	case p < 35: // run a shared model, check the outputs bit for bit
		res, err := cl.Run(ctx, shared, w.inputs)
		if over() {
			return
		}
		record("run", err, compare(res, err, w.want))
	case p < 45: // signed run: the client verifies signature and input hash
		res, err := cl.Run(ctx, shared, w.inputs, client.Sign())
		if over() {
			return
		}
		wrong := compare(res, err, w.want)
		if wrong == "" && !res.Signed {
			wrong = "reply not signed"
		}
		record("signed-run", err, wrong)
	case p < 60: // own model: upload, run, delete
		if _, err := cl.UploadModel(ctx, w.model, upOpts...); err != nil {
			if over() {
				// Cut by the end of the run: the server may have kept it.
				cleanup(cl, id, record, false)
				return
			}
			record("upload", err, "upload failed: "+err.Error())
			return
		}
		record("upload", nil, "")
		res, err := cl.Run(ctx, id, w.inputs)
		if !over() {
			record("run-own", err, compare(res, err, w.want))
		}
		err = cl.DeleteModel(context.Background(), id)
		record("delete", err, errString(err))
	case p < 70: // wrong input type
		bad := append([]tensor.Tensor(nil), w.inputs...)
		bad[0].DType = (bad[0].DType + 1) % tensor.Bool
		if bad[0].DType == w.inputs[0].DType {
			bad[0].DType = tensor.F64
		}
		bad[0].Data = make([]byte, len(w.inputs[0].Data)/w.inputs[0].DType.Size()*bad[0].DType.Size())
		_, err := cl.Run(ctx, shared, bad)
		if !over() {
			expect("bad-input", err, codes.InvalidArgument)
		}
	case p < 78: // garbage model
		_, err := cl.UploadModel(ctx, bytes.Repeat([]byte{0xde, 0xad}, 1+r.IntN(4096)), client.WithModelID(id))
		if !over() {
			expect("bad-model", err, codes.InvalidArgument)
		}
	case p < 86: // unknown model
		_, err := cl.Run(ctx, "absent-"+id, w.inputs)
		if !over() {
			expect("not-found", err, codes.NotFound)
		}
	default: // a stream cancelled by the client mid-way
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Duration(r.IntN(300))*time.Microsecond, cancel)
		_, err := cl.UploadModel(cctx, w.model, append(upOpts, client.WithChunkSize(64))...)
		cancel()
		if over() {
			cleanup(cl, id, record, false)
			return
		}
		if err == nil { // it finished before the cancel: clean up
			record("cancelled", nil, errString(cl.DeleteModel(context.Background(), id)))
			return
		}
		if c := status.Code(err); c != codes.Canceled && !errors.Is(err, context.Canceled) {
			record("cancelled", err, fmt.Sprintf("got %v, want Canceled", err))
			return
		}
		record("cancelled", status.Error(codes.Canceled, "cancelled"), "")
		// A cancel that lands after the last chunk may find the upload
		// already done: the client cannot know, so it deletes, and either
		// answer (OK or NOT_FOUND) is right.
		cleanup(cl, id, record, true)
	}
}

// sharedID names copy k of w's shared model.
func sharedID(w workload, k int, evict bool) string {
	if !evict {
		return "shared-" + w.name
	}
	return fmt.Sprintf("shared-%s-%d", w.name, k)
}

// cleanup deletes a model whose upload ended in doubt; OK and NOT_FOUND are
// both right. It records the answer when count is set.
func cleanup(cl *client.Client, id string, record func(string, error, string), count bool) {
	err := cl.DeleteModel(context.Background(), id)
	wrong := ""
	if c := status.Code(err); c != codes.OK && c != codes.NotFound {
		wrong = "delete after an upload in doubt: " + err.Error()
	}
	if count || wrong != "" {
		record("cleanup-delete", err, wrong)
	}
}

func compare(res *client.RunResult, err error, want []tensor.Tensor) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	if len(res.Outputs) != len(want) {
		return fmt.Sprintf("%d outputs, want %d", len(res.Outputs), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(res.Outputs[i].Data, w.Data) {
			return fmt.Sprintf("output %q differs from the engine's", w.Name)
		}
	}
	return ""
}

func errString(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}
