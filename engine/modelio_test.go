package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestInitializerDeclaredAsInput: a weight listed among the graph inputs
// (as older exporters write) is not an input the caller must send, and the
// model runs with the weight's value.
func TestInitializerDeclaredAsInput(t *testing.T) {
	g := onnxgen.NewGraph("init-as-input")
	g.Input("x", tensor.F32, onnxgen.Sym("n"), onnxgen.Fixed(2))
	g.Input("w", tensor.F32, onnxgen.Fixed(2))
	g.Floats("w", []int64{2}, []float32{10, 20})
	g.Output("y", tensor.F32, onnxgen.Sym("n"), onnxgen.Fixed(2))
	g.Node("Add", []string{"x", "w"}, []string{"y"})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Inputs()) != 1 || s.Inputs()[0].Name != "x" {
		t.Fatalf("inputs = %v, want only x", s.Inputs())
	}
	x := mustTensor(t, "x", []int64{1, 2}, []float32{1, 2})
	out, err := s.Run(context.Background(), []tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if v := values[float32](t, out[0]); v[0] != 11 || v[1] != 22 {
		t.Fatalf("y = %v, want [11 22]", v)
	}
}

func TestModelIOErrors(t *testing.T) {
	mlp := modelBytes(t, "mlp.onnx")
	for _, tt := range []struct {
		name  string
		model []byte
	}{
		{"garbage", []byte("definitely not protobuf \xff\xff")},
		{"truncated", mlp[:len(mlp)-7]},
		{"no graph", []byte{0x08, 0x08}}, // ir_version = 8, nothing else
	} {
		if _, err := runtimeOrSkip(t).Load(tt.model); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: Load = %v, want ErrInvalidModel", tt.name, err)
		}
	}
}
