package bench

import (
	"context"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Microbenchmarks for benchstat: the engine alone against the full path
// through the in-process test server, on small models. See
// docs/benchmarks.md.

type microModel struct {
	name   string
	model  func() ([]byte, error)
	inputs func() ([]tensor.Tensor, error)
}

var microModels = []microModel{
	{"MLP", onnxgen.MLP, func() ([]tensor.Tensor, error) {
		return randomInputs(1, floatInput("x", 1, onnxgen.MLPIn))
	}},
}

func init() {
	// The second model: the small CNN of the test suite.
	microModels = append(microModels, microModel{name: "CNN", model: onnxgen.CNN, inputs: func() ([]tensor.Tensor, error) {
		return randomInputs(2, floatInput("image", 1, 1, 8, 8))
	}})
	// A small encoder (2 layers, width 128, sequence 32).
	small := EncoderConfig{Layers: 2, Hidden: 128, Heads: 4, FF: 512, Vocab: 1000, MaxPos: 64, Seq: 32, Seed: 3}
	microModels = append(microModels, microModel{name: "Encoder", model: func() ([]byte, error) { return Encoder(small) },
		inputs: func() ([]tensor.Tensor, error) { return EncoderInputs(small, 1) }})
}

func prepare(b *testing.B, mm microModel) ([]byte, []tensor.Tensor) {
	b.Helper()
	model, err := mm.model()
	if err != nil {
		b.Fatal(err)
	}
	in, err := mm.inputs()
	if err != nil {
		b.Fatal(err)
	}
	return model, in
}

func BenchmarkEngine(b *testing.B) {
	rt := openRuntime(b)
	for _, mm := range microModels {
		b.Run(mm.name, func(b *testing.B) {
			model, in := prepare(b, mm)
			s, err := rt.Load(model)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchFullPath(b *testing.B, opts ...client.RunOption) {
	srv := testserver.Start(b)
	ctx := context.Background()
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithSimulation(), client.WithHostCertificateFile(srv.HostCertPEM),
		client.WithAttestedPort(port), client.WithLogger(quietLog))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, mm := range microModels {
		b.Run(mm.name, func(b *testing.B) {
			model, in := prepare(b, mm)
			up, err := c.UploadModel(ctx, model)
			if err != nil {
				b.Fatal(err)
			}
			defer c.DeleteModel(ctx, up.ModelID)
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Run(ctx, up.ModelID, in, opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFullPath(b *testing.B)       { benchFullPath(b) }
func BenchmarkFullPathSigned(b *testing.B) { benchFullPath(b, client.Sign()) }

func BenchmarkSummarize(b *testing.B) {
	d := make([]time.Duration, 2000)
	for i := range d {
		d[i] = time.Duration(i*7919%2000) * time.Microsecond
	}
	for b.Loop() {
		Summarize(d)
	}
}
