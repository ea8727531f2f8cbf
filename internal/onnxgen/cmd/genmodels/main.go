// Command genmodels writes Blindfold's ONNX test models (see package
// onnxgen) into a directory, by default testdata/models.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
)

func main() {
	out := flag.String("out", "testdata/models", "directory to write the .onnx files to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "genmodels:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	models := onnxgen.Models()
	for _, name := range onnxgen.ModelNames() {
		b, err := models[name]()
		if err != nil {
			return fmt.Errorf("building %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
