// Package testvectors finds the shared attestation test vectors (real
// hardware quotes and collateral) for tests. They live outside the
// repository, in ../shared/testvectors from the project root, or wherever
// the environment variable TESTVECTORS_DIR points.
package testvectors

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that overrides the folder.
const EnvVar = "TESTVECTORS_DIR"

// Dir returns the test vectors folder, or "" when it cannot be found.
func Dir() string {
	if d := os.Getenv(EnvVar); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			tv := filepath.Join(d, "..", "shared", "testvectors")
			if st, err := os.Stat(tv); err == nil && st.IsDir() {
				return tv
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Path returns the path of rel inside the test vectors folder, and skips
// the test (naming the missing folder or file) when it is absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	d := Dir()
	if d == "" {
		t.Skipf("test vectors not found: set %s or provide ../shared/testvectors next to the project root", EnvVar)
	}
	p := filepath.Join(d, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test vector %s not found in %s", rel, d)
	}
	return p
}

// Read returns the contents of rel inside the test vectors folder, and skips
// the test when it is absent.
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatalf("reading test vector %s: %v", rel, err)
	}
	return b
}
