// Command blindfold-bench measures what Blindfold's confidential path costs
// on top of ONNX Runtime and renders docs/benchmarks.md. `make bench` runs
// it; see docs/benchmarks.md and package bench.
package main

import (
	"os"

	"github.com/blindfold-ai/blindfold/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
