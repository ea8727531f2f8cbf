package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LibraryEnv is the environment variable that points to the ONNX Runtime
// shared library (libonnxruntime.so.1).
const LibraryEnv = "BLINDFOLD_ONNXRUNTIME_LIB"

// LibraryName is the file name of the ONNX Runtime shared library.
const LibraryName = "libonnxruntime.so.1"

// SystemLibraryPath is the last place FindLibrary looks.
const SystemLibraryPath = "/usr/local/lib/blindfold/" + LibraryName

// ErrLibraryNotFound is wrapped by FindLibrary (and Open) when no ONNX
// Runtime library can be found.
var ErrLibraryNotFound = errors.New("engine: ONNX Runtime library not found")

// FindLibrary returns the absolute path of the ONNX Runtime library to
// load. An explicit path, if non-empty, must exist. Otherwise it uses
// $BLINDFOLD_ONNXRUNTIME_LIB if set (which must then exist), else the first
// of: .cache/onnxruntime/libonnxruntime.so.1 in the current directory or
// any parent directory; libonnxruntime.so.1 next to the executable or in
// <exe dir>/../lib; /usr/local/lib/blindfold/libonnxruntime.so.1. The
// error lists every place it looked.
func FindLibrary(explicit string) (string, error) {
	if explicit != "" {
		return mustExist(explicit, "the path given")
	}
	if p := os.Getenv(LibraryEnv); p != "" {
		return mustExist(p, "$"+LibraryEnv)
	}
	var candidates []string
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; {
			candidates = append(candidates, filepath.Join(dir, ".cache", "onnxruntime", LibraryName))
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, LibraryName), filepath.Join(dir, "..", "lib", LibraryName))
	}
	candidates = append(candidates, SystemLibraryPath)
	for _, c := range candidates {
		if isFile(c) {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("%w: $%s is not set and %s is in none of: %s; run scripts/setup-onnxruntime.sh or pass --onnxruntime-lib",
		ErrLibraryNotFound, LibraryEnv, LibraryName, strings.Join(candidates, ", "))
}

func mustExist(p, what string) (string, error) {
	if !isFile(p) {
		return "", fmt.Errorf("%w: %s (%s) is not a readable file; run scripts/setup-onnxruntime.sh or pass --onnxruntime-lib",
			ErrLibraryNotFound, p, what)
	}
	return filepath.Abs(p)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
