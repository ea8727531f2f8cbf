package onnxgen

import (
	"fmt"

	"github.com/blindfold-ai/blindfold/tensor"
)

// Slow returns a model that takes a while to run: input x float32 [n,n]
// multiplied by itself steps times (output y float32 [n,n]). About
// 2·n³·steps floating-point operations; tests use it to exercise deadlines,
// cancellation and concurrency caps. Feed it zeros to keep values finite.
func Slow(n int64, steps int) ([]byte, error) {
	if steps < 1 {
		return nil, fmt.Errorf("onnxgen: Slow needs at least one step, got %d", steps)
	}
	g := NewGraph("slow")
	g.Input("x", tensor.F32, Fixed(n), Fixed(n))
	g.Output("y", tensor.F32, Fixed(n), Fixed(n))
	prev := "x"
	for i := 0; i < steps; i++ {
		next := fmt.Sprintf("h%d", i)
		if i == steps-1 {
			next = "y"
		}
		g.Node("MatMul", []string{prev, "x"}, []string{next})
		prev = next
	}
	return g.Model()
}

// Huge returns a model whose intermediate tensor has the size its input
// asks for: input shape int64 [2] -> ConstantOfShape (float32 ones) ->
// ReduceSum -> output sum float32 scalar. Tests use it to check that a
// request for an enormous intermediate tensor fails cleanly.
func Huge() ([]byte, error) {
	g := NewGraph("huge")
	g.Input("shape", tensor.I64, Fixed(2))
	g.Output("sum", tensor.F32)
	one, err := tensor.New("value", []int64{1}, []float32{1})
	if err != nil {
		return nil, err
	}
	attr, err := AttrTensor("value", one)
	if err != nil {
		return nil, err
	}
	g.Node("ConstantOfShape", []string{"shape"}, []string{"big"}, attr)
	g.Node("ReduceSum", []string{"big"}, []string{"sum"}, AttrInt("keepdims", 0))
	return g.Model()
}
