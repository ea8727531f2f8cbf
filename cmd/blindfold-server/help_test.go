package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/engine"
)

// TestHelpOnStdout: --help goes to stdout, each flag with its type,
// default, TOML key and variable; the version line has one form.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		for _, want := range []string{
			"--max-model-bytes SIZE\n    \tlargest model accepted, counted on bytes received (e.g. 1GiB) (default 1GiB) [toml max_model_bytes, env BLINDFOLD_MAX_MODEL_BYTES]",
			"--shutdown-timeout DURATION\n",
			"(default 30s)",
			"--simulation\n",
			"--max-models INT\n",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "blindfold-server ") || !strings.HasSuffix(out.String(), " (protocol 0.5.0)\n") {
		t.Fatalf("version: exit %d %q %q", code, out.String(), errb.String())
	}
	if !strings.HasSuffix(banner, "#\n") {
		t.Fatal("banner")
	}
	lines := strings.Split(strings.TrimSpace(banner), "\n")
	for _, l := range lines {
		if len(l) != len(lines[0]) {
			t.Errorf("ragged banner line %q (%d, want %d)", l, len(l), len(lines[0]))
		}
	}
}

func TestLibraryNearExecutable(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, ".cache", "onnxruntime", engine.LibraryName)
	if err := os.MkdirAll(filepath.Dir(lib), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := libraryNearExecutable(filepath.Join(root, "bin", "blindfold-server")); got != lib {
		t.Fatalf("found %q, want %q", got, lib)
	}
	if got := libraryNearExecutable(filepath.Join(t.TempDir(), "bin", "blindfold-server")); got != "" {
		t.Fatalf("found %q where there is none", got)
	}
}
