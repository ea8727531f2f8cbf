package engine

import (
	"context"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

var (
	rtOnce sync.Once
	rtVal  *Runtime
	rtErr  error
)

// runtimeOrSkip opens the shared runtime, or skips the test when the ONNX
// Runtime library is not installed.
func runtimeOrSkip(tb testing.TB) *Runtime {
	tb.Helper()
	if _, err := FindLibrary(""); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			tb.Fatalf("skipping: the ONNX Runtime library is not installed (%v)", err)
		}
		tb.Skipf("skipping: the ONNX Runtime library is not installed (%v)", err)
	}
	rtOnce.Do(func() { rtVal, rtErr = Open(Options{IntraOpThreads: 1}) })
	if rtErr != nil {
		tb.Fatalf("Open: %v", rtErr)
	}
	return rtVal
}

func modelBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	build, ok := onnxgen.Models()[name]
	if !ok {
		tb.Fatalf("no model %s", name)
	}
	b, err := build()
	if err != nil {
		tb.Fatalf("building %s: %v", name, err)
	}
	return b
}

func load(tb testing.TB, name string) *Session {
	tb.Helper()
	s, err := runtimeOrSkip(tb).Load(modelBytes(tb, name))
	if err != nil {
		tb.Fatalf("Load(%s): %v", name, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustTensor[T tensor.Element](tb testing.TB, name string, shape []int64, v []T) tensor.Tensor {
	tb.Helper()
	t, err := tensor.New(name, shape, v)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func values[T tensor.Element](tb testing.TB, t tensor.Tensor) []T {
	tb.Helper()
	v, err := tensor.Values[T](t)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func spec(name string, d tensor.DType, shape ...int64) TensorSpec {
	if shape == nil {
		shape = []int64{}
	}
	return TensorSpec{Name: name, DType: d, Shape: shape}
}

func TestOpenVersion(t *testing.T) {
	r := runtimeOrSkip(t)
	if v := r.Version(); !strings.HasPrefix(v, "1.") {
		t.Errorf("Version() = %q", v)
	}
	again, err := Open(Options{LibraryPath: r.LibraryPath()})
	if err != nil {
		t.Fatalf("second Open with the same library: %v", err)
	}
	if again.Version() != r.Version() {
		t.Error("versions differ")
	}
	if _, err := Open(Options{LibraryPath: "/nonexistent/libonnxruntime.so.1"}); !errors.Is(err, ErrLibraryNotFound) {
		t.Errorf("Open with a missing library: %v", err)
	}
}

func TestFindLibrary(t *testing.T) {
	if _, err := FindLibrary("/nonexistent/lib.so"); !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "/nonexistent/lib.so") {
		t.Errorf("explicit missing path: %v", err)
	}
	t.Setenv(LibraryEnv, "/nonexistent/env.so")
	if _, err := FindLibrary(""); err == nil || !strings.Contains(err.Error(), LibraryEnv) {
		t.Errorf("missing $%s: %v", LibraryEnv, err)
	}
	t.Setenv(LibraryEnv, "")
	t.Chdir(t.TempDir())
	p, err := FindLibrary("")
	if err != nil {
		if !strings.Contains(err.Error(), "setup-onnxruntime.sh") || !strings.Contains(err.Error(), SystemLibraryPath) {
			t.Errorf("error does not say where it looked or how to fix it: %v", err)
		}
	} else if !strings.HasSuffix(p, LibraryName) {
		t.Errorf("FindLibrary = %q", p)
	}
}

func TestLoadSpecs(t *testing.T) {
	f32, f16 := tensor.F32, tensor.F16
	cases := []struct {
		model   string
		inputs  []TensorSpec
		outputs []TensorSpec
	}{
		{"mlp.onnx", []TensorSpec{spec("x", f32, -1, 4)}, []TensorSpec{spec("y", f32, -1, 3)}},
		{"cnn.onnx", []TensorSpec{spec("image", f32, -1, 1, 8, 8)}, []TensorSpec{spec("logits", f32, -1, 10)}},
		{"multi.onnx",
			[]TensorSpec{spec("a", f32, 2, 3), spec("b", tensor.I64, 3), spec("mask", tensor.Bool, 2, 3)},
			[]TensorSpec{spec("where", f32, 2, 3), spec("b32", tensor.I32, 3), spec("notmask", tensor.Bool, 2, 3), spec("total", tensor.F64)}},
		{"scalar.onnx", []TensorSpec{spec("x", f32, -1)}, []TensorSpec{spec("sum", f32)}},
		{"half.onnx", []TensorSpec{spec("x", f32, 2, 2)}, []TensorSpec{spec("h", f16, 2, 2)}},
		{"demo.onnx", []TensorSpec{spec("features", f32, -1, 4)}, []TensorSpec{spec("probabilities", f32, -1, 3)}},
	}
	for _, d := range tensor.DTypes() {
		cases = append(cases, struct {
			model   string
			inputs  []TensorSpec
			outputs []TensorSpec
		}{onnxgen.IdentityFile(d), []TensorSpec{spec("x", d, -1, 3)}, []TensorSpec{spec("y", d, -1, 3)}})
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			s := load(t, c.model)
			if got := s.Inputs(); !reflect.DeepEqual(got, c.inputs) {
				t.Errorf("Inputs() = %v, want %v", got, c.inputs)
			}
			if got := s.Outputs(); !reflect.DeepEqual(got, c.outputs) {
				t.Errorf("Outputs() = %v, want %v", got, c.outputs)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	r := runtimeOrSkip(t)
	mlp := modelBytes(t, "mlp.onnx")
	cases := []struct {
		name  string
		model []byte
		want  error
	}{
		{"noinputs", modelBytes(t, "noinputs.onnx"), ErrNoInputs},
		{"garbage", []byte("this is not an onnx model at all \x00\x01\x02\xff"), ErrInvalidModel},
		{"truncated", mlp[:len(mlp)/2], ErrInvalidModel},
		{"empty", nil, ErrInvalidModel},
		{"rank-0 float16 output", buildHalfScalar(t), ErrUnsupportedModel},
		{"float16 output with unnamed dynamic dim", buildHalfUnnamed(t), ErrUnsupportedModel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := r.Load(c.model)
			if err == nil {
				s.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Load error %q is not %v", err, c.want)
			}
		})
	}
}

func buildHalfScalar(t *testing.T) []byte {
	g := onnxgen.NewGraph("half_scalar")
	g.Input("x", tensor.F32)
	g.Output("h", tensor.F16)
	g.Node("Cast", []string{"x"}, []string{"h"}, onnxgen.AttrInt("to", 10))
	b, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildHalfUnnamed(t *testing.T) []byte {
	g := onnxgen.NewGraph("half_unnamed")
	g.Input("x", tensor.F32, onnxgen.Sym("n"))
	g.Output("h", tensor.F16, onnxgen.Sym("m"))
	g.Node("Cast", []string{"x"}, []string{"h"}, onnxgen.AttrInt("to", 10))
	b, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func close32(a, b float32) bool {
	return math.Abs(float64(a-b)) <= 1e-5+1e-5*math.Abs(float64(b))
}

func TestMLPMatchesReference(t *testing.T) {
	s := load(t, "mlp.onnx")
	p := onnxgen.MLPWeights()
	r := onnxgen.NewRand(99)
	for _, batch := range []int{1, 5} {
		x := r.Weights(batch*4, 3)
		out, err := s.Run(context.Background(), []tensor.Tensor{mustTensor(t, "x", []int64{int64(batch), 4}, x)})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if len(out) != 1 || out[0].Name != "y" || out[0].DType != tensor.F32 || !reflect.DeepEqual(out[0].Shape, []int64{int64(batch), 3}) {
			t.Fatalf("batch %d: output %s %s %v", batch, out[0].Name, out[0].DType, out[0].Shape)
		}
		got, want := values[float32](t, out[0]), p.Forward(x, batch)
		for i := range want {
			if !close32(got[i], want[i]) {
				t.Errorf("batch %d: y[%d] = %v, want %v", batch, i, got[i], want[i])
			}
		}
	}
}

func TestCNN(t *testing.T) {
	s := load(t, "cnn.onnx")
	r := onnxgen.NewRand(5)
	imgs := r.Weights(3*64, 1)
	run := func(n int, x []float32) []float32 {
		out, err := s.Run(context.Background(), []tensor.Tensor{mustTensor(t, "image", []int64{int64(n), 1, 8, 8}, x)})
		if err != nil {
			t.Fatalf("N=%d: %v", n, err)
		}
		if !reflect.DeepEqual(out[0].Shape, []int64{int64(n), 10}) {
			t.Fatalf("N=%d: shape %v", n, out[0].Shape)
		}
		return values[float32](t, out[0])
	}
	all := run(3, imgs)
	for i := 0; i < 3; i++ {
		one := run(1, imgs[i*64:(i+1)*64])
		for k := 0; k < 10; k++ {
			if math.IsNaN(float64(one[k])) || !close32(one[k], all[i*10+k]) {
				t.Errorf("image %d logit %d: alone %v, in batch %v", i, k, one[k], all[i*10+k])
			}
		}
	}
}

func TestMulti(t *testing.T) {
	s := load(t, "multi.onnx")
	a := []float32{1, -2, 3.5, 4, 5, -6.25}
	mask := []bool{true, false, true, false, false, true}
	out, err := s.Run(context.Background(), []tensor.Tensor{
		mustTensor(t, "a", []int64{2, 3}, a),
		mustTensor(t, "b", []int64{3}, []int64{7, -8, 1 << 40}),
		mustTensor(t, "", []int64{2, 3}, mask),
	})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"where", "b32", "notmask", "total"}
	for i, o := range out {
		if o.Name != names[i] {
			t.Errorf("output %d is %q, want %q", i, o.Name, names[i])
		}
	}
	if got := values[float32](t, out[0]); !reflect.DeepEqual(got, []float32{1, 0, 3.5, 0, 0, -6.25}) {
		t.Errorf("where = %v", got)
	}
	if got := values[int32](t, out[1]); !reflect.DeepEqual(got, []int32{7, -8, 0}) {
		t.Errorf("b32 = %v", got)
	}
	if got := values[bool](t, out[2]); !reflect.DeepEqual(got, []bool{false, true, false, true, true, false}) {
		t.Errorf("notmask = %v", got)
	}
	if len(out[3].Shape) != 0 || out[3].DType != tensor.F64 {
		t.Errorf("total: %s %v", out[3].DType, out[3].Shape)
	}
	if got := values[float64](t, out[3]); !reflect.DeepEqual(got, []float64{5.25}) {
		t.Errorf("total = %v", got)
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	for _, d := range tensor.DTypes() {
		t.Run(d.String(), func(t *testing.T) {
			s := load(t, onnxgen.IdentityFile(d))
			r := onnxgen.NewRand(uint64(d) + 10)
			for _, n := range []int64{1, 4} {
				data := make([]byte, n*3*int64(d.Size()))
				for i := range data {
					data[i] = byte(r.Uint64())
					if d == tensor.Bool {
						data[i] &= 1
					}
				}
				in := tensor.Tensor{Name: "x", DType: d, Shape: []int64{n, 3}, Data: data}
				want := append([]byte(nil), data...)
				out, err := s.Run(context.Background(), []tensor.Tensor{in})
				if err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				y := out[0]
				if y.Name != "y" || y.DType != d || !reflect.DeepEqual(y.Shape, []int64{n, 3}) {
					t.Fatalf("n=%d: output %s %s %v", n, y.Name, y.DType, y.Shape)
				}
				if string(y.Data) != string(want) {
					t.Fatalf("n=%d: output bytes differ from input", n)
				}
				for i := range data { // the output must not alias the input
					data[i] ^= 1
				}
				if string(y.Data) != string(want) {
					t.Fatalf("n=%d: output shares memory with the input", n)
				}
			}
		})
	}
}

func TestScalarOutput(t *testing.T) {
	s := load(t, "scalar.onnx")
	out, err := s.Run(context.Background(), []tensor.Tensor{mustTensor(t, "x", []int64{3}, []float32{1, 2, 3.5})})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Name != "sum" || len(out[0].Shape) != 0 || out[0].Shape == nil {
		t.Fatalf("output %q shape %#v", out[0].Name, out[0].Shape)
	}
	if got := values[float32](t, out[0]); !reflect.DeepEqual(got, []float32{6.5}) {
		t.Errorf("sum = %v", got)
	}
}

func TestScalarInput(t *testing.T) {
	g := onnxgen.NewGraph("scalar_in")
	g.Input("x", tensor.I64)
	g.Input("flag", tensor.Bool)
	g.Output("y", tensor.I64)
	g.Output("nflag", tensor.Bool)
	g.Node("Neg", []string{"x"}, []string{"y"})
	g.Node("Not", []string{"flag"}, []string{"nflag"})
	b, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(b)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), []tensor.Tensor{
		mustTensor(t, "x", []int64{}, []int64{-42}),
		mustTensor(t, "flag", []int64{}, []bool{true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := values[int64](t, out[0]); got[0] != 42 {
		t.Errorf("y = %v", got)
	}
	if got := values[bool](t, out[1]); got[0] {
		t.Errorf("nflag = %v", got)
	}
}

func TestHalfOutput(t *testing.T) {
	s := load(t, "half.onnx")
	out, err := s.Run(context.Background(), []tensor.Tensor{mustTensor(t, "x", []int64{2, 2}, []float32{1, -2, 0.5, 65504})})
	if err != nil {
		t.Fatal(err)
	}
	h := out[0]
	if h.Name != "h" || h.DType != tensor.F16 || !reflect.DeepEqual(h.Shape, []int64{2, 2}) {
		t.Fatalf("output %s %s %v", h.Name, h.DType, h.Shape)
	}
	if got := values[uint16](t, h); !reflect.DeepEqual(got, []uint16{0x3C00, 0xC000, 0x3800, 0x7BFF}) {
		t.Errorf("h bits = %#04x", got)
	}
}

func TestCheckInputs(t *testing.T) {
	mlp := load(t, "mlp.onnx")
	multi := load(t, "multi.onnx")
	x := mustTensor(t, "x", []int64{2, 4}, make([]float32, 8))
	a := mustTensor(t, "a", []int64{2, 3}, make([]float32, 6))
	b := mustTensor(t, "b", []int64{3}, make([]int64, 3))
	mask := mustTensor(t, "mask", []int64{2, 3}, make([]bool, 6))
	with := func(t tensor.Tensor, f func(*tensor.Tensor)) tensor.Tensor {
		t.Shape = append([]int64{}, t.Shape...)
		f(&t)
		return t
	}
	cases := []struct {
		name   string
		s      *Session
		in     []tensor.Tensor
		input  string // "" = no error expected, "-" = error without an input name
		reason string
	}{
		{"ok", mlp, []tensor.Tensor{x}, "", ""},
		{"ok unnamed", mlp, []tensor.Tensor{with(x, func(t *tensor.Tensor) { t.Name = "" })}, "", ""},
		{"ok multi", multi, []tensor.Tensor{a, b, mask}, "", ""},
		{"wrong dtype", mlp, []tensor.Tensor{mustTensor(t, "x", []int64{2, 4}, make([]int64, 8))}, "x", "expected float32, got int64"},
		{"wrong rank", mlp, []tensor.Tensor{mustTensor(t, "x", []int64{1, 2, 4}, make([]float32, 8))}, "x", "expected rank 2, got 3"},
		{"wrong static dim", mlp, []tensor.Tensor{mustTensor(t, "x", []int64{2, 5}, make([]float32, 10))}, "x", "dimension 1 must be 4, got 5"},
		{"empty dim", mlp, []tensor.Tensor{{Name: "x", DType: tensor.F32, Shape: []int64{0, 4}, Data: []byte{}}}, "", ""},
		{"empty dim with data", mlp, []tensor.Tensor{{Name: "x", DType: tensor.F32, Shape: []int64{0, 4}, Data: []byte{1}}}, "x", "needs 0 bytes of data, got 1"},
		{"negative dim", mlp, []tensor.Tensor{with(x, func(t *tensor.Tensor) { t.Shape[0] = -2 })}, "x", "dimension 0 is negative"},
		{"short data", mlp, []tensor.Tensor{with(x, func(t *tensor.Tensor) { t.Data = t.Data[:31] })}, "x", "needs 32 bytes of data, got 31"},
		{"long data", mlp, []tensor.Tensor{with(x, func(t *tensor.Tensor) { t.Data = append(t.Data, 0) })}, "x", "got 33"},
		{"missing", multi, []tensor.Tensor{a, b}, "mask", "missing"},
		{"none", mlp, nil, "x", "missing"},
		{"extra", multi, []tensor.Tensor{a, b, mask, x}, "-", "expected 3 inputs, got 4"},
		{"wrong order", multi, []tensor.Tensor{b, a, mask}, "a", `named "b"`},
		{"bad dtype", mlp, []tensor.Tensor{with(x, func(t *tensor.Tensor) { t.DType = 99 })}, "x", "expected float32, got dtype(99)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.CheckInputs(c.in)
			if c.input == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not an *InputError", err)
			}
			if want := strings.TrimPrefix(c.input, "-"); ie.Input != want {
				t.Errorf("Input = %q, want %q", ie.Input, want)
			}
			if !strings.Contains(ie.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ie.Reason, c.reason)
			}
			if c.input != "-" && !strings.HasPrefix(err.Error(), `input "`+c.input+`": `) {
				t.Errorf("Error() = %q", err.Error())
			}
			// Run applies the same checks.
			if _, rerr := c.s.Run(context.Background(), c.in); !errors.As(rerr, &ie) {
				t.Errorf("Run error %v is not an *InputError", rerr)
			}
		})
	}
}

func TestRunError(t *testing.T) {
	g := onnxgen.NewGraph("add")
	g.Input("a", tensor.F32, onnxgen.Sym("n"))
	g.Input("b", tensor.F32, onnxgen.Sym("m"))
	g.Output("c", tensor.F32, onnxgen.Sym("k"))
	g.Node("Add", []string{"a", "b"}, []string{"c"})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Run(context.Background(), []tensor.Tensor{
		mustTensor(t, "a", []int64{2}, []float32{1, 2}),
		mustTensor(t, "b", []int64{3}, []float32{1, 2, 3}),
	})
	if !errors.Is(err, ErrRun) {
		t.Fatalf("Run with shapes that do not broadcast: %v", err)
	}
	out, err := s.Run(context.Background(), []tensor.Tensor{
		mustTensor(t, "a", []int64{2}, []float32{1, 2}),
		mustTensor(t, "b", []int64{1}, []float32{10}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := values[float32](t, out[0]); !reflect.DeepEqual(got, []float32{11, 12}) {
		t.Errorf("c = %v", got)
	}
}

func TestHalfDynamicOutput(t *testing.T) {
	// identity_float16 has output y float16 [n,3]: the engine sizes it from
	// input x's dimension n.
	s := load(t, onnxgen.IdentityFile(tensor.BF16))
	in, _ := tensor.FromBits("x", tensor.BF16, []int64{2, 3}, []uint16{1, 2, 3, 0x7fc0, 0xff80, 0x3f80})
	out, err := s.Run(context.Background(), []tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out[0].Shape, []int64{2, 3}) || string(out[0].Data) != string(in.Data) {
		t.Errorf("y = %v %x", out[0].Shape, out[0].Data)
	}
}

func TestConcurrentRuns(t *testing.T) {
	s := load(t, "mlp.onnx")
	p := onnxgen.MLPWeights()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := onnxgen.NewRand(uint64(1000 + g))
			for i := 0; i < 20; i++ {
				batch := 1 + (g+i)%4
				x := r.Weights(batch*4, 2)
				in, _ := tensor.New("x", []int64{int64(batch), 4}, x)
				out, err := s.Run(context.Background(), []tensor.Tensor{in})
				if err != nil {
					errs <- err
					return
				}
				got, _ := tensor.Values[float32](out[0])
				want := p.Forward(x, batch)
				for k := range want {
					if !close32(got[k], want[k]) {
						errs <- errors.New("wrong output under concurrency")
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancelledContext(t *testing.T) {
	s := load(t, "mlp.onnx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := mustTensor(t, "x", []int64{1, 4}, make([]float32, 4))
	if _, err := s.Run(ctx, []tensor.Tensor{x}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := s.Run(ctx, []tensor.Tensor{x}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with an expired context: %v", err)
	}
	// A live context with a deadline works (and exercises RunOptions).
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Run(ctx, []tensor.Tensor{x}); err != nil {
		t.Errorf("Run with a live context: %v", err)
	}
}

func TestCancelDuringRun(t *testing.T) {
	// A model slow enough to be cancelled mid-run: repeated large MatMuls.
	const n = 512
	model, err := onnxgen.Slow(n, 5000) // seconds of work on any CPU of today
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := mustTensor(t, "x", []int64{n, n}, make([]float32, n*n))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Run(ctx, []tensor.Tensor{x})
	if err == nil {
		t.Fatalf("the run finished in %v, ignoring its 20 ms deadline", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("stopped after %v", time.Since(start))
}

func TestClose(t *testing.T) {
	s, err := runtimeOrSkip(t).Load(modelBytes(t, "mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	x := mustTensor(t, "x", []int64{1, 4}, make([]float32, 4))
	if _, err := s.Run(context.Background(), []tensor.Tensor{x}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestCommittedModelFilesLoad(t *testing.T) {
	r := runtimeOrSkip(t)
	for _, name := range onnxgen.ModelNames() {
		if name == "noinputs.onnx" {
			continue
		}
		b := readModelFile(t, name)
		s, err := r.Load(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s.Close()
	}
}

func BenchmarkRunMLP(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(map[int]string{1: "batch1", 64: "batch64"}[batch], func(b *testing.B) {
			s := load(b, "mlp.onnx")
			x := mustTensor(b, "x", []int64{int64(batch), 4}, onnxgen.NewRand(1).Weights(batch*4, 1))
			in := []tensor.Tensor{x}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRunMLPParallel(b *testing.B) {
	s := load(b, "mlp.onnx")
	x := mustTensor(b, "x", []int64{8, 4}, onnxgen.NewRand(1).Weights(32, 1))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Run(context.Background(), []tensor.Tensor{x}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestUnknownRank(t *testing.T) {
	g := onnxgen.NewGraph("unranked")
	g.InputUnranked("x", tensor.F32)
	g.OutputUnranked("y", tensor.F32)
	g.Node("Relu", []string{"x"}, []string{"y"})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if in := s.Inputs(); in[0].Shape != nil || in[0].String() != "x float32[...]" {
		t.Errorf("input spec %v (shape %#v)", in[0], in[0].Shape)
	}
	if out := s.Outputs(); out[0].Shape != nil {
		t.Errorf("output spec %v", out[0])
	}
	for _, shape := range [][]int64{{2, 2}, {4}, {1, 1, 1, 4}} {
		out, err := s.Run(context.Background(), []tensor.Tensor{mustTensor(t, "x", shape, []float32{-1, 2, -3, 4})})
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !reflect.DeepEqual(out[0].Shape, shape) || !reflect.DeepEqual(values[float32](t, out[0]), []float32{0, 2, 0, 4}) {
			t.Errorf("shape %v: got %v %v", shape, out[0].Shape, values[float32](t, out[0]))
		}
	}
}

func TestUnsupportedElementType(t *testing.T) {
	g := onnxgen.NewGraph("strings")
	g.Input("words", tensor.F32, onnxgen.Dims(2)...)
	g.Output("same", tensor.F32, onnxgen.Dims(2)...)
	g.Node("Identity", []string{"words"}, []string{"same"})
	m, err := g.Proto()
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range append(m.Graph.Input, m.Graph.Output...) {
		*vi.Type.GetTensorType().ElemType = int32(onnxpb.TensorProto_STRING)
	}
	model, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runtimeOrSkip(t).Load(model)
	if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `"words"`) || !strings.Contains(err.Error(), "string") {
		t.Fatalf("Load of a string-tensor model: %v", err)
	}
}

// TestPooledOutputs: with WithPooledOutputs a static output comes from
// bufpool and stays counted until given back; a run that fails gives its
// output buffers back itself; without the option the pool is not used.
func TestPooledOutputs(t *testing.T) {
	const n = 512 // a 1 MiB output
	model, err := onnxgen.Slow(n, 5000)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtimeOrSkip(t).Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := mustTensor(t, "x", []int64{n, n}, make([]float32, n*n))
	base := bufpool.Outstanding()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Run(ctx, []tensor.Tensor{x}, WithPooledOutputs()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want the deadline", err)
	}
	if got := bufpool.Outstanding(); got != base {
		t.Fatalf("a failed run left %d output buffers out", got-base)
	}

	quick, err := onnxgen.Slow(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	q, err := runtimeOrSkip(t).Load(quick)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out, err := q.Run(context.Background(), []tensor.Tensor{x}, WithPooledOutputs())
	if err != nil {
		t.Fatal(err)
	}
	if got := bufpool.Outstanding(); got != base+1 || len(out[0].Data) != 4*n*n {
		t.Fatalf("outstanding %d (want %d), output %d bytes", got, base+1, len(out[0].Data))
	}
	bufpool.Put(out[0].Data)
	if _, err := q.Run(context.Background(), []tensor.Tensor{x}); err != nil {
		t.Fatal(err)
	}
	if got := bufpool.Outstanding(); got != base {
		t.Fatalf("outstanding %d after giving back and a run without the pool, want %d", got, base)
	}
}
