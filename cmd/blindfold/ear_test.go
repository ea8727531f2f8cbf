package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/proof"
)

// earKeys writes an ECDSA P-256 key as PKCS #8 and as SEC 1, and a P-384
// key, and returns their paths and the P-256 public key.
func earKeys(t *testing.T, dir string) (pkcs8, sec1, p384 string, pub *ecdsa.PublicKey) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d384, err := x509.MarshalECPrivateKey(k384)
	if err != nil {
		t.Fatal(err)
	}
	return write("ear.pem", "PRIVATE KEY", d8), write("ear-sec1.pem", "EC PRIVATE KEY", d1), write("p384.pem", "EC PRIVATE KEY", d384), &k.PublicKey
}

// parseEAR parses the EAR a command printed: a JSON claims set, or a JWT
// when pub is given.
func parseEAR(t *testing.T, out string, pub *ecdsa.PublicKey) *ear.Result {
	t.Helper()
	var r *ear.Result
	var err error
	if pub != nil {
		if strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.Count(out, ".") != 2 {
			t.Fatalf("not one JWT:\n%s", out)
		}
		r, err = ear.VerifyJWT(strings.TrimSpace(out), pub)
	} else {
		r, err = ear.Parse([]byte(out))
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return r
}

// TestProofVerifyEAR: proof verify --format ear prints the EAR of a
// hardware proof made with the synthetic SGX PKI (none: a test root), of a
// simulation proof, and of refused proofs (contraindicated, and the
// command fails); signed with --ear-key it verifies with the public key.
func TestProofVerifyEAR(t *testing.T) {
	dir := t.TempDir()
	h := hardwareProof(t, dir, []byte("input"))
	issued, ev, simPath, proofPath, root, pol := h.issued, h.ev, h.simPath, h.proofPath, h.root, h.policy
	write := func(name string, data []byte) string { return writeFile(t, dir, name, data) }
	otherMR := attesttest.MREnclave()
	otherMR[3] ^= 1
	wrong := write("wrong.toml", []byte(attesttest.PolicyTOML(otherMR)+"accepted_tcb_statuses = [\"UpToDate\"]\n"))
	pkcs8, sec1, p384, pub := earKeys(t, dir)
	base := []string{"proof", "verify", proofPath, "--insecure-test-root-ca", root, "--at", issued.Format(time.RFC3339)}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	t.Run("hardware proof", func(t *testing.T) {
		code, out, errOut := runCLI(t, with("--policy", pol, "--format", "ear")...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		if len(r.Submods) != 3 || r.Status() != ear.StatusNone || string(r.RawEvidence) != string(ev.Quote) {
			t.Fatalf("%s", out)
		}
		for name, a := range r.Submods {
			if a.Status != ear.StatusNone {
				t.Errorf("%s: %s", name, a.Status)
			}
		}
		if w := r.Submods[ear.SubmodPlatform].Warnings; len(w) != 1 || !strings.HasPrefix(w[0], "TEST ROOT") {
			t.Errorf("platform warnings %q", w)
		}
		h := proof.NewInputHasher()
		h.Write([]byte("input"))
		m := r.Submods[ear.SubmodModel]
		if m.Evidence["model-id"] != "m1" || m.Evidence["kind"] != "run_model" || m.Evidence["input-hash"] != hex.EncodeToString(h.Sum()) {
			t.Errorf("model evidence %v", m.Evidence)
		}
		mr := attesttest.MREnclave()
		if r.Submods[ear.SubmodEnclave].Evidence["mrenclave"] != hex.EncodeToString(mr[:]) {
			t.Errorf("enclave evidence %v", r.Submods[ear.SubmodEnclave].Evidence)
		}
		if r.VerifierID.Build == "" || !strings.HasPrefix(r.VerifierID.Build, "blindfold ") {
			t.Errorf("verifier id %+v", r.VerifierID)
		}
		if strings.Contains(out, "proof verified") {
			t.Error("the text output came with the EAR")
		}
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"signed with --format ear-jwt", []string{"--format", "ear-jwt", "--ear-key", pkcs8}},
		{"signed with --format ear and --ear-key", []string{"--format", "ear", "--ear-key", sec1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, with(append([]string{"--policy", pol}, tc.args...)...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			r := parseEAR(t, out, pub)
			if r.Submods[ear.SubmodModel].Evidence["model-id"] != "m1" {
				t.Fatalf("%+v", r.Submods)
			}
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if _, err := ear.VerifyJWT(strings.TrimSpace(out), &other.PublicKey); err == nil {
				t.Fatal("verified with another key")
			}
		})
	}
	t.Run("refused: another enclave", func(t *testing.T) {
		code, out, errOut := runCLI(t, with("--policy", wrong, "--format", "ear")...)
		if code != exitProof || !strings.Contains(errOut, "mr_enclave") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		for _, name := range []string{ear.SubmodPlatform, ear.SubmodEnclave, ear.SubmodModel} {
			if a := r.Submods[name]; a == nil || a.Status != ear.StatusContraindicated {
				t.Fatalf("%s: %+v", name, a)
			}
		}
		if tv := r.Submods[ear.SubmodEnclave].TrustVector; tv == nil || tv.Executables != 33 {
			t.Errorf("enclave vector %+v", tv)
		}
	})
	t.Run("refused: another model, signed", func(t *testing.T) {
		code, out, errOut := runCLI(t, with("--policy", pol, "--model-id", "m2", "--format", "ear-jwt", "--ear-key", pkcs8)...)
		if code != exitProof || !strings.Contains(errOut, "model_id") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, pub)
		if r.Status() != ear.StatusContraindicated || r.Submods[ear.SubmodModel].Status != ear.StatusContraindicated {
			t.Fatalf("%+v", r.Submods)
		}
	})
	t.Run("simulation proof", func(t *testing.T) {
		code, out, errOut := runCLI(t, "proof", "verify", simPath, "--allow-simulation", "--format", "ear")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		p := r.Submods[ear.SubmodPlatform]
		if r.Status() != ear.StatusNone || p.TrustVector != nil || len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], "SIMULATION") {
			t.Fatalf("%s", out)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		code int
		errs string
	}{
		{"unknown format", []string{"--format", "xml"}, exitUsage, "want text, ear or ear-jwt"},
		{"jwt without a key", []string{"--format", "ear-jwt"}, exitUsage, "needs --ear-key"},
		{"key with text", []string{"--ear-key", pkcs8}, exitUsage, "--format ear-jwt"},
		{"missing key", []string{"--format", "ear-jwt", "--ear-key", filepath.Join(dir, "none.pem")}, exitIO, "--ear-key"},
		{"P-384 key", []string{"--format", "ear-jwt", "--ear-key", p384}, exitIO, "P-256"},
		{"not a key", []string{"--format", "ear-jwt", "--ear-key", root}, exitIO, "CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, with(append([]string{"--policy", pol}, tc.args...)...)...)
			if code != tc.code || !strings.Contains(errOut, tc.errs) || out != "" {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
}
