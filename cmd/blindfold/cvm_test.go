package main

import (
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
)

// TestProofVerifyTDX: proof verify checks a proof carrying TDX evidence
// against a [tdx] policy and prints the verified claims; a policy pinning
// another MRTD refuses it.
func TestProofVerifyTDX(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	b := tdxtest.NewBuilder(pki, now)
	b.Body.ReportData = attest.ReportData(id.DER, nil)
	q, c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tdx.EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := proto.Marshal(&securedexchange.Payload{
		Header:  &securedexchange.PayloadHeader{},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{InputHash: make([]byte, 32), ModelId: "m1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pf := proof.FromEvidence(&attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}, id.DER, payload, id.Sign(payload))
	proofPath := filepath.Join(dir, "tdx.proof")
	if err := proof.WriteFile(proofPath, pf); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw}))
	m := tdxtest.MRTD()
	good := write("good.toml", []byte("[tdx]\nmrtd = [\""+hex.EncodeToString(m[:])+"\"]\n"))
	m[0] ^= 1
	bad := write("bad.toml", []byte("[tdx]\nmrtd = [\""+hex.EncodeToString(m[:])+"\"]\n"))
	at := now.Format(time.RFC3339)

	code, out, errOut := runCLI(t, "proof", "verify", proofPath, "--policy", good, "--insecure-test-root-ca", root, "--at", at)
	want := tdxtest.MRTD()
	if code != exitOK || !strings.Contains(out, "evidence:             tdx") || !strings.Contains(out, hex.EncodeToString(want[:])) || !strings.Contains(out, "rtmr1:") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "proof", "verify", proofPath, "--policy", bad, "--insecure-test-root-ca", root, "--at", at); code != exitProof || !strings.Contains(errOut, "tdx.mrtd") {
		t.Fatalf("another MRTD: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
