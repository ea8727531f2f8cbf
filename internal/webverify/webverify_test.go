package webverify_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/webverify"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
)

var (
	fixOnce sync.Once
	fix     *fixtures
)

// shared returns the fixtures, made once per test binary.
func shared(t testing.TB) *fixtures {
	t.Helper()
	fixOnce.Do(func() { fix = newFixtures(t) })
	if fix == nil {
		t.Fatal("the fixtures could not be made (see the first test that failed)")
	}
	return fix
}

func testRootCert(t testing.TB, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ids returns the ids of the checks with status st, in order.
func ids(r *webverify.Report, st webverify.Status) []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == st {
			out = append(out, c.ID)
		}
	}
	return out
}

func TestVerify(t *testing.T) {
	f := shared(t)
	root := testRootCert(t, f.testRoot)
	strictReal := strings.Replace(string(f.realPolicy), `accepted_tcb_statuses = ["UpToDate", "ConfigurationAndSWHardeningNeeded"]`, `accepted_tcb_statuses = ["UpToDate"]`, 1)
	otherEnclave := strings.Replace(string(f.realPolicy), "mr_enclave = \"", "mr_enclave = \"00", 1)
	otherEnclave = strings.Replace(otherEnclave, "\"\nmr_signer", "\"\nmr_signer", 1)
	otherEnclave = otherEnclave[:len("mr_enclave = \"")+64] + otherEnclave[len("mr_enclave = \"")+66:]
	blindAI := strings.Split(string(f.synthPolicy), "accepted_tcb_statuses")[0]
	inputHash := proof.InputHash([]*securedexchange.TensorData{{BytesData: []byte("input bytes")}})
	sgxPassed := []string{"proof-file", "policy-file", "platform", "quote", "pck-chain", "quote-signature", "qe-identity", "tcb-info", "crls", "collateral-dates", "enclave", "tcb-status", "collateral-policy"}
	allPassed := append(slices.Clone(sgxPassed), "binding", "signing-key", "signature", "payload")
	tests := []struct {
		name            string
		proof, policy   []byte
		opts            webverify.Options
		verdict         string
		failed, passed  []string
		warned, skipped []string
		detail          string // in the first failed (or, if none, the payload) check
	}{
		{
			name: "real quote: all hardware checks pass, the certificate is not bound", proof: f.realProof, policy: f.realPolicy,
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused,
			failed: []string{"binding"}, passed: sgxPassed, skipped: []string{"signing-key", "signature", "payload"},
			detail: "SHA-256 of the certificate",
		},
		{
			name: "real quote, one byte of its signature changed", proof: f.realTampered, policy: f.realPolicy,
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused,
			failed: []string{"quote-signature"}, passed: []string{"proof-file", "policy-file", "platform", "quote", "pck-chain"},
			skipped: []string{"qe-identity", "tcb-info", "crls", "collateral-dates", "enclave", "tcb-status", "collateral-policy", "binding", "signing-key", "signature", "payload"},
			detail:  "not signed by the attestation key",
		},
		{
			name: "real quote after its collateral expired", proof: f.realProof, policy: f.realPolicy,
			opts: webverify.Options{Now: realNextUpdate.Add(24 * time.Hour)}, verdict: webverify.Refused,
			failed: []string{"qe-identity", "collateral-dates"}, passed: []string{"quote", "pck-chain", "quote-signature"},
			skipped: []string{"tcb-info", "crls", "enclave", "binding", "signature"},
			detail:  "expired",
		},
		{
			name: "real quote before its collateral was issued", proof: f.realProof, policy: f.realPolicy,
			opts: webverify.Options{Now: realIssued.Add(-24 * time.Hour)}, verdict: webverify.Refused,
			failed: []string{"qe-identity", "collateral-dates"}, passed: []string{"quote-signature"},
			detail: "not yet valid",
		},
		{
			name: "real quote, newer collateral demanded by the policy", proof: f.realProof, policy: append(slices.Clone(f.realPolicy), "min_tcb_evaluation_data_number = 100\n"...),
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused,
			failed: []string{"qe-identity", "collateral-dates"}, passed: []string{"quote-signature"}, skipped: []string{"tcb-info", "enclave"},
			detail: "tcbEvaluationDataNumber 17, want at least 100",
		},
		{
			name: "real quote, another enclave pinned", proof: f.realProof, policy: []byte(otherEnclave),
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused,
			failed: []string{"enclave"}, passed: []string{"crls", "collateral-dates"}, skipped: []string{"tcb-status", "binding"},
			detail: "mr_enclave",
		},
		{
			name: "real quote, its TCB status not accepted", proof: f.realProof, policy: []byte(strictReal),
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused,
			failed: []string{"tcb-status"}, passed: []string{"enclave"}, skipped: []string{"collateral-policy", "binding"},
			detail: "ConfigurationAndSWHardeningNeeded",
		},
		{
			name: "synthetic proof under its test root", proof: f.synthProof, policy: f.synthPolicy,
			opts: webverify.Options{Now: synthAt, TestRoot: root}, verdict: webverify.Verified,
			passed: allPassed, detail: "input_hash",
		},
		{
			name: "synthetic proof, the expected model and input", proof: f.synthProof, policy: f.synthPolicy,
			opts:    webverify.Options{Now: synthAt, TestRoot: root, ModelID: "synthetic-model", InputHash: inputHash},
			verdict: webverify.Verified, passed: append(slices.Clone(allPassed), "expected"), detail: "input_hash",
		},
		{
			name: "synthetic proof, another model expected", proof: f.synthProof, policy: f.synthPolicy,
			opts:    webverify.Options{Now: synthAt, TestRoot: root, ModelID: "another-model"},
			verdict: webverify.Refused, failed: []string{"expected"}, passed: allPassed, detail: "model_id mismatch",
		},
		{
			name: "synthetic run proof, a model hash expected", proof: f.synthProof, policy: f.synthPolicy,
			opts:    webverify.Options{Now: synthAt, TestRoot: root, ModelHash: make([]byte, 32)},
			verdict: webverify.Refused, failed: []string{"expected"}, passed: allPassed, detail: "model_hash",
		},
		{
			name: "simulation proof allowed, another input expected", proof: f.simProof,
			opts:    webverify.Options{AllowSimulation: true, InputHash: make([]byte, 32)},
			verdict: webverify.Refused, failed: []string{"expected"}, passed: []string{"signature", "payload"}, detail: "input_hash mismatch",
		},
		{
			name: "synthetic proof, BlindAI 0.5 policy", proof: f.synthProof, policy: []byte(blindAI),
			opts: webverify.Options{Now: synthAt, TestRoot: root}, verdict: webverify.Verified,
			warned: []string{"policy-file", "tcb-status"}, passed: []string{"enclave", "binding", "signature"},
			detail: "synthetic-model",
		},
		{
			name: "synthetic proof against the pinned Intel root", proof: f.synthProof, policy: f.synthPolicy,
			opts: webverify.Options{Now: synthAt}, verdict: webverify.Refused,
			failed: []string{"pck-chain"}, passed: []string{"quote"}, skipped: []string{"quote-signature", "signature"},
			detail: "pinned root",
		},
		{
			name: "synthetic proof, one payload byte flipped", proof: f.synthFlipped, policy: f.synthPolicy,
			opts: webverify.Options{Now: synthAt, TestRoot: root}, verdict: webverify.Refused,
			failed: []string{"signature"}, passed: append(slices.Clone(sgxPassed), "binding", "signing-key"), skipped: []string{"payload"},
			detail: "does not verify",
		},
		{
			name: "simulation proof refused", proof: f.simProof,
			verdict: webverify.Refused, failed: []string{"platform"}, skipped: []string{"signature"},
			detail: "simulation mode",
		},
		{
			name: "simulation proof allowed", proof: f.simProof, opts: webverify.Options{AllowSimulation: true},
			verdict: webverify.VerifiedSimulation, warned: []string{"platform"}, passed: []string{"proof-file", "signing-key", "signature", "payload"},
			detail: "simulated-model",
		},
		{
			name: "TDX proof under its test root", proof: f.tdxProof, policy: f.tdxPolicy,
			opts: webverify.Options{Now: synthAt, TestRoot: f.tdxRoot}, verdict: webverify.Verified,
			passed: []string{"proof-file", "policy-file", "platform", "evidence", "binding", "signing-key", "signature", "payload"},
			detail: "tdx-model",
		},
		{
			name: "TDX proof whose report data binds another certificate", proof: f.tdxUnbound, policy: f.tdxPolicy,
			opts: webverify.Options{Now: synthAt, TestRoot: f.tdxRoot}, verdict: webverify.Refused,
			failed: []string{"binding"}, passed: []string{"evidence"}, skipped: []string{"signing-key", "signature", "payload"},
			detail: "SHA-256 of the certificate",
		},
		{
			name: "TDX proof, another MRTD pinned", proof: f.tdxProof, policy: []byte("[tdx]\nmrtd = [\"" + strings.Repeat("ab", 48) + "\"]\n"),
			opts: webverify.Options{Now: synthAt, TestRoot: f.tdxRoot}, verdict: webverify.Refused,
			failed: []string{"evidence"}, skipped: []string{"binding", "signature"}, detail: "mrtd",
		},
		{
			name: "TDX proof after its collateral expired", proof: f.tdxProof, policy: f.tdxPolicy,
			opts: webverify.Options{Now: synthIssued.AddDate(0, 2, 0), TestRoot: f.tdxRoot}, verdict: webverify.Refused,
			failed: []string{"evidence", "collateral-dates"}, skipped: []string{"binding"},
		},
		{
			name: "TDX proof, SGX-only policy", proof: f.tdxProof, policy: f.synthPolicy,
			opts: webverify.Options{Now: synthAt, TestRoot: f.tdxRoot}, verdict: webverify.Refused,
			failed: []string{"platform"}, detail: "accepts only",
		},
		{
			name: "not a proof file", proof: []byte("this is not a proof"), policy: f.realPolicy,
			verdict: webverify.Refused, failed: []string{"proof-file"}, detail: "not a proof file",
		},
		{
			name: "proof file too large", proof: make([]byte, webverify.MaxProofBytes+1), policy: f.realPolicy,
			verdict: webverify.Refused, failed: []string{"proof-file"}, detail: "more than",
		},
		{
			name: "hardware proof without a policy", proof: f.realProof,
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused, failed: []string{"policy-file"}, detail: "policy",
		},
		{
			name: "invalid policy", proof: f.realProof, policy: []byte("mr_enclave = \"zz\"\n"),
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused, failed: []string{"policy-file"}, detail: "mr_enclave",
		},
		{
			name: "policy file too large", proof: f.realProof, policy: []byte(strings.Repeat("#", webverify.MaxPolicyBytes+1)),
			opts: webverify.Options{Now: realAt}, verdict: webverify.Refused, failed: []string{"policy-file"}, detail: "more than",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := webverify.Verify(tc.proof, tc.policy, tc.opts)
			if r.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s (error %q, checks %+v)", r.Verdict, tc.verdict, r.Error, r.Checks)
			}
			if got := ids(r, webverify.Fail); !slices.Equal(got, tc.failed) {
				t.Errorf("failed checks %v, want %v (checks %+v)", got, tc.failed, r.Checks)
			}
			status := map[string]webverify.Status{}
			for _, c := range r.Checks {
				if _, dup := status[c.ID]; dup {
					t.Errorf("check %s listed twice", c.ID)
				}
				status[c.ID] = c.Status
				if c.Title == "" {
					t.Errorf("check %s has no title", c.ID)
				}
			}
			for st, list := range map[webverify.Status][]string{webverify.Pass: tc.passed, webverify.Warn: tc.warned, webverify.NotChecked: tc.skipped} {
				for _, id := range list {
					if status[id] != st {
						t.Errorf("check %s is %q, want %q", id, status[id], st)
					}
				}
			}
			var focus webverify.Check
			for _, c := range r.Checks {
				if c.Status == webverify.Fail || (len(tc.failed) == 0 && c.ID == "payload") {
					focus = c
					break
				}
			}
			if !strings.Contains(focus.Detail, tc.detail) {
				t.Errorf("check %s says %q, want it to mention %q", focus.ID, focus.Detail, tc.detail)
			}
			if (r.Verdict == webverify.Refused) != (r.Error != "") {
				t.Errorf("verdict %s with error %q", r.Verdict, r.Error)
			}
			if tc.opts.TestRoot != nil && !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "TEST root") }) {
				t.Errorf("no test root warning in %q", r.Warnings)
			}
			if tc.opts.AllowSimulation && !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "SIMULATION") }) {
				t.Errorf("no simulation warning in %q", r.Warnings)
			}
			// The verdict is proof.Verify's.
			if want := agrees(t, tc.proof, tc.policy, tc.opts); (r.Verdict != webverify.Refused) != want {
				t.Errorf("verdict %s, but proof.Verify accepts: %t", r.Verdict, want)
			}
			// The report survives JSON, as the page receives it.
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back webverify.Report
			if err := json.Unmarshal(b, &back); err != nil || back.Verdict != r.Verdict || len(back.Checks) != len(r.Checks) {
				t.Fatalf("JSON round trip: %v, %+v", err, back)
			}
		})
	}
}

// agrees reports whether proof.Verify accepts the proof with the same
// inputs, as the command line would call it.
func agrees(t *testing.T, proofFile, policyFile []byte, o webverify.Options) bool {
	t.Helper()
	p, err := proof.Unmarshal(proofFile)
	if err != nil || len(proofFile) > webverify.MaxProofBytes {
		return false
	}
	opts := proof.VerifyOptions{AllowSimulation: o.AllowSimulation, TestRoot: o.TestRoot, ModelID: o.ModelID, ModelHash: o.ModelHash, InputHash: o.InputHash}
	if !o.Now.IsZero() {
		opts.Now = func() time.Time { return o.Now }
	}
	if len(policyFile) > 0 && len(policyFile) <= webverify.MaxPolicyBytes {
		if opts.Policy, err = policy.Parse(policyFile); err != nil {
			return false
		}
	}
	_, err = proof.Verify(p, opts)
	return err == nil
}

func TestCollateralWindow(t *testing.T) {
	f := shared(t)
	from, until, err := webverify.CollateralWindow(f.realProof)
	if err != nil {
		t.Fatal(err)
	}
	if from.Before(realIssued) || until.After(realNextUpdate) || !from.Before(until) {
		t.Fatalf("window %s to %s, want within %s to %s", from, until, realIssued, realNextUpdate)
	}
	dates := func(at time.Time) webverify.Status {
		for _, c := range webverify.Verify(f.realProof, f.realPolicy, webverify.Options{Now: at}).Checks {
			if c.ID == "collateral-dates" {
				return c.Status
			}
		}
		return ""
	}
	for _, tc := range []struct {
		at   time.Time
		want webverify.Status
	}{
		{from, webverify.Pass},
		{until.Add(-time.Second), webverify.Pass},
		{from.Add(-time.Second), webverify.Fail},
		{until, webverify.Fail},
	} {
		if got := dates(tc.at); got != tc.want {
			t.Errorf("collateral dates at %s: %q, want %q", tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
	for name, b := range map[string][]byte{"simulation": f.simProof, "garbage": []byte("garbage"), "too large": make([]byte, webverify.MaxProofBytes+1)} {
		if _, _, err := webverify.CollateralWindow(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestVerifierLinksNoTestCode: neither build of the browser verifier
// links a test package (the synthetic PKIs, the testing package).
func TestVerifierLinksNoTestCode(t *testing.T) {
	testOnly := []string{
		"github.com/blindfold-ai/blindfold/attest/attesttest",
		"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest",
		"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest",
		"github.com/blindfold-ai/blindfold/attest/snp/snptest",
		"testing",
	}
	for _, tags := range []string{"", "blindfold_testroot"} {
		cmd := exec.Command("go", "list", "-deps", "-tags", tags, "./cmd/blindfold-verify-wasm")
		cmd.Dir = projectRoot(t)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (tags %q): %v", tags, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, "github.com/blindfold-ai/blindfold/internal/webverify") {
			t.Fatalf("go list (tags %q) does not list internal/webverify: %v", tags, deps)
		}
		for _, bad := range testOnly {
			if slices.Contains(deps, bad) {
				t.Errorf("the verifier built with tags %q links %s", tags, bad)
			}
		}
	}
}

// TestReceiptStep: a proof whose reply carries a receipt lists its
// bindings, which were checked and which not; one without says so.
func TestReceiptStep(t *testing.T) {
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	outs := []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1}, IndexName: "y"}, BytesData: []byte{1, 2, 3, 4}}}
	modelHash := proof.ModelHash([]byte("model"))
	mk := func(rc *securedexchange.Receipt) []byte {
		pay, err := proto.Marshal(&securedexchange.Payload{Header: &securedexchange.PayloadHeader{},
			Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{ModelId: "m", OutputTensors: outs, Receipt: rc}}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := proof.Marshal(proof.NewSimulation(id.DER, pay, id.Sign(pay)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	step := func(r *webverify.Report) string {
		for _, c := range r.Checks {
			if c.ID == webverify.StepReceipt {
				return c.Detail
			}
		}
		return ""
	}
	r := webverify.Verify(mk(&securedexchange.Receipt{ModelHash: modelHash, OutputHash: proof.OutputHash(outs), ReplicaId: []byte("0123456789abcdef"), ReplicaSource: "simulation"}), nil,
		webverify.Options{AllowSimulation: true, ModelHash: modelHash})
	if d := step(r); !strings.Contains(d, "model_hash checked") || !strings.Contains(d, "output_hash") || !strings.Contains(d, "replica_id not checked") {
		t.Fatalf("receipt step %q (verdict %s)", d, r.Verdict)
	}
	r = webverify.Verify(mk(nil), nil, webverify.Options{AllowSimulation: true})
	if d := step(r); !strings.Contains(d, "no receipt") {
		t.Fatalf("receipt step without a receipt: %q (verdict %s)", d, r.Verdict)
	}
}
