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
