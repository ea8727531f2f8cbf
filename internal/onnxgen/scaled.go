package onnxgen

import (
	"fmt"

	"github.com/blindfold-ai/blindfold/tensor"
)

// Scaled returns a model of about 4·n² bytes that multiplies its input by
// c: input "x" float32 [batch,n], output "y" = x·W with W = c·I (an n×n
// weight matrix). Models made with different c give different answers, so
// tests and benchmarks that hold many models can tell them apart; n sets
// the size (n = 4: a few hundred bytes; n = 1024: 4 MiB).
func Scaled(n int, c float32) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("onnxgen: Scaled needs n > 0, got %d", n)
	}
	w := make([]float32, n*n)
	for i := 0; i < n; i++ {
		w[i*n+i] = c
	}
	g := NewGraph("scaled")
	g.Input("x", tensor.F32, Sym("batch"), Fixed(int64(n)))
	g.Output("y", tensor.F32, Sym("batch"), Fixed(int64(n)))
	g.Floats("W", []int64{int64(n), int64(n)}, w)
	g.Node("MatMul", []string{"x", "W"}, []string{"y"})
	return g.Model()
}

// ScaledDeep is Scaled with depth matrix products in a row (depth-1 by
// the identity, sharing one weight, then one by c·I): the same answer for
// depth times the compute, on the same input and output bytes.
func ScaledDeep(n, depth int, c float32) ([]byte, error) {
	if n <= 0 || depth <= 0 {
		return nil, fmt.Errorf("onnxgen: ScaledDeep needs n and depth > 0, got %d and %d", n, depth)
	}
	id := make([]float32, n*n)
	w := make([]float32, n*n)
	for i := 0; i < n; i++ {
		id[i*n+i] = 1
		w[i*n+i] = c
	}
	g := NewGraph("scaled_deep")
	g.Input("x", tensor.F32, Sym("batch"), Fixed(int64(n)))
	g.Output("y", tensor.F32, Sym("batch"), Fixed(int64(n)))
	g.Floats("I", []int64{int64(n), int64(n)}, id)
	g.Floats("W", []int64{int64(n), int64(n)}, w)
	prev := "x"
	for k := 0; k < depth-1; k++ {
		next := fmt.Sprintf("h%d", k)
		g.Node("MatMul", []string{prev, "I"}, []string{next})
		prev = next
	}
	g.Node("MatMul", []string{prev, "W"}, []string{"y"})
	return g.Model()
}
