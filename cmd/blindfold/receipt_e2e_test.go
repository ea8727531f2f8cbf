//go:build cgo

package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestE2EReceiptFlags runs a signed run with a nonce through the CLI and
// verifies its proof with --model, --input, --output and --nonce; each
// changed value fails, naming the binding.
func TestE2EReceiptFlags(t *testing.T) {
	srv := testserver.Start(t)
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conn := []string{"--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	model := filepath.Join(dir, "mlp.onnx")
	other := filepath.Join(dir, "cnn.onnx")
	if err := os.WriteFile(model, testserver.Model(t, "mlp.onnx"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, testserver.Model(t, "cnn.onnx"), 0o600); err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	xPath := filepath.Join(dir, "x.npy")
	f, err := os.Create(xPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPY(f, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
	with := func(args ...string) []string { return append(args, conn...) }
	sendProof := filepath.Join(dir, "send.proof")
	if code, _, stderr := runCLI(t, with("upload", srv.UntrustedAddr, model, "--id", "mlp", "--sign", "--proof", sendProof, "--nonce", "aa")...); code != exitOK || !strings.Contains(stderr, "request nonce aa recorded") {
		t.Fatalf("upload: %d %s", code, stderr)
	}

	nonce := "00112233445566778899aabbccddeeff"
	runProof, autoProof := filepath.Join(dir, "run.proof"), filepath.Join(dir, "auto.proof")
	outDir := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, with("run", srv.UntrustedAddr, "mlp", "--input", xPath, "--sign", "--proof", runProof, "--nonce", nonce, "--output-dir", outDir)...)
	if code != exitOK || !strings.Contains(stderr, "request nonce "+nonce+" recorded") {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	// Without --nonce, a proof gets a random nonce, printed.
	code, _, stderr = runCLI(t, with("run", srv.UntrustedAddr, "mlp", "--input", xPath, "--sign", "--proof", autoProof)...)
	m := regexp.MustCompile(`request nonce ([0-9a-f]{64}) recorded`).FindStringSubmatch(stderr)
	if code != exitOK || m == nil {
		t.Fatalf("run without --nonce: exit %d: %s", code, stderr)
	}

	p, err := proof.ReadFile(runProof)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := proof.DecodePayload(p.GetPayload())
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for _, o := range pl.GetRunModelPayload().GetOutputTensors() {
		outputs = append(outputs, "--output", filepath.Join(outDir, o.GetInfo().GetIndexName()+".npy"))
	}
	if len(outputs) == 0 {
		t.Fatal("the run has no outputs")
	}
	outHash := hex.EncodeToString(proof.OutputHash(pl.GetRunModelPayload().GetOutputTensors()))
	verify := func(args ...string) []string {
		return append([]string{"proof", "verify", runProof, "--allow-simulation", "--model-id", "mlp", "--input", xPath}, args...)
	}
	all := append([]string{"--model", model, "--nonce", nonce}, outputs...)
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"every binding", verify(all...), exitOK, []string{
			"model_id     checked", "model_hash   checked", "input_hash   checked", "output_hash  checked", "nonce        checked",
			"replica_id   not checked  simulation", "issued_at    not checked  issued_at", "server host's clock",
			"request nonce:        " + nonce,
		}, ""},
		{"output hash given", verify("--output-hash", outHash), exitOK, []string{"output_hash  checked", "nonce        not checked  the receipt carries nonce " + nonce}, ""},
		{"nothing asked", []string{"proof", "verify", runProof, "--allow-simulation"}, exitOK, []string{"model_hash   not checked  no expected model hash given"}, ""},
		{"random nonce", []string{"proof", "verify", autoProof, "--allow-simulation", "--nonce", m[1]}, exitOK, []string{"nonce        checked"}, ""},
		{"other model", verify("--model", other), exitProof, nil, "model_hash mismatch"},
		{"other nonce", verify("--nonce", "0011"), exitProof, nil, "nonce mismatch"},
		{"nonce of another run", []string{"proof", "verify", autoProof, "--allow-simulation", "--nonce", nonce}, exitProof, nil, "nonce mismatch"},
		{"other output hash", verify("--output-hash", strings.Repeat("ab", 32)), exitProof, nil, "output_hash mismatch"},
		{"outputs missing", verify("--output", xPath), exitProof, nil, "output_hash mismatch"},
		{"other input", verify("--input", xPath), exitProof, nil, "input_hash mismatch"},
		{"model and model hash", verify("--model", model, "--model-hash", strings.Repeat("ab", 32)), exitUsage, nil, "not both"},
		{"bad nonce", verify("--nonce", "xyz"), exitUsage, nil, "--nonce must be"},
		{"upload proof", []string{"proof", "verify", sendProof, "--allow-simulation", "--model", model, "--nonce", "aa"}, exitOK, []string{"model_hash   checked", "nonce        checked", "request nonce:        aa"}, ""},
		{"upload proof, other nonce", []string{"proof", "verify", sendProof, "--allow-simulation", "--nonce", "ab"}, exitProof, nil, "nonce mismatch"},
		{"upload proof has no outputs", []string{"proof", "verify", sendProof, "--allow-simulation", "--output-hash", outHash}, exitProof, nil, "output_hash mismatch"},
		{"run nonce without sign", with("run", srv.UntrustedAddr, "mlp", "--input", xPath, "--nonce", nonce), exitUsage, nil, "--nonce needs --sign"},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI(t, s.args...)
		ok := code == s.code && strings.Contains(stderr, s.stderr)
		for _, want := range s.stdout {
			ok = ok && strings.Contains(stdout, want)
		}
		if !ok {
			t.Errorf("%s: exit %d (want %d)\nstdout %s (want %q)\nstderr %q (want %q)", s.name, code, s.code, stdout, s.stdout, stderr, s.stderr)
		}
	}
}
