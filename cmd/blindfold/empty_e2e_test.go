//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Empty tensors through the CLI: an empty .npy in, empty .npy files out.
func TestE2ECLIEmptyTensors(t *testing.T) {
	cases, err := onnxgen.EmptyCases()
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t)
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn := []string{"--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	for _, tc := range cases {
		if tc.Name != "split_zero_size_splits" && tc.Name != "reduce_sum_empty_set" && tc.Name != "Tril_zero" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			model := filepath.Join(dir, "model.onnx")
			if err := os.WriteFile(model, tc.Model, 0o600); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, "x.npy")
			f, err := os.Create(in)
			if err != nil {
				t.Fatal(err)
			}
			if err := tensor.WriteNPY(f, tc.Inputs[0]); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if code, _, stderr := runCLI(t, append([]string{"upload", srv.UntrustedAddr, model, "--id", tc.Name}, conn...)...); code != exitOK {
				t.Fatalf("upload: exit %d: %s", code, stderr)
			}
			out := filepath.Join(dir, "out")
			code, stdout, stderr := runCLI(t, append([]string{"run", srv.UntrustedAddr, tc.Name, "--input", in, "--output-dir", out}, conn...)...)
			if code != exitOK {
				t.Fatalf("run: exit %d: %s", code, stderr)
			}
			files, _ := filepath.Glob(filepath.Join(out, "*.npy"))
			if len(files) != len(tc.Outputs) {
				t.Fatalf("%d output files (%v), want %d; stdout %s", len(files), files, len(tc.Outputs), stdout)
			}
			for i, want := range tc.Outputs {
				if !strings.Contains(stdout, "output "+strconv.Itoa(i)+":") {
					t.Errorf("stdout does not list output %d: %s", i, stdout)
				}
				f, err := os.Open(files[i])
				if err != nil {
					t.Fatal(err)
				}
				got, err := tensor.ReadNPY(f, "y")
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", files[i], err)
				}
				if !reflect.DeepEqual(got.Shape, want) {
					t.Errorf("%s: shape %v, want %v", filepath.Base(files[i]), got.Shape, want)
				}
			}
		})
	}
}
