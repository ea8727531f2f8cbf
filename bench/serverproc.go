package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/server"
)

// childEnv, when set in the environment, makes Main (and the package's
// TestMain) run the benchmark server instead of the benchmark: its value
// is the JSON of childConfig. floodEnv (flood.go) does the same for
// tenant A's flood.
const childEnv = "BLINDFOLD_BENCH_SERVER"

// childConfig is what the benchmark tells its server process.
type childConfig struct {
	StateDir       string `json:"state_dir"`
	IntraOpThreads int    `json:"intra_op_threads"`
	InterOpThreads int    `json:"inter_op_threads"`
	NoSpinning     bool   `json:"no_spinning,omitempty"`
	CPUProfile     string `json:"cpu_profile,omitempty"`
	// Optional settings of the scaling and fairness sections (0 or "":
	// the server's default).
	MaxModels          int    `json:"max_models,omitempty"`
	MaxModelBytes      int64  `json:"max_model_bytes,omitempty"`
	MaxTotalModelBytes int64  `json:"max_total_model_bytes,omitempty"`
	MaxConcurrentRuns  int    `json:"max_concurrent_runs,omitempty"`
	AuthKeyFile        string `json:"auth_key_file,omitempty"`
}

// childReady is the one JSON line the server process prints once it serves.
type childReady struct {
	Untrusted   string `json:"untrusted"`
	Attested    string `json:"attested"`
	HostCertPEM string `json:"host_cert_pem"`
	ORTVersion  string `json:"ort_version"`
}

// IsChildProcess reports whether this process was started by the
// benchmark as its server or as tenant A's flood.
func IsChildProcess() bool { return os.Getenv(childEnv) != "" || os.Getenv(floodEnv) != "" }

// RunChild runs this child process of the benchmark (see IsChildProcess)
// and returns its exit code.
func RunChild() int {
	if os.Getenv(floodEnv) != "" {
		return floodChild()
	}
	return serveChild()
}

// serveChild runs the benchmark's server process: the real server
// (server.New and Start, simulation mode, loopback, ports chosen by the
// system) with the engine settings it was given. It prints a childReady
// line on stdout, serves until its standard input closes (the benchmark
// ended or stopped it), shuts down and returns the exit code.
func serveChild() int {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cc); err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench server: bad %s: %v\n", childEnv, err)
		return 2
	}
	if cc.CPUProfile != "" {
		f, err := os.Create(cc.CPUProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "blindfold-bench server: CPU profile: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "blindfold-bench server: CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rt, err := engine.Open(engine.Options{IntraOpThreads: cc.IntraOpThreads, InterOpThreads: cc.InterOpThreads, DisableSpinning: cc.NoSpinning})
	if err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench server: opening the engine: %v\n", err)
		return 1
	}
	cfg := server.DefaultConfig()
	cfg.Simulation = true
	cfg.UntrustedAddr = "127.0.0.1:0"
	cfg.AttestedAddr = "127.0.0.1:0"
	cfg.StateDir = cc.StateDir
	cfg.IntraOpThreads, cfg.InterOpThreads = cc.IntraOpThreads, cc.InterOpThreads
	cfg.EngineSpinning = !cc.NoSpinning
	cfg.LogLevel = "warn"
	// The throughput runs send more concurrent requests than the server
	// runs at once (max_concurrent_runs); they queue instead of being
	// refused after the default two seconds.
	cfg.RunQueueTimeout = server.Duration(time.Minute)
	if cc.MaxModels > 0 {
		cfg.MaxModels = cc.MaxModels
	}
	if cc.MaxModelBytes > 0 {
		cfg.MaxModelBytes = server.ByteSize(cc.MaxModelBytes)
	}
	if cc.MaxTotalModelBytes > 0 {
		cfg.MaxTotalModelBytes = server.ByteSize(cc.MaxTotalModelBytes)
	}
	if cc.MaxConcurrentRuns > 0 {
		cfg.MaxConcurrentRuns = cc.MaxConcurrentRuns
	}
	if cc.AuthKeyFile != "" {
		cfg.Auth = server.AuthRequired
		cfg.AuthKeys = []string{cc.AuthKeyFile}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(server.Options{Config: cfg, Runtime: rt, Logger: log})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench server: starting: %v\n", err)
		return 1
	}
	ready, _ := json.Marshal(childReady{
		Untrusted: srv.UntrustedAddr(), Attested: srv.AttestedAddr(),
		HostCertPEM: filepath.Join(cfg.StateDir, "host_server.pem"), ORTVersion: rt.Version(),
	})
	fmt.Printf("%s\n", ready)
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench server: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// childProc is a running child process of the benchmark: this executable
// started again as its server or as tenant A's flood (see RunChild).
type childProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	lines  chan string // its standard output, line by line; closed at the end
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

// serverProc is a running benchmark server process.
type serverProc struct {
	*childProc
	ready childReady
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild starts this executable again with env set to the JSON of
// conf, and returns once the child printed its first line (what names
// the child in errors).
func startChild(ctx context.Context, env string, conf any, what string) (*childProc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("bench: finding this executable to start the %s: %w", what, err)
	}
	js, err := json.Marshal(conf)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+string(js))
	p := &childProc{cmd: cmd, stderr: &lockedBuffer{}, lines: make(chan string, 4), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, "", fmt.Errorf("bench: %s stdin: %w", what, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("bench: %s stdout: %w", what, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("bench: starting the %s process %s: %w", what, exe, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case line, ok := <-p.lines:
		if !ok {
			err := <-p.done
			return nil, "", fmt.Errorf("bench: the %s process exited before it was ready (%v): %s", what, err, strings.TrimSpace(p.stderr.String()))
		}
		return p, line, nil
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, "", fmt.Errorf("bench: the %s process was not ready within 60s: %s", what, p.stderr.String())
	case <-ctx.Done():
		p.stop()
		return nil, "", ctx.Err()
	}
}

// startServer starts this executable again as the benchmark's server and
// waits until it serves.
func startServer(ctx context.Context, cc childConfig) (*serverProc, error) {
	c, line, err := startChild(ctx, childEnv, cc, "server")
	if err != nil {
		return nil, err
	}
	p := &serverProc{childProc: c}
	if err := json.Unmarshal([]byte(line), &p.ready); err != nil {
		p.stop()
		return nil, fmt.Errorf("bench: the server process printed %q, not its addresses: %w", line, err)
	}
	return p, nil
}

// pid returns the child's process id.
func (p *childProc) pid() int { return p.cmd.Process.Pid }

// stop closes the child's standard input, which makes it finish, and
// waits for it (killing it after 15 seconds). Only the first call stops;
// later ones return its result.
func (p *childProc) stop() error {
	p.stopOnce.Do(func() {
		p.stdin.Close()
		select {
		case err := <-p.done:
			if err != nil {
				p.stopErr = fmt.Errorf("bench: child process: %w: %s", err, strings.TrimSpace(p.stderr.String()))
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = errors.New("bench: a child process did not stop within 15s and was killed")
		}
	})
	return p.stopErr
}

// procMemory reads VmRSS and VmHWM (bytes) of process pid.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: reading memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("bench: no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// procThreads reads the thread count of process pid.
func procThreads(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading threads of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("bench: no Threads in /proc/%d/status", pid)
}

// resetPeak resets the kernel's peak-RSS mark (VmHWM) of process pid to
// its current RSS. It reports whether the kernel allowed it.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// memSampler records the largest VmRSS of a process, sampled every
// interval, as a check on VmHWM (and its stand-in where VmHWM cannot be
// reset).
type memSampler struct {
	stop chan struct{}
	done chan int64
}

func sampleMemory(pid int, interval time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if rss, _, err := procMemory(pid); err == nil && rss > peak {
				peak = rss
			}
			select {
			case <-m.stop:
				m.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Peak stops sampling and returns the largest RSS seen.
func (m *memSampler) Peak() int64 {
	close(m.stop)
	return <-m.done
}
