package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// runCLI runs the CLI and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{"no args", nil, exitUsage, "", "Commands:", true},
		{"help", []string{"help"}, exitOK, "Exit codes:", "", false},
		{"--help", []string{"--help"}, exitOK, "proof verify", "", false},
		{"help run", []string{"help", "run"}, exitOK, "--input NAME=FILE.npy", "", false},
		{"run --help", []string{"run", "--help"}, exitOK, "--output-dir", "", false},
		{"upload -h", []string{"upload", "-h"}, exitOK, "--sign", "", false},
		{"version", []string{"version"}, exitOK, "protocol 0.5", "", false},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", "unknown command \"frobnicate\"", true},
		{"proof without verb", []string{"proof"}, exitUsage, "", "Subcommands:", true},
		{"proof --help", []string{"proof", "--help"}, exitOK, "verify", "", false},
		{"proof unknown verb", []string{"proof", "sign"}, exitUsage, "", "unknown subcommand \"sign\"", true},
		{"cert unknown verb", []string{"cert", "revoke"}, exitUsage, "", "allowed: generate", true},
		{"info without addr", []string{"info"}, exitUsage, "", "wrong number of arguments", true},
		{"connect alias without addr", []string{"connect"}, exitUsage, "", "wrong number of arguments", true},
		{"upload one arg", []string{"upload", "host"}, exitUsage, "", "wrong number of arguments", true},
		{"delete three args", []string{"delete", "a", "b", "c"}, exitUsage, "", "wrong number of arguments", true},
		{"unknown flag", []string{"info", "host", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus", true},
		{"no trust", []string{"info", "localhost"}, exitUsage, "", "--host-cert FILE", true},
		{"both trusts", []string{"info", "localhost", "--host-cert", "x.pem", "--insecure-trust-on-first-use"}, exitUsage, "", "exclude each other", true},
		{"bad timeout", []string{"info", "localhost", "--insecure-trust-on-first-use", "--timeout", "0s"}, exitUsage, "", "--timeout must be positive", true},
		{"bad attested port", []string{"delete", "localhost", "m", "--insecure-trust-on-first-use", "--attested-port", "70000"}, exitUsage, "", "--attested-port", true},
		{"bad address", []string{"info", "a:b:c:", "--insecure-trust-on-first-use"}, exitUsage, "", "not host or host:port", true},
		{"run without inputs", []string{"run", "localhost", "m", "--insecure-trust-on-first-use"}, exitUsage, "", "no inputs", true},
		{"run mixed input naming", []string{"run", "localhost", "m", "--input", "a=x.npy", "--input", "y.npy"}, exitUsage, "", "name every --input", true},
		{"run proof without sign", []string{"run", "localhost", "m", "--input", "x.npy", "--proof", "p"}, exitUsage, "", "--proof needs --sign", true},
		{"upload proof without sign", []string{"upload", "localhost", "m.onnx", "--proof", "p"}, exitUsage, "", "--proof needs --sign", true},
		{"empty input file name", []string{"run", "localhost", "m", "--input", "a="}, exitUsage, "", "empty file name", true},
		{"cert generate extra arg", []string{"cert", "generate", "x"}, exitUsage, "", "wrong number of arguments", true},
		{"proof verify bad hash", []string{"proof", "verify", "f", "--model-hash", "abc"}, exitUsage, "", "64 hex digits", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("stdout %q should contain %q, stderr %q should contain %q", stdout, tc.stdout, stderr, tc.stderr)
			}
			if tc.noStdout && stdout != "" {
				t.Fatalf("stdout should be empty on error, got %q", stdout)
			}
		})
	}
}

func TestLocalFileErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.npy")
	if err := os.WriteFile(garbage, []byte("definitely not a numpy file"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.onnx")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"missing model", []string{"upload", "localhost", filepath.Join(dir, "nope.onnx"), "--insecure-trust-on-first-use"}, "no such file"},
		{"empty model", []string{"upload", "localhost", empty, "--insecure-trust-on-first-use"}, "is empty"},
		{"missing input", []string{"run", "localhost", "m", "--input", "x=" + filepath.Join(dir, "nope.npy"), "--insecure-trust-on-first-use"}, "no such file"},
		{"bad npy", []string{"run", "localhost", "m", "--input", garbage, "--insecure-trust-on-first-use"}, "not a .npy file"},
		{"missing host cert", []string{"info", "127.0.0.1:1", "--host-cert", filepath.Join(dir, "nope.pem")}, "no such file"},
		{"missing proof", []string{"proof", "verify", filepath.Join(dir, "nope.proof")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != exitIO || !strings.Contains(stderr, tc.stderr) || stdout != "" {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, exitIO, stderr, tc.stderr, stdout)
			}
		})
	}
}

func TestConnectionFailure(t *testing.T) {
	// Nothing listens on port 1 of loopback.
	code, stdout, stderr := runCLI(t, "info", "127.0.0.1:1", "--insecure-trust-on-first-use", "--simulation", "--timeout", "5s")
	if code != exitConnection || stdout != "" || !strings.Contains(stderr, "cannot reach the untrusted port at 127.0.0.1:1: connection refused") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "SIMULATION MODE") || !strings.Contains(stderr, "PROTECTS NOTHING") {
		t.Fatalf("no simulation warning on stderr: %q", stderr)
	}
}

func TestCertGenerate(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "h.pem"), filepath.Join(dir, "h.key")
	code, stdout, stderr := runCLI(t, "cert", "generate", "--cert", cert, "--key", key)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	c, err := identity.LoadCertificatePEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, identity.Fingerprint(c.Raw)) {
		t.Fatalf("stdout %q lacks the fingerprint %s", stdout, identity.Fingerprint(c.Raw))
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	tests := []struct {
		name string
		args []string
		code int
		sub  string
	}{
		{"refuses to overwrite", []string{"cert", "generate", "--cert", cert, "--key", filepath.Join(dir, "other.key")}, exitIO, "already exists"},
		{"same paths", []string{"cert", "generate", "--cert", cert, "--key", cert}, exitUsage, "two different"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.sub) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.sub)
			}
		})
	}
}

// writeProof writes a simulation run proof for inputs and returns its path.
func writeProof(t *testing.T, dir string, id *identity.Attested, modelID string, inputs ...[]byte) string {
	t.Helper()
	h := proof.NewInputHasher()
	for _, in := range inputs {
		h.Write(in)
	}
	payload, err := proto.Marshal(&securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: h.Sum(), ModelId: modelID,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, modelID+".proof")
	if err := proof.WriteFile(path, proof.NewSimulation(id.DER, payload, id.Sign(payload))); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProofVerify(t *testing.T) {
	dir := t.TempDir()
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.New("x", []int64{2}, []float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	npyPath := filepath.Join(dir, "x.npy")
	f, err := os.Create(npyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPY(f, in); err != nil {
		t.Fatal(err)
	}
	f.Close()
	other, _ := tensor.New("x", []int64{2}, []float32{1, 3})
	otherPath := filepath.Join(dir, "other.npy")
	f, _ = os.Create(otherPath)
	if err := tensor.WriteNPY(f, other); err != nil {
		t.Fatal(err)
	}
	f.Close()

	good := writeProof(t, dir, id, "m1", in.Data)
	raw, _ := os.ReadFile(good)
	tampered := filepath.Join(dir, "tampered.proof")
	p, _ := proof.Unmarshal(raw)
	p.Signature[3] ^= 1
	if err := proof.WriteFile(tampered, p); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.proof") // BlindAI style: no attestation at all
	pb, _ := proof.Unmarshal(raw)
	pb.Attestation = nil
	if err := proof.WriteFile(bare, pb); err != nil {
		t.Fatal(err)
	}
	certPEM := filepath.Join(dir, "attested.pem")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.DER}), 0o600)
	otherID, _ := identity.NewAttested()
	otherDER := filepath.Join(dir, "other.der")
	os.WriteFile(otherDER, otherID.DER, 0o600)
	notProof := filepath.Join(dir, "not.proof")
	os.WriteFile(notProof, []byte{0xff, 0xff, 0xff}, 0o600)
	h := proof.NewInputHasher()
	h.Write(in.Data)
	inHash := h.Sum()

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"verifies with opt-in", []string{"proof", "verify", good, "--allow-simulation", "--model-id", "m1", "--input", npyPath}, exitOK, "model_id:             m1", "SIMULATION-MODE"},
		{"input hash as hex", []string{"proof", "verify", good, "--allow-simulation", "--input-hash", hexOf(inHash)}, exitOK, "input_hash:           " + hexOf(inHash), ""},
		{"simulation refused", []string{"proof", "verify", good}, exitProof, "", "simulation-mode proof"},
		{"wrong model id", []string{"proof", "verify", good, "--allow-simulation", "--model-id", "m2"}, exitProof, "", "model_id mismatch"},
		{"other input", []string{"proof", "verify", good, "--allow-simulation", "--input", otherPath}, exitProof, "", "input_hash mismatch"},
		{"model hash of a run proof", []string{"proof", "verify", good, "--allow-simulation", "--model-hash", hexOf(inHash)}, exitProof, "", "model_hash mismatch"},
		{"tampered signature", []string{"proof", "verify", tampered, "--allow-simulation"}, exitProof, "", "signature does not verify"},
		{"not a proof", []string{"proof", "verify", notProof, "--allow-simulation"}, exitProof, "", "not a proof file"},
		{"no certificate anywhere", []string{"proof", "verify", bare, "--allow-simulation"}, exitProof, "", "holds no attested certificate"},
		{"certificate given as PEM", []string{"proof", "verify", bare, "--allow-simulation", "--certificate", certPEM}, exitOK, "proof verified", ""},
		{"other certificate given", []string{"proof", "verify", good, "--allow-simulation", "--certificate", otherDER}, exitProof, "", "differs from the expected"},
		{"both input forms", []string{"proof", "verify", good, "--input", npyPath, "--input-hash", hexOf(inHash)}, exitUsage, "", "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("stdout %q should contain %q; stderr %q should contain %q", stdout, tc.stdout, stderr, tc.stderr)
			}
			if tc.code != exitOK && stdout != "" {
				t.Fatalf("stdout should be empty on failure: %q", stdout)
			}
		})
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestOutputFileName(t *testing.T) {
	tests := []struct {
		name string
		i    int
		want string
	}{
		{"y", 0, "y.npy"},
		{"logits:0", 1, "logits_0.npy"},
		{"../../etc/passwd", 2, "_._.._etc_passwd.npy"},
		{"", 3, "output_3.npy"},
		{"..", 4, "output_4.npy"},
		{"a/b", 5, "a_b.npy"},
		{"x.y", 6, "x.y.npy"},
	}
	for _, tc := range tests {
		if got := outputFileName(tc.name, tc.i); got != tc.want {
			t.Errorf("outputFileName(%q, %d) = %q, want %q", tc.name, tc.i, got, tc.want)
		}
	}
}

func TestHalfToFloat32(t *testing.T) {
	tests := []struct {
		bits uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x0000, 0}, {0x7bff, 65504}, {0x3555, 0.33325195},
		{0x0001, float32(math.Ldexp(1, -24))}, {0x8001, -float32(math.Ldexp(1, -24))},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	}
	for _, tc := range tests {
		if got := halfToFloat32(tc.bits); got != tc.want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", tc.bits, got, tc.want)
		}
	}
	if !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("0x7e00 is not NaN")
	}
}

func TestJSONValues(t *testing.T) {
	f, _ := tensor.New("f", []int64{3}, []float32{1.5, float32(math.NaN()), float32(math.Inf(-1))})
	b, _ := tensor.New("b", []int64{2}, []bool{true, false})
	i, _ := tensor.New("i", []int64{2}, []int64{-5, 1 << 40})
	u, _ := tensor.New("u", []int64{1}, []uint8{200})
	h, _ := tensor.FromBits("h", tensor.BF16, []int64{1}, []uint16{0x3fc0})
	half, _ := tensor.FromBits("half", tensor.F16, []int64{2}, []uint16{0x3c00, 0x7c00})
	tests := []struct {
		in   tensor.Tensor
		want string
	}{
		{f, `[1.5,"NaN","-Infinity"]`},
		{b, `[true,false]`},
		{i, `[-5,1099511627776]`},
		{u, `[200]`},
		{h, `[1.5]`},
		{half, `[1,"Infinity"]`},
	}
	for _, tc := range tests {
		v, err := jsonValues(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.in.Name, got, tc.want)
		}
	}
}
