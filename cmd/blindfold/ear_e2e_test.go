//go:build cgo

package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// TestAttestEAR: attest --format ear against a hardware-mode server whose
// TEE is a test double prints the EAR of the evidence verified at
// connection (none: a test root; the nonce of --fresh in eat_nonce), signed
// with --ear-key, and a contraindicated EAR when the evidence is refused.
func TestAttestEAR(t *testing.T) {
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
	key, _, _, pub := earKeys(t, dir)
	conn := []string{"--host-cert", srv.HostCertPEM, "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	attest := func(args ...string) (int, string, string) {
		return runCLI(t, append(append([]string{"attest", srv.UntrustedAddr}, args...), conn...)...)
	}
	mr := attesttest.MREnclave()

	t.Run("fresh", func(t *testing.T) {
		code, out, errOut := attest("--policy", good, "--insecure-test-root-ca", root, "--fresh", "--format", "ear")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		p, e := r.Submods[ear.SubmodPlatform], r.Submods[ear.SubmodEnclave]
		if p == nil || e == nil || p.Status != ear.StatusNone || e.Status != ear.StatusNone || len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], "TEST ROOT") {
			t.Fatalf("%s", out)
		}
		nonce, err := base64.RawURLEncoding.DecodeString(r.Nonce)
		if err != nil || len(nonce) != 32 || p.Evidence["nonce"] != hex.EncodeToString(nonce) {
			t.Fatalf("eat_nonce %q, platform nonce %v: %v", r.Nonce, p.Evidence["nonce"], err)
		}
		if e.Evidence["mrenclave"] != hex.EncodeToString(mr[:]) || e.Evidence["attested-certificate-sha256"] == nil || len(r.RawEvidence) == 0 {
			t.Fatalf("enclave evidence %v", e.Evidence)
		}
	})
	t.Run("signed", func(t *testing.T) {
		code, out, errOut := attest("--policy", good, "--insecure-test-root-ca", root, "--format", "ear-jwt", "--ear-key", key)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if r := parseEAR(t, out, pub); r.Nonce != "" || r.Submods[ear.SubmodEnclave].Evidence["mrenclave"] != hex.EncodeToString(mr[:]) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("another enclave", func(t *testing.T) {
		code, out, errOut := attest("--policy", wrong, "--insecure-test-root-ca", root, "--format", "ear")
		if code != exitConnection || !strings.Contains(errOut, "mr_enclave") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		if e := r.Submods[ear.SubmodEnclave]; e == nil || e.Status != ear.StatusContraindicated || e.TrustVector == nil || e.TrustVector.Executables != 33 {
			t.Fatalf("%s", out)
		}
		if r.Submods[ear.SubmodPlatform].Status != ear.StatusContraindicated {
			t.Fatalf("%s", out)
		}
	})
	t.Run("Intel's root", func(t *testing.T) {
		code, out, errOut := attest("--policy", good, "--format", "ear")
		if code != exitConnection || !strings.Contains(errOut, "pinned root") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		r := parseEAR(t, out, nil)
		if p := r.Submods[ear.SubmodPlatform]; p.Status != ear.StatusContraindicated || p.TrustVector == nil || p.TrustVector.InstanceIdentity != 99 {
			t.Fatalf("%s", out)
		}
	})
	t.Run("no server", func(t *testing.T) {
		// A connection that fails before any evidence: no EAR, only the
		// error.
		code, out, errOut := runCLI(t, "attest", "127.0.0.1:1", "--policy", good, "--insecure-trust-on-first-use", "--format", "ear", "--timeout", "5s")
		if code == exitOK || out != "" || errOut == "" {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
	})
}
