package main

import (
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestPolicyWithSimulationRefused: --policy with --simulation is a usage
// error naming both, for every networked command, before any dialing (the
// address here would not answer).
func TestPolicyWithSimulationRefused(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte(attesttest.PolicyTOML(attesttest.MREnclave())), 0o600); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(model, []byte("model bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	x, err := tensor.New("x", []int64{2}, []float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(dir, "x.npy")
	f, err := os.Create(npy)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPY(f, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, args := range [][]string{
		{"run", "127.0.0.1:1", "m", "--input", "x=" + npy},
		{"info", "127.0.0.1:1"},
		{"upload", "127.0.0.1:1", model},
		{"delete", "127.0.0.1:1", "m"},
	} {
		args = append(args, "--insecure-trust-on-first-use", "--policy", pol, "--simulation")
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "--policy and --simulation") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestPolicyShowVerdicts: policy show says what each status gets and why,
// and warns about what a BlindAI 0.5 policy accepts.
func TestPolicyShowVerdicts(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "blindai.toml")
	if err := os.WriteFile(old, []byte(attesttest.PolicyTOML(attesttest.MREnclave())), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "policy", "show", old)
	if code != exitOK || !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "BlindAI 0.5") || !strings.Contains(errOut, "ANY security advisory") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "SWHardeningNeeded                  accepted with ANY advisory") || !strings.Contains(out, "Revoked                            refused, always") {
		t.Errorf("stdout lacks the verdicts:\n%s", out)
	}
	gen := filepath.Join(dir, "generated.toml")
	text := attesttest.PolicyTOML(attesttest.MREnclave()) + "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00615\"]\n"
	if err := os.WriteFile(gen, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "policy", "show", gen)
	if code != exitOK || errOut != "" || !strings.Contains(out, "SWHardeningNeeded                  accepted only if every open advisory is one of INTEL-SA-00615") ||
		!strings.Contains(out, "OutOfDate                          refused (not in accepted_tcb_statuses)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// A policy written before, with SWHardeningNeeded and no advisories, is
	// refused with what to do.
	if err := os.WriteFile(gen, []byte(attesttest.PolicyTOML(attesttest.MREnclave())+"accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = runCLI(t, "policy", "show", gen); code != exitUsage || !strings.Contains(errOut, "accepted_advisory_ids") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestProofVerifyCollateral: proof verify checks a hardware proof with its
// own collateral by default, and with collateral the verifier supplies
// (a file or a PCCS) when asked; newer collateral whose PCK CRL revokes the
// proof's PCK certificate refuses the proof.
func TestProofVerifyCollateral(t *testing.T) {
	dir := t.TempDir()
	h := hardwareProof(t, dir)
	issued, pki, ev, simPath, proofPath, root, pol := h.issued, h.pki, h.ev, h.simPath, h.proofPath, h.root, h.policy
	write := func(name string, data []byte) string { return writeFile(t, dir, name, data) }
	later := issued.AddDate(0, 0, 20)
	reissue := func(revoke bool) *sgx.Collateral {
		nb := sgxtest.NewBuilder(pki, later)
		if revoke {
			nb.PCKCRL.Revoked = []*big.Int{ev.PCK.SerialNumber}
		}
		c, err := ev.Reissue(nb)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	asJSON := func(name string, c *sgx.Collateral) string {
		b, err := protojson.Marshal(sgx.CollateralToProto(c))
		if err != nil {
			t.Fatal(err)
		}
		return write(name, b)
	}
	fresh, revoked := asJSON("fresh.json", reissue(false)), asJSON("revoked.json", reissue(true))
	pccs := pccstest.New(t, reissue(true), h.fmspc, "processor")
	at := later.Format(time.RFC3339)
	base := []string{"proof", "verify", proofPath, "--policy", pol, "--insecure-test-root-ca", root, "--at", at}
	tests := []struct {
		name         string
		extra        []string
		code         int
		stdout, errs string
	}{
		{"own collateral", nil, exitOK, "collateral:           the proof's own", ""},
		{"own collateral, verdict", nil, exitOK, "tcb verdict:          passed: UpToDate is listed in accepted_tcb_statuses; no advisory is open", ""},
		{"fresh collateral file", []string{"--collateral", fresh}, exitOK, "collateral:           from " + fresh, ""},
		{"fresh collateral issued", []string{"--collateral", fresh}, exitOK, "collateral issued:    " + later.Add(-time.Hour).Format(time.RFC3339), ""},
		{"revoking collateral file", []string{"--collateral", revoked}, exitProof, "", "certificate revoked"},
		{"revoking collateral names its source", []string{"--collateral", revoked}, exitProof, "", "collateral: from " + revoked},
		{"revoking collateral from a PCCS", []string{"--pccs-url", pccs.URL}, exitProof, "", "certificate revoked"},
		{"PCCS named", []string{"--pccs-url", pccs.URL}, exitProof, "", "fetched from " + pccs.URL},
		{"both sources", []string{"--collateral", fresh, "--pccs-url", pccs.URL}, exitUsage, "", "not several"},
		{"missing file", []string{"--collateral", filepath.Join(dir, "none.json")}, exitIO, "", "--collateral"},
		{"not collateral", []string{"--collateral", root}, exitIO, "", "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.extra...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.errs) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
	// The dcap-qvl collateral shape is read too (here without a valid
	// signature: the file is read, the verifier refuses it).
	qvl := write("qvl.json", []byte(`{"pck_crl_issuer_chain":"","root_ca_crl":"","pck_crl":"","tcb_info_issuer_chain":"","tcb_info":"{}","tcb_info_signature":"00","qe_identity_issuer_chain":"","qe_identity":"{}","qe_identity_signature":"00"}`))
	if code, _, errOut := runCLI(t, append(append([]string{}, base...), "--collateral", qvl)...); code != exitProof || !strings.Contains(errOut, "collateral: from "+qvl) {
		t.Fatalf("dcap-qvl shape: exit %d, stderr %q", code, errOut)
	}
	// A simulation proof has no evidence to check against collateral.
	if code, _, errOut := runCLI(t, "proof", "verify", simPath, "--allow-simulation", "--collateral", fresh); code != exitUsage || !strings.Contains(errOut, "simulation proof") {
		t.Fatalf("simulation proof with --collateral: exit %d, stderr %q", code, errOut)
	}
}

// TestProofVerifyNamesCertificateFlag: a simulation proof without its
// certificate is refused with the CLI's flag named, not a Go option.
func TestProofVerifyNamesCertificateFlag(t *testing.T) {
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := proof.ReadFile(writeProof(t, t.TempDir(), id, "m1"))
	if err != nil {
		t.Fatal(err)
	}
	bare := &prooffiles.ResponseProof{Payload: sim.GetPayload(), Signature: sim.GetSignature()}
	path := filepath.Join(t.TempDir(), "bare.proof")
	if err := proof.WriteFile(path, bare); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "proof", "verify", path, "--allow-simulation")
	if code != exitProof || !strings.Contains(errOut, "--certificate FILE") || strings.Contains(errOut, "VerifyOptions") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
