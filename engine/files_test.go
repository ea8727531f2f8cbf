package engine

import (
	"os"
	"path/filepath"
	"testing"
)

func readModelFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
