package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// osThreads counts the process's threads.
func osThreads(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("cannot count threads: %v", err)
	}
	return len(ents)
}

// TestThreadsDoNotGrowWithModels loads 24 models and runs each: every
// session runs on ONNX Runtime's shared thread pools, so the process's
// threads stay where one model put them (per-session pools added at least
// one thread a model).
func TestThreadsDoNotGrowWithModels(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	model := testserver.Model(t, "mlp.onnx")
	in := []tensor.Tensor{f32(t, []int64{1, 4})}
	ctx := context.Background()
	if _, _, _, err := b.upload(ctx, model, "m0", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.run(ctx, "m0", in, false); err != nil {
		t.Fatal(err)
	}
	before := osThreads(t)
	const n = 24
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("m%d", i)
		if _, _, _, err := b.upload(ctx, model, id, false); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := b.run(ctx, id, in, false); err != nil {
			t.Fatal(err)
		}
	}
	after := osThreads(t)
	t.Logf("threads: %d with one model, %d with %d", before, after, n)
	// A few threads may come and go with gRPC and Go's scheduler; one a
	// model would be 23.
	if after-before > 8 {
		t.Errorf("threads grew from %d to %d over %d more models; sessions do not share the thread pools", before, after, n-1)
	}
}
