package webverify_test

import (
	"testing"

	"github.com/blindfold-ai/blindfold/internal/webverify"
)

// FuzzVerify: no proof or policy file makes Verify panic or gives an
// inconsistent report, and, without a test root or simulation allowed,
// nothing verifies but what chains to Intel's root. The seeds, in
// testdata/fuzz/FuzzVerify (fixed bytes: seeds made afresh here would
// differ between the fuzzing processes), are a proof built from a real SGX
// quote that does not bind the proof's certificate, with its policy, and a
// simulation proof: both refused, as must be every mutation of them.
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, proofFile, policyFile []byte) {
		r := webverify.Verify(proofFile, policyFile, webverify.Options{Now: realAt})
		if r.Verdict != webverify.Refused {
			t.Fatalf("verdict %s without a test root or simulation: %+v", r.Verdict, r.Checks)
		}
		if r.Error == "" || len(r.Checks) == 0 {
			t.Fatalf("a refusal without a reason: %+v", r)
		}
		failed := 0
		for _, c := range r.Checks {
			if c.Status == webverify.Fail {
				failed++
			}
		}
		if failed == 0 || failed > 2 {
			t.Fatalf("%d failed checks: %+v", failed, r.Checks)
		}
	})
}
