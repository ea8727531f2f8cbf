package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
)

// hwProof is a hardware proof made with the synthetic SGX PKI, written to
// a test's folder with what verifies it.
type hwProof struct {
	issued    time.Time // when its PKI and collateral were made
	pki       *sgxtest.PKI
	id        *identity.Attested
	ev        *sgxtest.Evidence
	fmspc     [6]byte // its platform's
	simPath   string  // the simulation proof of the same run
	proofPath string  // the hardware proof
	root      string  // the PKI's root certificate (PEM)
	policy    string  // a policy.toml that accepts it (UpToDate only)
}

// hardwareProof writes, in dir, the proof of a run of model m1 on inputs
// with evidence from the synthetic PKI issued on 2026-03-01.
func hardwareProof(t *testing.T, dir string, inputs ...[]byte) *hwProof {
	t.Helper()
	h := &hwProof{issued: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var err error
	if h.pki, err = sgxtest.NewPKI(h.issued); err != nil {
		t.Fatal(err)
	}
	if h.id, err = identity.NewAttested(); err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(h.pki, h.issued)
	b.ReportBody.ReportData = attest.ReportData(h.id.DER, nil)
	if h.ev, err = b.Build(); err != nil {
		t.Fatal(err)
	}
	h.fmspc = b.FMSPC
	h.simPath = writeProof(t, dir, h.id, "m1", inputs...)
	sim, err := proof.ReadFile(h.simPath)
	if err != nil {
		t.Fatal(err)
	}
	payload := sim.GetPayload()
	pf := proof.New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: h.ev.Quote, Collateral: sgx.CollateralToProto(h.ev.Collateral), EnclaveHeldData: h.id.DER}, payload, h.id.Sign(payload))
	h.proofPath = filepath.Join(dir, "hw.proof")
	if err := proof.WriteFile(h.proofPath, pf); err != nil {
		t.Fatal(err)
	}
	h.root = writeFile(t, dir, "root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.pki.Root.Raw}))
	h.policy = writeFile(t, dir, "policy.toml", []byte(attesttest.PolicyTOML(attesttest.MREnclave())+"accepted_tcb_statuses = [\"UpToDate\"]\n"))
	return h
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
