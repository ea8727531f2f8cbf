package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
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

// vmRSS returns the process's resident memory in bytes.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestMemoryReturnedAfterClose loads and closes a many-node model again
// and again: the small allocations ONNX Runtime makes for each node must
// go back to the system after Close, or the process grows with every
// upload and delete (about 20MB per cycle for this model without
// releaseMemory).
func TestMemoryReturnedAfterClose(t *testing.T) {
	rt := runtimeOrSkip(t)
	model, err := onnxgen.IdentityChain(30_000)
	if err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		s, err := rt.Load(model)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		debug.FreeOSMemory()
	}
	cycle()
	first := vmRSS(t)
	const cycles = 8
	for range cycles {
		cycle()
	}
	last := vmRSS(t)
	t.Logf("RSS after the first close %d MiB, after %d more cycles %d MiB", first>>20, cycles, last>>20)
	if grew := last - first; grew > 48<<20 {
		t.Errorf("RSS grew by %d MiB over %d load/close cycles; memory is not given back", grew>>20, cycles)
	}
}
