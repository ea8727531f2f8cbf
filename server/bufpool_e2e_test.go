package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// tripleModel is y = 3·x for x of shape [rows, width] (rows 0: any):
// inputs and outputs big enough for the server's buffer pool, weights of
// four bytes. The engine writes a static output into a pooled buffer, and
// copies a dynamic one out of ONNX Runtime.
func tripleModel(t *testing.T, rows, width int64) []byte {
	t.Helper()
	r := onnxgen.Sym("rows")
	if rows > 0 {
		r = onnxgen.Fixed(rows)
	}
	g := onnxgen.NewGraph("triple")
	g.Input("x", tensor.F32, r, onnxgen.Fixed(width))
	g.Output("y", tensor.F32, r, onnxgen.Fixed(width))
	g.Floats("c", []int64{1}, []float32{3})
	g.Node("Mul", []string{"x", "c"}, []string{"y"})
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTensorBuffersGivenBack runs requests that take input and output
// buffers from the server's pool (bufpool) concurrently, signed and not,
// with every answer checked, plus requests that fail after their input
// buffer was taken; then every buffer must be back. A buffer given back
// twice, or reused while still read, shows as a wrong answer; one never
// given back, as a count that stays up.
func TestTensorBuffersGivenBack(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const width = 1 << 16 // 256 KiB a row, sent in 32 KiB chunks
	var ids [2]string     // static output, dynamic output
	for i, rows := range []int64{2, 0} {
		up, _, _, err := b.upload(ctx, tripleModel(t, rows, width), "", false)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = up.GetModelId()
	}
	id := ids[0]
	base := bufpool.Outstanding()

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 12 {
				rows, id := int64(2), ids[0]
				if g%4 == 3 {
					rows, id = int64(1+i%3), ids[1]
				}
				x := make([]float32, rows*width)
				for j := range x {
					x[j] = float32((j+g*7+i*13)%1000 - 500)
				}
				in, err := tensor.New("x", []int64{rows, width}, x)
				if err != nil {
					errs <- err
					return
				}
				p, _, _, err := b.run(ctx, id, []tensor.Tensor{in}, i%2 == 1)
				if err != nil {
					errs <- err
					return
				}
				out := p.GetOutputTensors()
				if len(out) != 1 || len(out[0].GetBytesData()) != len(x)*4 {
					errs <- errors.New("wrong output size")
					return
				}
				for j, v := range x {
					if got := math.Float32frombits(binary.LittleEndian.Uint32(out[0].GetBytesData()[4*j:])); got != 3*v {
						errs <- errors.New("wrong answer: a buffer was reused while still in use")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Requests that fail once the server holds their input buffer: the
	// stream is cancelled midway, or its last chunk is too long.
	for range 4 {
		cctx, ccancel := context.WithCancel(ctx)
		stream, err := b.ex.RunModel(cctx)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 32<<10)
		for range 3 {
			if err := stream.Send(&securedexchange.RunModelRequest{ModelId: id, InputTensors: []*securedexchange.TensorData{{
				Info:      &securedexchange.TensorInfo{Dims: []int32{2, width}, DatumType: securedexchange.DatumTypeEnum(tensor.F32)},
				BytesData: chunk,
			}}}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond) // the server has taken the chunks
		ccancel()
	}
	stream, err := b.ex.RunModel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{4 * width, 4*width + 4} {
		if err := stream.Send(&securedexchange.RunModelRequest{ModelId: id, InputTensors: []*securedexchange.TensorData{{
			Info:      &securedexchange.TensorInfo{Dims: []int32{2, width}, DatumType: securedexchange.DatumTypeEnum(tensor.F32)},
			BytesData: make([]byte, n),
		}}}); err != nil {
			break
		}
	}
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("too many input bytes: %v, want InvalidArgument", err)
	}

	// gRPC gives a reply's buffers back once it has written them, which
	// may be just after the client has read the reply.
	deadline := time.Now().Add(10 * time.Second)
	for bufpool.Outstanding() != base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := bufpool.Outstanding(); n != base {
		t.Fatalf("%d tensor buffers not given back (of %d before)", n-base, base)
	}
}
