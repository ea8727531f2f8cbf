// Package testvectors finds the attestation test vectors (real hardware
// quotes and collateral) for tests. The vectors the tests need are
// committed in attest/sgx/testdata/vectors, attest/tdx/testdata/vectors
// and attest/snp/testdata/vectors (see their READMEs for origin and
// licence); other vectors are read from the folder named by the
// environment variable TESTVECTORS_DIR, or from ../shared/testvectors next
// to the project root. When the environment variable CI is set, a missing
// vector fails the test rather than skipping it.
package testvectors

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that names a further folder.
const EnvVar = "TESTVECTORS_DIR"

// Committed is the folder of the committed SGX vectors, relative to the
// project root.
const Committed = "attest/sgx/testdata/vectors"

// committed are the folders of committed vectors, relative to the project
// root, each laid out as ../shared/testvectors is (sgx/, tdx/, snp/).
var committed = []string{Committed, "attest/tdx/testdata/vectors", "attest/snp/testdata/vectors"}

func isDir(d string) bool {
	st, err := os.Stat(d)
	return err == nil && st.IsDir()
}

// projectRoot returns the folder holding go.mod above the working
// directory, or "".
func projectRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Dirs returns the folders that may hold vectors, in the order they are
// searched: the committed vectors, TESTVECTORS_DIR, ../shared/testvectors.
func Dirs() []string {
	var out []string
	root := projectRoot()
	for _, c := range committed {
		if root != "" && isDir(filepath.Join(root, c)) {
			out = append(out, filepath.Join(root, c))
		}
	}
	if d := os.Getenv(EnvVar); d != "" && isDir(d) {
		out = append(out, d)
	}
	if root != "" && isDir(filepath.Join(root, "..", "shared", "testvectors")) {
		out = append(out, filepath.Join(root, "..", "shared", "testvectors"))
	}
	return out
}

// Dir returns the first folder of Dirs, or "" when there is none.
func Dir() string {
	if d := Dirs(); len(d) > 0 {
		return d[0]
	}
	return ""
}

// Find returns the path of rel in the first folder of Dirs that has it, or
// "".
func Find(rel string) string {
	for _, d := range Dirs() {
		p := filepath.Join(d, filepath.FromSlash(rel))
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Path returns the path of rel (see Find). When it is absent, the test is
// skipped with a message naming what is missing, or fails when the
// environment variable CI is set.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := Find(rel)
	if p == "" {
		missing(t, "test vector %s not found in %s, in $%s or in ../shared/testvectors", rel, Committed, EnvVar)
	}
	return p
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set: a missing vector is a failure)", args...)
	}
	t.Skipf(format, args...)
}

// Read returns the contents of rel (see Path).
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatalf("reading test vector %s: %v", rel, err)
	}
	return b
}
