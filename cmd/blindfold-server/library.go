package main

import (
	"os"
	"path/filepath"

	"github.com/blindfold-ai/blindfold/engine"
)

// libraryNearExecutable looks for the ONNX Runtime library that
// scripts/setup-onnxruntime.sh keeps in .cache/onnxruntime/ of the
// repository, in the folders above the executable (bin/blindfold-server
// of a checkout), so that a server built in a checkout finds it when
// started from any folder. It returns "" when there is none.
func libraryNearExecutable(exe string) string {
	for dir := filepath.Dir(exe); ; {
		p := filepath.Join(dir, ".cache", "onnxruntime", engine.LibraryName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// findLibrary returns the library path the engine should open: the
// configured one, else engine.FindLibrary's, else one above the
// executable ("" lets the engine report what it searched).
func findLibrary(configured string) string {
	if configured != "" || os.Getenv(engine.LibraryEnv) != "" {
		return configured
	}
	if _, err := engine.FindLibrary(""); err == nil {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return libraryNearExecutable(exe)
}
