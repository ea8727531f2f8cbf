package onnxgen

import (
	"fmt"
	"sort"

	"github.com/blindfold-ai/blindfold/tensor"
)

// MLPParams are the weights of mlp.onnx: y = relu(x·W1 + B1)·W2 + B2, with
// W1 [4,16], B1 [16], W2 [16,3], B2 [3], all row-major.
type MLPParams struct {
	W1, B1, W2, B2 []float32
}

// MLP layer sizes.
const (
	MLPIn     = 4
	MLPHidden = 16
	MLPOut    = 3
)

// MLPWeights returns the weights baked into mlp.onnx.
func MLPWeights() MLPParams {
	r := NewRand(1)
	return MLPParams{
		W1: r.Weights(MLPIn*MLPHidden, 1),
		B1: r.Weights(MLPHidden, 0.5),
		W2: r.Weights(MLPHidden*MLPOut, 1),
		B2: r.Weights(MLPOut, 0.5),
	}
}

// Forward computes the MLP in pure Go for a row-major [batch,4] input and
// returns the row-major [batch,3] output.
func (p MLPParams) Forward(x []float32, batch int) []float32 {
	y := make([]float32, batch*MLPOut)
	h := make([]float32, MLPHidden)
	for b := 0; b < batch; b++ {
		for j := 0; j < MLPHidden; j++ {
			s := float32(0)
			for i := 0; i < MLPIn; i++ {
				s += x[b*MLPIn+i] * p.W1[i*MLPHidden+j]
			}
			s += p.B1[j]
			if s < 0 {
				s = 0
			}
			h[j] = s
		}
		for k := 0; k < MLPOut; k++ {
			s := float32(0)
			for j := 0; j < MLPHidden; j++ {
				s += h[j] * p.W2[j*MLPOut+k]
			}
			y[b*MLPOut+k] = s + p.B2[k]
		}
	}
	return y
}

// MLP returns mlp.onnx: input "x" float32 [batch,4], output "y" float32
// [batch,3], computing MatMul+Add+Relu (4->16) then MatMul+Add (16->3).
func MLP() ([]byte, error) {
	p := MLPWeights()
	g := NewGraph("mlp")
	g.Input("x", tensor.F32, Sym("batch"), Fixed(MLPIn))
	g.Output("y", tensor.F32, Sym("batch"), Fixed(MLPOut))
	g.Floats("W1", []int64{MLPIn, MLPHidden}, p.W1)
	g.Floats("B1", []int64{MLPHidden}, p.B1)
	g.Floats("W2", []int64{MLPHidden, MLPOut}, p.W2)
	g.Floats("B2", []int64{MLPOut}, p.B2)
	g.Node("MatMul", []string{"x", "W1"}, []string{"h0"})
	g.Node("Add", []string{"h0", "B1"}, []string{"h1"})
	g.Node("Relu", []string{"h1"}, []string{"h2"})
	g.Node("MatMul", []string{"h2", "W2"}, []string{"h3"})
	g.Node("Add", []string{"h3", "B2"}, []string{"y"})
	return g.Model()
}

// CNN returns cnn.onnx: input "image" float32 [N,1,8,8]; Conv (4 filters
// 3x3, pad 1) + Relu + MaxPool 2x2 + Flatten + Gemm; output "logits"
// float32 [N,10].
func CNN() ([]byte, error) {
	r := NewRand(2)
	g := NewGraph("cnn")
	g.Input("image", tensor.F32, Sym("N"), Fixed(1), Fixed(8), Fixed(8))
	g.Output("logits", tensor.F32, Sym("N"), Fixed(10))
	g.Floats("conv_w", []int64{4, 1, 3, 3}, r.Weights(4*9, 0.5))
	g.Floats("conv_b", []int64{4}, r.Weights(4, 0.25))
	g.Floats("fc_w", []int64{64, 10}, r.Weights(64*10, 0.25))
	g.Floats("fc_b", []int64{10}, r.Weights(10, 0.25))
	g.Node("Conv", []string{"image", "conv_w", "conv_b"}, []string{"conv"},
		AttrInts("kernel_shape", 3, 3), AttrInts("pads", 1, 1, 1, 1))
	g.Node("Relu", []string{"conv"}, []string{"relu"})
	g.Node("MaxPool", []string{"relu"}, []string{"pool"},
		AttrInts("kernel_shape", 2, 2), AttrInts("strides", 2, 2))
	g.Node("Flatten", []string{"pool"}, []string{"flat"}, AttrInt("axis", 1))
	g.Node("Gemm", []string{"flat", "fc_w", "fc_b"}, []string{"logits"})
	return g.Model()
}

// Multi returns multi.onnx, with inputs "a" float32 [2,3], "b" int64 [3]
// and "mask" bool [2,3], and outputs (in this order):
//
//	"where"   float32 [2,3] = mask ? a : 0
//	"b32"     int32 [3]     = int32(b)
//	"notmask" bool [2,3]    = !mask
//	"total"   float64 []    = float64(sum of a)  (rank 0)
func Multi() ([]byte, error) {
	g := NewGraph("multi")
	g.Input("a", tensor.F32, Dims(2, 3)...)
	g.Input("b", tensor.I64, Dims(3)...)
	g.Input("mask", tensor.Bool, Dims(2, 3)...)
	g.Output("where", tensor.F32, Dims(2, 3)...)
	g.Output("b32", tensor.I32, Dims(3)...)
	g.Output("notmask", tensor.Bool, Dims(2, 3)...)
	g.Output("total", tensor.F64)
	g.Floats("zero", []int64{}, []float32{0})
	g.Node("Where", []string{"mask", "a", "zero"}, []string{"where"})
	g.Node("Cast", []string{"b"}, []string{"b32"}, AttrInt("to", 6)) // INT32
	g.Node("Not", []string{"mask"}, []string{"notmask"})
	g.Node("ReduceSum", []string{"a"}, []string{"sum"}, AttrInt("keepdims", 0))
	g.Node("Cast", []string{"sum"}, []string{"total"}, AttrInt("to", 11)) // DOUBLE
	return g.Model()
}

// Identity returns identity_<dtype>.onnx: input "x" of type d with shape
// [n,3] (n dynamic), output "y" = x.
func Identity(d tensor.DType) ([]byte, error) {
	g := NewGraph("identity_" + d.String())
	g.Input("x", d, Sym("n"), Fixed(3))
	g.Output("y", d, Sym("n"), Fixed(3))
	g.Node("Identity", []string{"x"}, []string{"y"})
	return g.Model()
}

// Scalar returns scalar.onnx: input "x" float32 [n] -> output "sum"
// float32 of rank 0 (ReduceSum, keepdims 0).
func Scalar() ([]byte, error) {
	g := NewGraph("scalar")
	g.Input("x", tensor.F32, Sym("n"))
	g.Output("sum", tensor.F32)
	g.Node("ReduceSum", []string{"x"}, []string{"sum"}, AttrInt("keepdims", 0))
	return g.Model()
}

// Half returns half.onnx: input "x" float32 [2,2] -> output "h" float16
// [2,2] (Cast).
func Half() ([]byte, error) {
	g := NewGraph("half")
	g.Input("x", tensor.F32, Dims(2, 2)...)
	g.Output("h", tensor.F16, Dims(2, 2)...)
	g.Node("Cast", []string{"x"}, []string{"h"}, AttrInt("to", 10)) // FLOAT16
	return g.Model()
}

// NoInputs returns noinputs.onnx: no inputs; a Constant node produces
// output "c" float32 [3] = {1, 2, 3}.
func NoInputs() ([]byte, error) {
	g := NewGraph("noinputs")
	g.Output("c", tensor.F32, Dims(3)...)
	v, err := tensor.New("value", []int64{3}, []float32{1, 2, 3})
	if err != nil {
		return nil, err
	}
	attr, err := AttrTensor("value", v)
	if err != nil {
		return nil, err
	}
	g.Node("Constant", nil, []string{"c"}, attr)
	return g.Model()
}

// Demo returns demo.onnx: a 4-feature, 3-class classifier. Input
// "features" float32 [batch,4]; output "probabilities" float32 [batch,3]
// (a small MLP followed by Softmax).
func Demo() ([]byte, error) {
	r := NewRand(4)
	g := NewGraph("demo")
	g.Input("features", tensor.F32, Sym("batch"), Fixed(4))
	g.Output("probabilities", tensor.F32, Sym("batch"), Fixed(3))
	g.Floats("W1", []int64{4, 8}, r.Weights(32, 1))
	g.Floats("B1", []int64{8}, r.Weights(8, 0.5))
	g.Floats("W2", []int64{8, 3}, r.Weights(24, 1))
	g.Floats("B2", []int64{3}, r.Weights(3, 0.5))
	g.Node("MatMul", []string{"features", "W1"}, []string{"h0"})
	g.Node("Add", []string{"h0", "B1"}, []string{"h1"})
	g.Node("Relu", []string{"h1"}, []string{"h2"})
	g.Node("MatMul", []string{"h2", "W2"}, []string{"h3"})
	g.Node("Add", []string{"h3", "B2"}, []string{"logits"})
	g.Node("Softmax", []string{"logits"}, []string{"probabilities"}, AttrInt("axis", -1))
	return g.Model()
}

// Models maps each test model's file name (in testdata/models) to the
// function that builds it.
func Models() map[string]func() ([]byte, error) {
	m := map[string]func() ([]byte, error){
		"mlp.onnx":      MLP,
		"cnn.onnx":      CNN,
		"multi.onnx":    Multi,
		"scalar.onnx":   Scalar,
		"half.onnx":     Half,
		"noinputs.onnx": NoInputs,
		"demo.onnx":     Demo,
	}
	for _, d := range tensor.DTypes() {
		d := d
		m[IdentityFile(d)] = func() ([]byte, error) { return Identity(d) }
	}
	return m
}

// IdentityFile returns the file name of the identity model for d.
func IdentityFile(d tensor.DType) string { return fmt.Sprintf("identity_%s.onnx", d) }

// ModelNames returns the keys of Models, sorted.
func ModelNames() []string {
	m := Models()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
