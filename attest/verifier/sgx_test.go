package verifier_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/attest/sim"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
)

// sgxCase is synthetic SGX evidence over an attested certificate, and the
// options that verify it.
type sgxCase struct {
	ev   *attest.Evidence
	cert []byte
	o    verifier.Options
}

// verify verifies c under the policy of attesttest with text appended.
func (c sgxCase) verify(t *testing.T, text string) (*attest.Verified, error) {
	t.Helper()
	p, err := policy.Parse([]byte(attesttest.PolicyTOML(attesttest.MREnclave()) + text))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := verifier.ForPolicy(p, c.o)
	if err != nil {
		t.Fatal(err)
	}
	return reg.Verify(context.Background(), c.ev, c.cert, attest.NonceZero, nil)
}

// evidence returns synthetic evidence over an attested certificate, built
// with change applied, and the options that verify it at now.
func evidence(t *testing.T, change func(*sgxtest.Builder)) sgxCase {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	b.ReportBody.ReportData = attest.ReportData(id.DER, nil)
	if change != nil {
		change(b)
	}
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	e, err := sgx.Evidence(ev.Quote, ev.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	return sgxCase{ev: e, cert: id.DER, o: verifier.Options{Now: func() time.Time { return now }, SGXTestRoot: pki.Root}}
}

// TestStaleCollateralIsTyped: a policy's collateral-age rule is reported as
// ErrStaleCollateral through the policy's typed error, not by matching the
// key's name.
func TestStaleCollateralIsTyped(t *testing.T) {
	c := evidence(t, nil)
	if _, err := c.verify(t, "max_collateral_age = \"72h\"\n"); err != nil {
		t.Fatal(err)
	}
	_, err := c.verify(t, "max_collateral_age = \"30m\"\n")
	if !errors.Is(err, attest.ErrStaleCollateral) || !errors.Is(err, attest.ErrBadEvidence) {
		t.Fatalf("err = %v, want ErrStaleCollateral", err)
	}
	// The policy's own check, as a caller without the verifier's options
	// meets it, is typed too.
	me := &policy.MismatchError{Field: policy.KeyMaxCollateralAge}
	if !errors.Is(me, policy.ErrStaleCollateral) || !errors.Is(me, policy.ErrMismatch) {
		t.Fatal("a max_collateral_age mismatch is not ErrStaleCollateral")
	}
	if errors.Is(&policy.MismatchError{Field: policy.KeyMREnclave}, policy.ErrStaleCollateral) {
		t.Fatal("an mr_enclave mismatch is ErrStaleCollateral")
	}
}

// TestStatusVerdicts runs synthetic evidence of each interesting status
// through VerifySGX under the strict default, a generated policy, and a
// BlindAI 0.5 policy.
func TestStatusVerdicts(t *testing.T) {
	level := func(status string, adv ...string) func(*sgxtest.Builder) {
		return func(b *sgxtest.Builder) {
			b.TCBInfo.Levels[0].Status = status
			b.TCBInfo.Levels[0].AdvisoryIDs = adv
		}
	}
	const (
		strict    = "accepted_tcb_statuses = [\"UpToDate\"]\n"
		generated = "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00615\"]\n"
		blindAI   = ""
	)
	for _, tc := range []struct {
		name    string
		change  func(*sgxtest.Builder)
		policy  string
		accepts bool
	}{
		{"UpToDate, strict", nil, strict, true},
		{"SWHardeningNeeded 00615, strict", level("SWHardeningNeeded", "INTEL-SA-00615"), strict, false},
		{"SWHardeningNeeded 00615, generated", level("SWHardeningNeeded", "INTEL-SA-00615"), generated, true},
		{"SWHardeningNeeded 00615+00334, generated", level("SWHardeningNeeded", "INTEL-SA-00334", "INTEL-SA-00615"), generated, false},
		{"SWHardeningNeeded 00615+00334, BlindAI 0.5", level("SWHardeningNeeded", "INTEL-SA-00334", "INTEL-SA-00615"), blindAI, true},
		{"Revoked, BlindAI 0.5", level("Revoked", "INTEL-SA-00615"), blindAI, false},
		{"Revoked, generated", level("Revoked", "INTEL-SA-00615"), generated, false},
		{"ConfigurationNeeded, BlindAI 0.5", level("ConfigurationNeeded", "INTEL-SA-00289"), blindAI, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evidence(t, tc.change).verify(t, tc.policy)
			if tc.accepts && err != nil {
				t.Fatal(err)
			}
			if !tc.accepts && !errors.Is(err, attest.ErrPolicyMismatch) {
				t.Fatalf("err = %v, want ErrPolicyMismatch", err)
			}
		})
	}
}

// TestPlatformNotAccepted: SGX evidence that verifies under an SGX policy
// is refused by a policy with only a [tdx] section, and simulation
// evidence is refused unless simulation is allowed.
func TestPlatformNotAccepted(t *testing.T) {
	c := evidence(t, nil)
	if _, err := c.verify(t, ""); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte("[tdx]\nmrtd = [\"" + strings.Repeat("ab", 48) + "\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := verifier.ForPolicy(p, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Types(); len(got) != 1 || got[0] != attest.TypeTDX {
		t.Fatalf("types %v, want [tdx]", got)
	}
	_, err = reg.Verify(context.Background(), c.ev, c.cert, attest.NonceZero, nil)
	if !errors.Is(err, attest.ErrNotAccepted) || !errors.Is(err, attest.ErrPolicyMismatch) {
		t.Fatalf("SGX evidence under a TDX policy: %v, want ErrNotAccepted", err)
	}
	simEv, _ := sim.Issuer{}.Evidence(context.Background(), attest.ReportData(c.cert, nil))
	if _, err := reg.Verify(context.Background(), simEv, c.cert, attest.NonceZero, nil); !errors.Is(err, attest.ErrNotAccepted) {
		t.Fatalf("simulation evidence without AllowSimulation: %v, want ErrNotAccepted", err)
	}
	if _, err := verifier.ForPolicy(nil, verifier.Options{}); !errors.Is(err, attest.ErrNoPolicy) {
		t.Fatalf("no policy, no simulation: %v, want ErrNoPolicy", err)
	}
}
