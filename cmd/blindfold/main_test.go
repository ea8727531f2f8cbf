package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain keeps the tests away from the user's own settings: no
// BLINDFOLD_* variable from the caller's environment, and a profile file
// in a fresh folder.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "BLINDFOLD_") && k != "BLINDFOLD_ONNXRUNTIME_LIB" {
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "blindfold-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(profilesEnv, filepath.Join(dir, "profiles.toml"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
