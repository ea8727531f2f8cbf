//go:build cgo

package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// TestHardwareCLI: attest, upload, signed run and offline proof
// verification against a hardware-mode server whose TEE is a test double.
func TestHardwareCLI(t *testing.T) {
	now := time.Now()
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, attesttest.NewAttester(pki, now))
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw}))
	good := write("policy.toml", []byte(attesttest.PolicyTOML(attesttest.MREnclave())))
	otherMR := attesttest.MREnclave()
	otherMR[5] ^= 1
	wrong := write("wrong.toml", []byte(attesttest.PolicyTOML(otherMR)))
	model := write("mlp.onnx", testserver.Model(t, "mlp.onnx"))
	proofPath := filepath.Join(dir, "send.proof")
	conn := []string{"--host-cert", srv.HostCertPEM, "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	with := func(args ...string) []string { return append(args, conn...) }
	mr := attesttest.MREnclave()
	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, errs string
	}{
		{"attest", with("attest", srv.UntrustedAddr, "--policy", good, "--insecure-test-root-ca", root), exitOK, "mrenclave:              " + hex.EncodeToString(mr[:]), "TEST root"},
		{"attest says why the status passed", with("attest", srv.UntrustedAddr, "--policy", good, "--insecure-test-root-ca", root), exitOK, "tcb verdict:            passed: UpToDate is accepted by a BlindAI 0.5 policy", "accepting TCB statuses UpToDate, SWHardeningNeeded with ANY security advisory"},
		{"attest fresh", with("attest", srv.UntrustedAddr, "--policy", good, "--insecure-test-root-ca", root, "--fresh"), exitOK, "and nonce ", ""},
		{"attest with the wrong MRENCLAVE", with("attest", srv.UntrustedAddr, "--policy", wrong, "--insecure-test-root-ca", root), exitConnection, "", "mr_enclave"},
		{"attest against Intel's root", with("attest", srv.UntrustedAddr, "--policy", good), exitConnection, "", "pinned root"},
		{"attest without a policy", with("attest", srv.UntrustedAddr), exitUsage, "", "--policy"},
		{"info without a policy", with("info", srv.UntrustedAddr), exitConnection, "", "policy"},
		{"upload with a policy", with("upload", srv.UntrustedAddr, model, "--id", "mlp", "--sign", "--proof", proofPath, "--policy", good, "--insecure-test-root-ca", root), exitOK, "model_id: mlp", ""},
		{"proof verify", []string{"proof", "verify", proofPath, "--policy", good, "--insecure-test-root-ca", root}, exitOK, "mrenclave:            " + hex.EncodeToString(mr[:]), ""},
		{"proof verify without a policy", []string{"proof", "verify", proofPath}, exitProof, "", "policy"},
		{"proof verify with the wrong policy", []string{"proof", "verify", proofPath, "--policy", wrong, "--insecure-test-root-ca", root}, exitProof, "", "mr_enclave"},
		{"proof verify after the collateral expired", []string{"proof", "verify", proofPath, "--policy", good, "--insecure-test-root-ca", root, "--at", now.AddDate(0, 2, 0).UTC().Format(time.RFC3339)}, exitProof, "", "stale"},
		{"proof verify with a bad time", []string{"proof", "verify", proofPath, "--policy", good, "--at", "yesterday"}, exitUsage, "", "RFC 3339"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.errs) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
}

// TestPolicyFromSigstructCLI signs a SIGSTRUCT with an RSA-3072 key of
// exponent 3 and turns it into a policy with the CLI.
func TestPolicyFromSigstructCLI(t *testing.T) {
	dir := t.TempDir()
	var mr [32]byte
	for i := range mr {
		mr[i] = byte(0x30 + i)
	}
	sig := filepath.Join(dir, "blindfold-server.sig")
	if err := os.WriteFile(sig, signedSigstruct(t, mr), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "policy.toml")
	if code, _, errOut := runCLI(t, "policy", "from-sigstruct", sig, "-o", out); code != exitOK {
		t.Fatalf("from-sigstruct: exit %d: %s", code, errOut)
	}
	code, shown, errOut := runCLI(t, "policy", "show", out)
	if code != exitOK || !strings.Contains(shown, `mr_enclave = "`+hex.EncodeToString(mr[:])+`"`) || !strings.Contains(shown, "allow_debug = false") {
		t.Fatalf("policy show: exit %d\n%s\n%s", code, shown, errOut)
	}
	// The BlindAI 0.6 manifest.toml beside it pins the same enclave, and
	// policy show reads it.
	manifest := filepath.Join(dir, "manifest.toml")
	mtext, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatalf("from-sigstruct -o wrote no manifest.toml: %v", err)
	}
	if !strings.Contains(string(mtext), `mr_enclave = "`+hex.EncodeToString(mr[:])+`"`) || strings.Contains(string(mtext), "accepted_tcb_statuses") {
		t.Fatalf("manifest.toml:\n%s", mtext)
	}
	code, shown, errOut = runCLI(t, "policy", "show", manifest)
	if code != exitOK || !strings.Contains(shown, `mr_enclave = "`+hex.EncodeToString(mr[:])+`"`) || !strings.Contains(shown, "BlindAI 0.5 format") {
		t.Fatalf("policy show manifest.toml: exit %d\n%s\n%s", code, shown, errOut)
	}
	other := filepath.Join(dir, "m06.toml")
	if code, _, errOut := runCLI(t, "policy", "from-sigstruct", sig, "-manifest", other); code != exitOK {
		t.Fatalf("from-sigstruct -manifest: exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(other); err != nil || !strings.Contains(string(b), hex.EncodeToString(mr[:])) {
		t.Fatalf("-manifest: %v\n%s", err, b)
	}
	bad, _ := os.ReadFile(sig)
	bad[960] ^= 1 // MRENCLAVE no longer matches the signature
	if err := os.WriteFile(sig, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "policy", "from-sigstruct", sig); code == exitOK || !strings.Contains(errOut, "SIGSTRUCT") {
		t.Fatalf("tampered SIGSTRUCT: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "policy", "show", filepath.Join(dir, "absent.toml")); code != exitIO {
		t.Fatalf("missing policy: exit %d", code)
	}
}

// signedSigstruct builds a SIGSTRUCT (1808 bytes) shaped like
// gramine-sgx-sign's for mrenclave and signs it.
func signedSigstruct(t *testing.T, mrenclave [32]byte) []byte {
	t.Helper()
	k := rsaE3(t)
	le := func(n *big.Int) []byte {
		b := n.FillBytes(make([]byte, 384))
		slices.Reverse(b)
		return b
	}
	b := make([]byte, 1808)
	copy(b[0:], []byte{0x06, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0})
	binary.LittleEndian.PutUint32(b[20:], 0x20260301)
	copy(b[24:], []byte{0x01, 0x01, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 0x01, 0, 0, 0})
	copy(b[128:], le(k.N))
	binary.LittleEndian.PutUint32(b[512:], 3)
	binary.LittleEndian.PutUint32(b[904:], 0xffffffff)         // MISCMASK
	binary.LittleEndian.PutUint64(b[928:], 0x4)                // ATTRIBUTES.FLAGS: MODE64BIT
	binary.LittleEndian.PutUint64(b[936:], 0x3)                // XFRM
	binary.LittleEndian.PutUint64(b[944:], 0xfffffffffffffffd) // flags mask
	binary.LittleEndian.PutUint64(b[952:], 0xffffffffffffff1b) // XFRM mask
	copy(b[960:], mrenclave[:])
	h := sha256.New()
	h.Write(b[0:128])
	h.Write(b[900:1028])
	s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	sig := new(big.Int).SetBytes(s)
	copy(b[516:], le(sig))
	s2 := new(big.Int).Mul(sig, sig)
	q1 := new(big.Int).Quo(s2, k.N)
	s3 := new(big.Int).Mul(s2, sig)
	q2 := new(big.Int).Quo(s3.Sub(s3, new(big.Int).Mul(new(big.Int).Mul(q1, sig), k.N)), k.N)
	copy(b[1040:], le(q1))
	copy(b[1424:], le(q2))
	return b
}

// rsaE3 makes an RSA-3072 key with public exponent 3, as SGX requires.
func rsaE3(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	e, one := big.NewInt(3), big.NewInt(1)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1536)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(new(big.Int).Sub(p, one), e).Sign() != 0 {
				return p
			}
		}
	}
	for {
		p, q := prime(), prime()
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != 3072 {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: new(big.Int).ModInverse(e, phi), Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			t.Fatal(err)
		}
		return k
	}
}
