package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

func wantStatus(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("status %v (%v), want %v", status.Code(err), err, code)
	}
	if !strings.Contains(status.Convert(err).Message(), substr) {
		t.Fatalf("message %q does not say %q", status.Convert(err).Message(), substr)
	}
}

func f32(t *testing.T, shape []int64) tensor.Tensor {
	t.Helper()
	n, _ := tensor.NumElements(shape)
	x, err := tensor.New("x", shape, make([]float32, n))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestBadInputs sends each kind of bad request and checks its status and
// message, then checks that the server still serves a good request.
func TestBadInputs(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) {
		c.MaxModelBytes = 64 << 10
		c.MaxInputBytes = 4 << 10
		c.MaxModels = 3
	})
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	mlp := testserver.Model(t, "mlp.onnx")
	if _, _, _, err := b.upload(ctx, mlp, "mlp", false); err != nil {
		t.Fatal(err)
	}
	good := func(t *testing.T) {
		t.Helper()
		if _, _, _, err := b.run(ctx, "mlp", []tensor.Tensor{f32(t, []int64{2, 4})}, false); err != nil {
			t.Fatalf("server no longer serves a good request: %v", err)
		}
	}
	rawRun := func(reqs ...*securedexchange.RunModelRequest) error {
		stream, err := b.ex.RunModel(ctx)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if stream.Send(r) != nil {
				break
			}
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	tdata := func(idx int32, name string, dt tensor.DType, dims []int32, n int) *securedexchange.TensorData {
		return &securedexchange.TensorData{Info: &securedexchange.TensorInfo{Index: idx, IndexName: name, DatumType: securedexchange.DatumTypeEnum(dt), Dims: dims}, BytesData: make([]byte, n)}
	}
	big := make([]byte, 128<<10)
	copy(big, mlp)
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"garbage model", func() error {
			_, _, _, err := b.upload(ctx, []byte("this is not an onnx model at all"), "g", false)
			return err
		}, codes.InvalidArgument, "not a valid ONNX model"},
		{"truncated model", func() error { _, _, _, err := b.upload(ctx, mlp[:len(mlp)/2], "tr", false); return err }, codes.InvalidArgument, "not a valid ONNX model"},
		{"model over limit, counted", func() error {
			stream, err := b.ex.SendModel(ctx)
			if err != nil {
				return err
			}
			for off := 0; off < len(big); off += chunkSize {
				// declares a small length: the server must count what arrives
				if stream.Send(&securedexchange.SendModelRequest{Data: big[off : off+chunkSize], Length: 10, ModelId: "big"}) != nil {
					break
				}
			}
			_, err = stream.CloseAndRecv()
			return err
		}, codes.ResourceExhausted, "counted on the bytes received"},
		{"model over limit, declared", func() error {
			stream, _ := b.ex.SendModel(ctx)
			stream.Send(&securedexchange.SendModelRequest{Data: mlp, Length: 1 << 40, ModelId: "big2"})
			_, err := stream.CloseAndRecv()
			return err
		}, codes.ResourceExhausted, "max_model_bytes"},
		{"declared length differs", func() error {
			stream, _ := b.ex.SendModel(ctx)
			stream.Send(&securedexchange.SendModelRequest{Data: mlp, Length: uint64(len(mlp) + 5), ModelId: "short"})
			_, err := stream.CloseAndRecv()
			return err
		}, codes.InvalidArgument, "truncated"},
		{"empty upload", func() error { _, _, _, err := b.upload(ctx, nil, "empty", false); return err }, codes.InvalidArgument, "empty upload"},
		{"no chunks", func() error {
			stream, _ := b.ex.SendModel(ctx)
			_, err := stream.CloseAndRecv()
			return err
		}, codes.InvalidArgument, "empty upload"},
		{"duplicate id", func() error { _, _, _, err := b.upload(ctx, mlp, "mlp", false); return err }, codes.AlreadyExists, "already have a model"},
		{"bad id", func() error { _, _, _, err := b.upload(ctx, mlp, "bad\nid", false); return err }, codes.InvalidArgument, "not printable"},
		{"no inputs model", func() error {
			_, _, _, err := b.upload(ctx, testserver.Model(t, "noinputs.onnx"), "ni", false)
			return err
		}, codes.InvalidArgument, "no inputs"},
		{"unknown model run", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "nope", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{1, 4}, 16)}})
		}, codes.NotFound, `"nope"`},
		{"unknown model delete", func() error {
			_, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "nope"})
			return err
		}, codes.NotFound, `"nope"`},
		{"empty model id run", func() error { return rawRun(&securedexchange.RunModelRequest{}) }, codes.InvalidArgument, "model_id is empty"},
		{"no run chunks", func() error { return rawRun() }, codes.InvalidArgument, "empty request"},
		{"wrong dtype", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F64, []int32{1, 4}, 32)}})
		}, codes.InvalidArgument, "expected float32, got float64"},
		{"wrong rank", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{1, 4, 1}, 16)}})
		}, codes.InvalidArgument, "rank"},
		{"wrong shape", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{1, 5}, 20)}})
		}, codes.InvalidArgument, "dimension 1"},
		{"missing input", func() error { return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp"}) }, codes.InvalidArgument, `missing input "x"`},
		{"extra input", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{1, 4}, 16), tdata(1, "", tensor.F32, []int32{1, 4}, 16)}})
		}, codes.InvalidArgument, "out of range"},
		{"unknown input name", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "z", tensor.F32, []int32{1, 4}, 16)}})
		}, codes.InvalidArgument, `unknown input name "z"`},
		{"input over limit", func() error {
			var reqs []*securedexchange.RunModelRequest
			for i := 0; i < 8; i++ { // 8 chunks of 1 KiB of a 256x4 float32 (4 KiB) + more
				reqs = append(reqs, &securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{512, 4}, 1024)}})
			}
			return rawRun(reqs...)
		}, codes.ResourceExhausted, "max_input_bytes"},
		{"stream ends mid-tensor", func() error {
			return rawRun(&securedexchange.RunModelRequest{ModelId: "mlp", InputTensors: []*securedexchange.TensorData{tdata(0, "", tensor.F32, []int32{2, 4}, 20)}})
		}, codes.InvalidArgument, "mid-tensor"},
		{"too many models", func() error {
			for i := 0; i < 3; i++ {
				if _, _, _, err := b.upload(ctx, mlp, fmt.Sprintf("fill%d", i), false); err != nil {
					return err
				}
			}
			return nil
		}, codes.ResourceExhausted, "max_models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, tt.call(), tt.code, tt.msg)
			good(t)
		})
	}
}

// TestConcurrentClients runs 16 clients at once, each uploading, running
// and deleting its own models, and checks every result against the engine.
func TestConcurrentClients(t *testing.T) {
	ts := testserver.Start(t)
	models := []string{"mlp.onnx", "cnn.onnx", "multi.onnx", "identity_int64.onnx", "identity_bool.onnx", "half.onnx", "demo.onnx", "identity_float64.onnx"}
	type job struct {
		model  []byte
		inputs []tensor.Tensor
		want   []tensor.Tensor
	}
	jobs := map[string]job{}
	r := rand.New(rand.NewPCG(7, 8))
	for _, name := range models {
		m := testserver.Model(t, name)
		in := randomInputs(t, r, modelSpecs(t, ts.Runtime, m), 2)
		jobs[name] = job{m, in, direct(t, ts.Runtime, m, in)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := connectLikeBlindAI(t, ts)
			for round := 0; round < 3; round++ {
				name := models[(c+round)%len(models)]
				j := jobs[name]
				id := fmt.Sprintf("c%d-r%d-%s", c, round, name)
				if _, _, _, err := b.upload(ctx, j.model, id, round%2 == 0); err != nil {
					errs <- fmt.Errorf("%s: upload: %w", id, err)
					return
				}
				for k := 0; k < 3; k++ {
					run, _, _, err := b.run(ctx, id, j.inputs, k == 1)
					if err != nil {
						errs <- fmt.Errorf("%s: run: %w", id, err)
						return
					}
					for i, w := range j.want {
						if string(run.OutputTensors[i].BytesData) != string(w.Data) {
							errs <- fmt.Errorf("%s: output %q differs from the engine's", id, w.Name)
							return
						}
					}
				}
				if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: id}); err != nil {
					errs <- fmt.Errorf("%s: delete: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, used := ts.Server.Usage(); n != 0 || used != 0 {
		t.Fatalf("after all deletes the server holds %d models, %d bytes", n, used)
	}
}
