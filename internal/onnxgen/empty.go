package onnxgen

import (
	"github.com/blindfold-ai/blindfold/tensor"
)

// EmptyCase is a model whose inputs or outputs are empty tensors (a
// dimension of 0), with inputs to run it on and the output shapes it must
// give. The cases follow ONNX's backend node tests of empty tensors, which
// ONNX Runtime passes in process.
type EmptyCase struct {
	Name    string
	Model   []byte
	Inputs  []tensor.Tensor
	Outputs [][]int64 // expected output shapes, in the model's order
}

// EmptyCases returns the empty-tensor cases: a sum over an empty set, a
// Split into zero-size parts, Tril and Triu of empty matrices, a Reshape
// with allowzero, and an Identity of an empty input.
func EmptyCases() ([]EmptyCase, error) {
	var out []EmptyCase
	add := func(name string, g *Graph, inputs []tensor.Tensor, outputs ...[]int64) error {
		m, err := g.Model()
		if err != nil {
			return err
		}
		out = append(out, EmptyCase{Name: name, Model: m, Inputs: inputs, Outputs: outputs})
		return nil
	}
	f32 := func(name string, shape ...int64) tensor.Tensor {
		return tensor.Tensor{Name: name, DType: tensor.F32, Shape: shape, Data: []byte{}}
	}

	// ReduceSum over an empty axis: [2,0,4] summed over axis 1 is zeros
	// [2,1,4] (test_reduce_sum_empty_set).
	g := NewGraph("reduce_sum_empty_set")
	g.Input("x", tensor.F32, Dims(2, 0, 4)...)
	g.Output("y", tensor.F32, Dims(2, 1, 4)...)
	g.Int64s("axes", []int64{1}, []int64{1})
	g.Node("ReduceSum", []string{"x", "axes"}, []string{"y"}, AttrInt("keepdims", 1))
	if err := add(g.name, g, []tensor.Tensor{f32("x", 2, 0, 4)}, []int64{2, 1, 4}); err != nil {
		return nil, err
	}

	// ReduceSum with an empty axes input and noop_with_empty_axes: the
	// input comes back as it is, here an empty one
	// (test_reduce_sum_empty_axes_input_noop, on an empty input).
	g = NewGraph("reduce_sum_empty_axes_noop")
	g.Input("x", tensor.F32, Dims(0, 3)...)
	g.Output("y", tensor.F32, Dims(0, 3)...)
	g.Int64s("axes", []int64{0}, []int64{})
	g.Node("ReduceSum", []string{"x", "axes"}, []string{"y"}, AttrInt("keepdims", 1), AttrInt("noop_with_empty_axes", 1))
	if err := add(g.name, g, []tensor.Tensor{f32("x", 0, 3)}, []int64{0, 3}); err != nil {
		return nil, err
	}

	// Split of an empty tensor into three zero-size parts
	// (test_split_zero_size_splits).
	g = NewGraph("split_zero_size_splits")
	g.Input("x", tensor.F32, Fixed(0))
	for _, n := range []string{"a", "b", "c"} {
		g.Output(n, tensor.F32, Fixed(0))
	}
	g.Int64s("split", []int64{3}, []int64{0, 0, 0})
	g.Node("Split", []string{"x", "split"}, []string{"a", "b", "c"}, AttrInt("axis", 0))
	if err := add(g.name, g, []tensor.Tensor{f32("x", 0)}, []int64{0}, []int64{0}, []int64{0}); err != nil {
		return nil, err
	}

	// Tril and Triu of a [3,0,5] batch of matrices (test_tril_zero,
	// test_triu_zero).
	for _, op := range []string{"Tril", "Triu"} {
		g = NewGraph(op + "_zero")
		g.Input("x", tensor.I64, Dims(3, 0, 5)...)
		g.Output("y", tensor.I64, Dims(3, 0, 5)...)
		g.Int64s("k", []int64{}, []int64{6})
		g.Node("Trilu", []string{"x", "k"}, []string{"y"}, AttrInt("upper", map[string]int64{"Tril": 0, "Triu": 1}[op]))
		x := tensor.Tensor{Name: "x", DType: tensor.I64, Shape: []int64{3, 0, 5}, Data: []byte{}}
		if err := add(g.name, g, []tensor.Tensor{x}, []int64{3, 0, 5}); err != nil {
			return nil, err
		}
	}

	// Reshape [0,3,4] to [3,4,0] with allowzero (test_reshape_allowzero_reordered).
	g = NewGraph("reshape_allowzero_reordered")
	g.Input("x", tensor.F32, Dims(0, 3, 4)...)
	g.Output("y", tensor.F32, Dims(3, 4, 0)...)
	g.Int64s("shape", []int64{3}, []int64{3, 4, 0})
	g.Node("Reshape", []string{"x", "shape"}, []string{"y"}, AttrInt("allowzero", 1))
	if err := add(g.name, g, []tensor.Tensor{f32("x", 0, 3, 4)}, []int64{3, 4, 0}); err != nil {
		return nil, err
	}

	// An empty input through a dynamic dimension, both ways, for every
	// element type: Identity of [n,3] with n = 0.
	for _, d := range tensor.DTypes() {
		m, err := Identity(d)
		if err != nil {
			return nil, err
		}
		x := tensor.Tensor{Name: "x", DType: d, Shape: []int64{0, 3}, Data: []byte{}}
		out = append(out, EmptyCase{Name: "identity_empty_" + d.String(), Model: m, Inputs: []tensor.Tensor{x}, Outputs: [][]int64{{0, 3}}})
	}
	return out, nil
}
