package engine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

const memoryChildEnv = "BLINDFOLD_ENGINE_MEMORY_CHILD"

// TestMemoryLimit runs TestMemoryLimitChild in a fresh process, since the
// cap is fixed by the first Open of a process.
func TestMemoryLimit(t *testing.T) {
	runtimeOrSkip(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryLimitChild$", "-test.v")
	cmd.Env = append(os.Environ(), memoryChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestMemoryLimitChild") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

// TestMemoryLimitChild: with a 256 MiB cap, a run that needs a 1.6 GB
// intermediate tensor fails with an error, and the same session then runs
// a small request correctly.
func TestMemoryLimitChild(t *testing.T) {
	if os.Getenv(memoryChildEnv) == "" {
		t.Skip("runs only as TestMemoryLimit's child process")
	}
	if _, err := FindLibrary(""); err != nil {
		t.Skipf("ONNX Runtime library not found (run scripts/setup-onnxruntime.sh): %v", err)
	}
	rt, err := Open(Options{MemoryLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{MemoryLimit: 512 << 20}); err == nil {
		t.Fatal("a second Open with another limit succeeded")
	}
	model, err := onnxgen.Huge()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shape := func(a, b int64) []tensor.Tensor {
		x, _ := tensor.New("shape", []int64{2}, []int64{a, b})
		return []tensor.Tensor{x}
	}
	_, err = s.Run(context.Background(), shape(20000, 20000))
	if !errors.Is(err, ErrRun) || !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("1.6 GB intermediate under a 256 MiB cap: %v, want ErrRun and ErrMemoryLimit", err)
	}
	t.Logf("refused: %v", err)
	out, err := s.Run(context.Background(), shape(100, 100))
	if err != nil {
		t.Fatalf("small run after the refusal: %v", err)
	}
	if v, _ := tensor.Values[float32](out[0]); len(v) != 1 || v[0] != 10000 {
		t.Fatalf("sum = %v, want 10000", v)
	}
}
