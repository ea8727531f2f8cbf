package engine

import (
	"context"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/tensor"
)

// BenchmarkRunMLPCancellable runs the MLP under a cancellable context, as
// every server request does (a gRPC stream's context can be cancelled).
func BenchmarkRunMLPCancellable(b *testing.B) {
	s := load(b, "mlp.onnx")
	x := mustTensor(b, "x", []int64{1, 4}, []float32{1, 2, 3, 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(ctx, []tensor.Tensor{x}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunOptionsReusedAfterCancel: run options whose run was terminated are
// not reused, so the next run on the same session is not terminated.
func TestRunOptionsReusedAfterCancel(t *testing.T) {
	s := load(t, "mlp.onnx")
	x := mustTensor(t, "x", []int64{1, 4}, []float32{1, 2, 3, 4})
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*time.Microsecond)
		s.Run(ctx, []tensor.Tensor{x}) // may or may not be cut
		cancel()
		live, stop := context.WithCancel(context.Background())
		if _, err := s.Run(live, []tensor.Tensor{x}); err != nil {
			t.Fatalf("run %d after a cancelled run failed: %v", i, err)
		}
		stop()
	}
}
