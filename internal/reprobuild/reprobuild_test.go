// Package reprobuild holds the test that the server and CLI binaries are
// reproducible: built from the same sources in two folders, with different
// GOPATH and build caches, they are byte-identical.
package reprobuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Flags are the build flags of a reproducible build (scripts/reprobuild.sh
// and deploy/gramine/sgx.sh use the same): -trimpath drops the build
// folder and GOPATH from the binary, -buildvcs=false the checkout's state
// (a copy without .git and a clone build alike), and a fixed build id.
var Flags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// binaries are the packages built, and whether each uses cgo.
var binaries = []struct {
	pkg string
	cgo bool
}{
	{"./cmd/blindfold-server", true},
	{"./cmd/blindfold", false},
}

// repoRoot returns the repository root (two folders up).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// copyTree copies the files git tracks (as they are in the working tree)
// from root into dst.
func copyTree(t *testing.T, root, dst string) {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		d := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(d, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(o, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// build builds every binary from src into out, with the given GOPATH and
// GOCACHE and the shared module cache.
func build(t *testing.T, src, out, gopath, gocache, modcache string) {
	t.Helper()
	for _, b := range binaries {
		args := append([]string{"build"}, Flags...)
		args = append(args, "-o", filepath.Join(out, filepath.Base(b.pkg)), b.pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		cgo := "0"
		if b.cgo {
			cgo = "1"
		}
		cmd.Env = append(os.Environ(), "GOPATH="+gopath, "GOCACHE="+gocache, "GOMODCACHE="+modcache,
			"CGO_ENABLED="+cgo, "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		if outp, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s in %s: %v\n%s", b.pkg, src, err, outp)
		}
	}
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestReproducibleBinaries builds the server and the CLI twice, from two
// copies of the sources in different folders, with different GOPATHs and
// build caches (one the usual cache, one empty), sharing the module
// cache, and requires identical bytes.
func TestReproducibleBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries twice; skipped in -short mode")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to list the sources: %v", err)
	}
	root := repoRoot(t)
	modcache := goEnv(t, "GOMODCACHE")
	base := t.TempDir()
	dirs := []struct{ src, out, gopath, gocache string }{
		{filepath.Join(base, "a", "src"), filepath.Join(base, "a", "bin"), filepath.Join(base, "a", "gopath"), goEnv(t, "GOCACHE")},
		{filepath.Join(base, "elsewhere", "b", "blindfold"), filepath.Join(base, "b-bin"), filepath.Join(base, "gopath-b"), filepath.Join(base, "gocache-b")},
	}
	for _, d := range dirs {
		copyTree(t, root, d.src)
		build(t, d.src, d.out, d.gopath, d.gocache, modcache)
	}
	for _, b := range binaries {
		name := filepath.Base(b.pkg)
		x, err := os.ReadFile(filepath.Join(dirs[0].out, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(dirs[1].out, name))
		if err != nil {
			t.Fatal(err)
		}
		hx, hy := sha256.Sum256(x), sha256.Sum256(y)
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between the two builds: sha256 %s and %s", name, hex.EncodeToString(hx[:]), hex.EncodeToString(hy[:]))
			continue
		}
		for _, d := range dirs {
			for _, leak := range []string{d.src, d.gopath, base} {
				if bytes.Contains(x, []byte(leak)) {
					t.Errorf("%s holds the build path %s", name, leak)
				}
			}
		}
		t.Logf("%s: sha256 %s (both builds)", name, hex.EncodeToString(hx[:]))
	}
}
