package engine

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

func loadBytes(t *testing.T, model []byte) *Session {
	t.Helper()
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Empty tensors (a zero dimension) are legal ONNX and work both ways.
func TestEmptyTensors(t *testing.T) {
	cases, err := onnxgen.EmptyCases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			s := loadBytes(t, c.Model)
			out, err := s.Run(context.Background(), c.Inputs)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(out) != len(c.Outputs) {
				t.Fatalf("%d outputs, want %d", len(out), len(c.Outputs))
			}
			for i, o := range out {
				if !reflect.DeepEqual(o.Shape, c.Outputs[i]) {
					t.Errorf("output %d shape %v, want %v", i, o.Shape, c.Outputs[i])
				}
				if err := o.Validate(); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}

// expandModel returns y = Expand(x, [n]) with y declared static [n].
func expandModel(t *testing.T, d tensor.DType, n int64) []byte {
	t.Helper()
	g := onnxgen.NewGraph("expand")
	g.Input("x", d, onnxgen.Fixed(1))
	g.Output("y", d, onnxgen.Fixed(n))
	g.Int64s("shape", []int64{1}, []int64{n})
	g.Node("Expand", []string{"x", "shape"}, []string{"y"})
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Outputs whose size is known before the run are checked against the
// output cap, and against the memory the engine may allocate, before
// anything runs or is allocated: a 2^39-element float16 output (1 TiB)
// used to be allocated in Go and end the process.
func TestOutputCapsBeforeAllocation(t *testing.T) {
	one, _ := tensor.FromBits("x", tensor.F16, []int64{1}, []uint16{0x3C00})
	huge := loadBytes(t, expandModel(t, tensor.F16, 1<<39))
	for _, opts := range [][]RunOption{nil, {WithMaxOutputBytes(1 << 20)}} {
		_, err := huge.Run(context.Background(), []tensor.Tensor{one}, opts...)
		if !errors.Is(err, ErrOutputTooLarge) {
			t.Fatalf("2^39 float16 output with %d options: %v, want ErrOutputTooLarge", len(opts), err)
		}
	}
	// The same for every element type the engine allocates: a static
	// float32 output over the cap is refused before the run.
	f32 := loadBytes(t, expandModel(t, tensor.F32, 1<<20)) // 4 MiB
	x, _ := tensor.New("x", []int64{1}, []float32{2})
	if _, err := f32.Run(context.Background(), []tensor.Tensor{x}, WithMaxOutputBytes(1<<20)); !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("4 MiB output under a 1 MiB cap: %v, want ErrOutputTooLarge", err)
	}
	out, err := f32.Run(context.Background(), []tensor.Tensor{x}, WithMaxOutputBytes(4<<20))
	if err != nil {
		t.Fatalf("4 MiB output under a 4 MiB cap: %v", err)
	}
	if v, _ := tensor.Values[float32](out[0]); len(v) != 1<<20 || v[0] != 2 || v[len(v)-1] != 2 {
		t.Fatalf("output values wrong")
	}
}

// An output whose size only the run tells is checked when ONNX Runtime
// returns it, before it is handed on.
func TestOutputCapAfterRun(t *testing.T) {
	g := onnxgen.NewGraph("dynamic_expand")
	g.Input("shape", tensor.I64, onnxgen.Fixed(1))
	g.OutputUnranked("y", tensor.F32)
	one, _ := tensor.New("one", []int64{1}, []float32{1})
	g.Initializer(one)
	g.Node("Expand", []string{"one", "shape"}, []string{"y"})
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	dyn := loadBytes(t, m)
	shape := func(n int64) []tensor.Tensor {
		x, _ := tensor.New("shape", []int64{1}, []int64{n})
		return []tensor.Tensor{x}
	}
	if _, err := dyn.Run(context.Background(), shape(1<<20), WithMaxOutputBytes(1<<20)); !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("4 MiB dynamic output under a 1 MiB cap: %v, want ErrOutputTooLarge", err)
	}
	out, err := dyn.Run(context.Background(), shape(1<<10), WithMaxOutputBytes(1<<20))
	if err != nil || len(out[0].Data) != 4<<10 {
		t.Fatalf("4 KiB dynamic output under a 1 MiB cap: %v", err)
	}
}
