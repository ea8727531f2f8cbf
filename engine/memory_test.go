package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

const memoryChildEnv = "BLINDFOLD_ENGINE_MEMORY_CHILD"

// TestMain runs the memory-limit check when the test binary is started as
// TestMemoryLimit's child, since the cap is fixed by a process's first Open.
func TestMain(m *testing.M) {
	if os.Getenv(memoryChildEnv) != "" {
		if err := memoryChild(); err != nil {
			fmt.Println("memory child failed:", err)
			os.Exit(1)
		}
		fmt.Println("memory child: ok")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMemoryLimit: with a 256 MiB cap, a run that needs a 1.6 GB
// intermediate tensor fails with ErrMemoryLimit, and the same session then
// runs a small request correctly (in a fresh process).
func TestMemoryLimit(t *testing.T) {
	runtimeOrSkip(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), memoryChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "memory child: ok") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}

func memoryChild() error {
	rt, err := Open(Options{MemoryLimit: 256 << 20})
	if err != nil {
		return err
	}
	if _, err := Open(Options{MemoryLimit: 512 << 20}); err == nil {
		return errors.New("a second Open with another limit succeeded")
	}
	model, err := onnxgen.Huge()
	if err != nil {
		return err
	}
	s, err := rt.Load(model)
	if err != nil {
		return err
	}
	defer s.Close()
	shape := func(a, b int64) []tensor.Tensor {
		x, _ := tensor.New("shape", []int64{2}, []int64{a, b})
		return []tensor.Tensor{x}
	}
	_, err = s.Run(context.Background(), shape(20000, 20000))
	if !errors.Is(err, ErrRun) || !errors.Is(err, ErrMemoryLimit) {
		return fmt.Errorf("1.6 GB intermediate under a 256 MiB cap: %v, want ErrRun and ErrMemoryLimit", err)
	}
	out, err := s.Run(context.Background(), shape(100, 100))
	if err != nil {
		return fmt.Errorf("small run after the refusal: %w", err)
	}
	if v, _ := tensor.Values[float32](out[0]); len(v) != 1 || v[0] != 10000 {
		return fmt.Errorf("sum = %v, want 10000", v)
	}
	return nil
}
