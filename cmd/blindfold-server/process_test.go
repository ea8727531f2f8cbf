package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

// proc is a blindfold-server process.
type proc struct {
	cmd       *exec.Cmd
	untrusted string
	attested  int
	state     string
	mu        sync.Mutex
	log       strings.Builder
	exited    chan struct{}
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

var servingLine = regexp.MustCompile(`msg=serving untrusted=(\S+) attested=\S+:(\d+)`)

// startProc starts the server binary in simulation mode on state and waits
// until it serves.
func startProc(t *testing.T, bin, state string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, bin, state, "", args...)
}

// startProcIn is startProc with the process started in folder dir ("":
// the test's), finding ONNX Runtime through $BLINDFOLD_ONNXRUNTIME_LIB.
func startProcIn(t *testing.T, bin, state, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{state: state, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--simulation", "--state-dir", state, "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0"}, args...)...)
	if dir != "" {
		lib, err := engine.FindLibrary("")
		if err != nil {
			t.Fatal(err)
		}
		p.cmd.Dir = dir
		p.cmd.Env = append(os.Environ(), engine.LibraryEnv+"="+lib)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				p.untrusted = m[1]
				p.attested, _ = strconv.Atoi(m[2])
				once.Do(func() { close(ready) })
			}
		}
		p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("server exited before serving:\n%s", p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start:\n%s", p.logs())
	}
	return p
}

func (p *proc) connect(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, p.untrusted, client.WithSimulation(), client.WithAttestedPort(p.attested),
		client.WithHostCertificateFile(filepath.Join(p.state, "host_server.pem")))
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.logs())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEngineMemoryLimit: a model that asks for a 1.6 GB intermediate tensor
// under a 256 MiB cap gets RESOURCE_EXHAUSTED, and the server goes on.
func TestEngineMemoryLimit(t *testing.T) {
	bin := buildServer(t)
	p := startProc(t, bin, t.TempDir(), "--engine-memory-limit", "256MiB")
	c := p.connect(t)
	ctx := context.Background()
	model, err := onnxgen.Huge()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadModel(ctx, model, client.WithModelID("huge")); err != nil {
		t.Fatal(err)
	}
	shape := func(a, b int64) []tensor.Tensor {
		x, _ := tensor.New("shape", []int64{2}, []int64{a, b})
		return []tensor.Tensor{x}
	}
	_, err = c.Run(ctx, "huge", shape(20000, 20000))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "engine_memory_limit") {
		t.Fatalf("huge intermediate: %v, want RESOURCE_EXHAUSTED naming engine_memory_limit", err)
	}
	res, err := c.Run(ctx, "huge", shape(10, 10))
	if err != nil {
		t.Fatalf("the server does not serve after the refusal: %v\n%s", err, p.logs())
	}
	if v, _ := tensor.Values[float32](res.Outputs[0]); len(v) != 1 || v[0] != 100 {
		t.Fatalf("sum = %v, want 100", v)
	}
}

// TestKillMidSealedUpload: SIGKILL while a saved model is being uploaded,
// then restart: no partial model, and every model saved before is intact.
func TestKillMidSealedUpload(t *testing.T) {
	bin := buildServer(t)
	state := t.TempDir()
	p := startProc(t, bin, state)
	c := p.connect(t)
	ctx := context.Background()
	mlp, _ := onnxgen.MLP()
	cnn, _ := onnxgen.CNN()
	for id, m := range map[string][]byte{"mlp": mlp, "cnn": cnn} {
		if _, err := c.UploadModel(ctx, m, client.WithModelID(id), client.SaveModel()); err != nil {
			t.Fatal(err)
		}
	}
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	before, err := c.Run(ctx, "mlp", []tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	// A large saved upload, killed while its bytes are still arriving.
	big := append(append([]byte{}, cnn...), make([]byte, 64<<20)...)
	var sent atomic.Int64
	started := make(chan struct{})
	var once sync.Once
	go c.UploadModel(ctx, big, client.WithModelID("partial"), client.SaveModel(), client.WithChunkSize(256<<10),
		client.WithProgress(func(n, _ int64) {
			sent.Store(n)
			if n > 8<<20 {
				once.Do(func() { close(started) })
			}
		}))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the large upload did not get going")
	}
	p.cmd.Process.Kill()
	<-p.exited
	if sent.Load() >= int64(len(big)) {
		t.Fatal("the upload finished before the kill; the test proves nothing")
	}
	// Also leave what a kill during the sealed write would leave.
	os.WriteFile(filepath.Join(state, "models", ".tmp-killed"), []byte("partial ciphertext"), 0o600)

	p2 := startProc(t, bin, state)
	c2 := p2.connect(t)
	after, err := c2.Run(ctx, "mlp", []tensor.Tensor{x})
	if err != nil {
		t.Fatalf("mlp lost after the kill: %v\n%s", err, p2.logs())
	}
	if string(after.Outputs[0].Data) != string(before.Outputs[0].Data) {
		t.Fatal("mlp gives different outputs after the restart")
	}
	img, _ := tensor.New("image", []int64{1, 1, 8, 8}, make([]float32, 64))
	if _, err := c2.Run(ctx, "cnn", []tensor.Tensor{img}); err != nil {
		t.Fatalf("cnn lost after the kill: %v", err)
	}
	if _, err := c2.Run(ctx, "partial", []tensor.Tensor{img}); status.Code(err) != codes.NotFound {
		t.Fatalf("the killed upload: %v, want NOT_FOUND", err)
	}
	files, _ := filepath.Glob(filepath.Join(state, "models", "*"))
	hidden, _ := filepath.Glob(filepath.Join(state, "models", ".tmp-*"))
	if len(files) != 2 || len(hidden) != 0 {
		t.Fatalf("models folder after restart: %v %v, want exactly the two sealed files", files, hidden)
	}
	if !strings.Contains(p2.logs(), "interrupted upload") {
		t.Fatalf("the removed temporary file was not reported:\n%s", p2.logs())
	}
}
