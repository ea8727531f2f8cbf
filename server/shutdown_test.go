package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestShutdownFinishesInFlight starts a RunModel stream, begins shutdown
// while it is open, then completes it: the request must succeed, and
// shutdown must return once it has.
func TestShutdownFinishesInFlight(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	if _, _, _, err := b.upload(ctx, testserver.Model(t, "mlp.onnx"), "mlp", false); err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	stream, err := b.ex.RunModel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{{
		Info: &securedexchange.TensorInfo{Dims: []int32{1, 4}, DatumType: securedexchange.DatumTypeEnum_F32}, BytesData: x.Data[:8]}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start the handler
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done <- ts.Shutdown(sctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) while a request was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := stream.Send(&securedexchange.RunModelRequest{InputTensors: []*securedexchange.TensorData{{
		Info: &securedexchange.TensorInfo{Dims: []int32{1, 4}, DatumType: securedexchange.DatumTypeEnum_F32}, BytesData: x.Data[8:]}}}); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.CloseAndRecv()
	if err != nil || len(reply.Payload) == 0 {
		t.Fatalf("in-flight request failed during shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// A new request is refused now.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.ex.DeleteModel(cctx, &securedexchange.DeleteModelRequest{ModelId: "mlp"}); err == nil {
		t.Fatal("a request after shutdown succeeded")
	}
}

// TestShutdownDeadline: a request that never finishes is cut when the
// shutdown deadline passes.
func TestShutdownDeadline(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	stream, err := b.ex.SendModel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.SendModelRequest{Data: []byte{1, 2, 3}, ModelId: "stuck"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = ts.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown = %v, want the deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v after its deadline", d)
	}
	if _, err := stream.CloseAndRecv(); err == nil {
		t.Fatal("the cut upload succeeded")
	}
}
