//go:build cgo

// End-to-end tests of the CLI against a real in-process server
// (internal/testserver needs the cgo engine and ONNX Runtime).

package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

func TestE2ECLI(t *testing.T) {
	srv := testserver.Start(t)
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conn := []string{"--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	model := filepath.Join(dir, "multi.onnx")
	if err := os.WriteFile(model, testserver.Model(t, "multi.onnx"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeNPY := func(name string, tt tensor.Tensor) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := tensor.WriteNPY(f, tt); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, _ := tensor.New("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b, _ := tensor.New("b", []int64{3}, []int64{7, -8, 9})
	mask, _ := tensor.New("mask", []int64{2, 3}, []bool{true, false, true, false, true, false})
	aPath, bPath, maskPath := writeNPY("a.npy", a), writeNPY("b.npy", b), writeNPY("mask.npy", mask)
	outDir := filepath.Join(dir, "out")
	proofPath := filepath.Join(dir, "run.proof")
	sendProof := filepath.Join(dir, "send.proof")
	modelHash := hex.EncodeToString(proof.ModelHash(testserver.Model(t, "multi.onnx")))
	big := filepath.Join(dir, "big.onnx")
	if err := os.WriteFile(big, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	inputs := []string{"--input", "mask=" + maskPath, "--input", "a=" + aPath, "--input", "b=" + bPath}

	with := func(args ...string) []string { return append(args, conn...) }
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"info", with("info", srv.UntrustedAddr), exitOK, "protocol version:      0.5.0", "SIMULATION MODE"},
		{"connect alias, trust on first use", []string{"connect", srv.UntrustedAddr, "--insecure-trust-on-first-use", "--simulation", "--attested-port", strconv.Itoa(port)}, exitOK, "simulation:            true", "sha256_fingerprint"},
		{"simulation not accepted", []string{"info", srv.UntrustedAddr, "--host-cert", srv.HostCertPEM, "--attested-port", strconv.Itoa(port)}, exitConnection, "", "pass --simulation"},
		{"attested port closed: the port assumed is named", []string{"info", srv.UntrustedAddr, "--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", "1"}, exitConnection, "", "cannot open the attested port 127.0.0.1:1: connection or TLS handshake failed: dial tcp 127.0.0.1:1: connect: connection refused\nthe attested port comes from --attested-port"},
		{"upload", with("upload", srv.UntrustedAddr, model, "--id", "multi", "--sign", "--proof", sendProof), exitOK, "model_id: multi\nsha256:   " + modelHash, "signed reply verified"},
		{"upload a large non-model, with a progress bar", with("upload", srv.UntrustedAddr, big), exitServer, "", "uploading"},
		{"upload again", with("upload", srv.UntrustedAddr, model, "--id", "multi"), exitServer, "", "AlreadyExists"},
		{"run by name", with(append([]string{"run", srv.UntrustedAddr, "multi", "--sign", "--proof", proofPath, "--output-dir", outDir}, inputs...)...), exitOK, "output 3: total float64[] -> ", "signed reply verified"},
		{"run by position", with("run", srv.UntrustedAddr, "multi", "--input", aPath, "--input", bPath, "--input", maskPath), exitOK, "output 1: b32 int32[3] = [7,-8,9]", ""},
		{"run wrong order by position", with("run", srv.UntrustedAddr, "multi", "--input", bPath, "--input", aPath, "--input", maskPath), exitServer, "", "InvalidArgument"},
		{"verify run proof", []string{"proof", "verify", proofPath, "--allow-simulation", "--model-id", "multi", "--input", maskPath, "--input", aPath, "--input", bPath}, exitOK, "kind:                 run_model", ""},
		{"verify run proof, other input order", []string{"proof", "verify", proofPath, "--allow-simulation", "--input", aPath, "--input", maskPath, "--input", bPath}, exitProof, "", "input_hash mismatch"},
		{"verify send proof", []string{"proof", "verify", sendProof, "--allow-simulation", "--model-hash", modelHash, "--model-id", "multi"}, exitOK, "model_hash:           " + modelHash, ""},
		{"delete", with("delete", srv.UntrustedAddr, "multi"), exitOK, "deleted multi", ""},
		{"run after delete", with("run", srv.UntrustedAddr, "multi", "--input", aPath), exitServer, "", "NotFound"},
		{"delete again", with("delete", srv.UntrustedAddr, "multi"), exitServer, "", "NotFound"},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI(t, s.args...)
		if code != s.code || !strings.Contains(stdout, s.stdout) || !strings.Contains(stderr, s.stderr) {
			t.Fatalf("%s: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", s.name, code, s.code, stdout, s.stdout, stderr, s.stderr)
		}
	}

	// Outputs written as .npy.
	f, err := os.Open(filepath.Join(outDir, "where.npy"))
	if err != nil {
		t.Fatal(err)
	}
	where, err := tensor.ReadNPY(f, "where")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tensor.Values[float32](where); err != nil || fmtFloats(v) != "[1 0 3 0 5 0]" {
		t.Fatalf("where.npy holds %v (%v)", v, err)
	}
}

func fmtFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestE2ECLIJSON(t *testing.T) {
	srv := testserver.Start(t)
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conn := []string{"--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", strconv.Itoa(port)}
	model := filepath.Join(dir, "half.onnx")
	if err := os.WriteFile(model, testserver.Model(t, "half.onnx"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, append([]string{"upload", srv.UntrustedAddr, model, "--name", "half"}, conn...)...)
	if code != exitOK || !strings.Contains(stdout, "model_id: half") {
		t.Fatalf("upload: exit %d, %s %s", code, stdout, stderr)
	}
	x, _ := tensor.New("x", []int64{2, 2}, []float32{1, -2, 0.5, 65504})
	xPath := filepath.Join(dir, "x.npy")
	f, _ := os.Create(xPath)
	if err := tensor.WriteNPY(f, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, stdout, stderr = runCLI(t, append([]string{"run", srv.UntrustedAddr, "half", "--input", "x=" + xPath, "--json"}, conn...)...)
	if code != exitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	var res struct {
		ModelID string `json:"model_id"`
		Outputs []struct {
			Name   string  `json:"name"`
			DType  string  `json:"dtype"`
			Shape  []int64 `json:"shape"`
			Values []any   `json:"values"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if res.ModelID != "half" || len(res.Outputs) != 1 || res.Outputs[0].Name != "h" || res.Outputs[0].DType != "float16" {
		t.Fatalf("result %+v", res)
	}
	want := []any{1.0, -2.0, 0.5, 65504.0}
	for i, v := range res.Outputs[0].Values {
		if v != want[i] {
			t.Fatalf("values %v, want %v", res.Outputs[0].Values, want)
		}
	}
}
