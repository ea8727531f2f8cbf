package proof

import (
	"crypto/ed25519"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
)

func anyPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	return attesttest.Policy(attesttest.MREnclave())
}

// hwEvidence builds SGX evidence over the report data of certDER and nonce,
// in BlindAI's reply shape, from a builder configured by change.
func hwEvidence(t *testing.T, pki *sgxtest.PKI, now time.Time, certDER, nonce []byte, change func(*sgxtest.Builder)) *untrusted.GetSgxQuoteWithCollateralReply {
	t.Helper()
	b := sgxtest.NewBuilder(pki, now)
	b.ReportBody.ReportData = attest.ReportData(certDER, nonce)
	if change != nil {
		change(b)
	}
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return &untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: sgx.CollateralToProto(ev.Collateral), EnclaveHeldData: certDER}
}

func TestVerifyHardware(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	other, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	good := hwEvidence(t, pki, now, f.id.DER, nil, nil)
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	base := VerifyOptions{Policy: anyPolicy(t), Now: at(now), TestRoot: pki.Root}
	with := func(change func(*VerifyOptions)) VerifyOptions {
		o := base
		change(&o)
		return o
	}
	otherMR := attesttest.MREnclave()
	otherMR[0] ^= 1
	nonce := []byte("client nonce")
	tests := []struct {
		name string
		p    *prooffiles.ResponseProof
		opts VerifyOptions
		is   error // nil: accepted
	}{
		{"valid", New(good, f.runPay, f.id.Sign(f.runPay)), base, nil},
		{"valid send", New(good, f.sendPay, f.id.Sign(f.sendPay)), with(func(o *VerifyOptions) { o.ModelHash = ModelHash(f.model) }), nil},
		{"nonce evidence, nonce unknown to the verifier", New(hwEvidence(t, pki, now, f.id.DER, nonce, nil), f.runPay, f.id.Sign(f.runPay)), base, nil},
		{"nonce evidence, nonce given", New(hwEvidence(t, pki, now, f.id.DER, nonce, nil), f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.Nonce = nonce }), nil},
		{"nonce evidence, other nonce given", New(hwEvidence(t, pki, now, f.id.DER, nonce, nil), f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.Nonce = []byte("other") }), ErrBadEvidence},
		{"no policy", New(good, f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.Policy = nil }), ErrNoPolicy},
		{"other MRENCLAVE in policy", New(good, f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.Policy = attesttest.Policy(otherMR) }), ErrPolicyMismatch},
		{"Intel root against test evidence", New(good, f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.TestRoot = nil }), ErrBadEvidence},
		{"collateral expired", New(good, f.runPay, f.id.Sign(f.runPay)), with(func(o *VerifyOptions) { o.Now = at(now.AddDate(0, 0, 31)) }), ErrStaleCollateral},
		{"report data binds another certificate", func() *prooffiles.ResponseProof {
			ev := hwEvidence(t, pki, now, other.DER, nil, nil)
			ev.EnclaveHeldData = f.id.DER
			return New(ev, f.runPay, f.id.Sign(f.runPay))
		}(), base, ErrBadEvidence},
		{"certificate swapped after quoting", func() *prooffiles.ResponseProof {
			ev := hwEvidence(t, pki, now, f.id.DER, nil, nil)
			ev.EnclaveHeldData = other.DER
			return New(ev, f.runPay, other.Sign(f.runPay))
		}(), base, ErrBadEvidence},
		{"signed by a key other than the attested one", New(good, f.runPay, other.Sign(f.runPay)), base, ErrBadSignature},
		{"payload changed", New(good, f.sendPay, f.id.Sign(f.runPay)), base, ErrBadSignature},
		{"no collateral", New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: good.Quote, EnclaveHeldData: f.id.DER}, f.runPay, f.id.Sign(f.runPay)), base, ErrBadEvidence},
		{"debug enclave", New(hwEvidence(t, pki, now, f.id.DER, nil, func(b *sgxtest.Builder) { b.ReportBody.AttributesFlags |= 2 }), f.runPay, f.id.Sign(f.runPay)), base, ErrPolicyMismatch},
		{"out-of-date TCB", New(hwEvidence(t, pki, now, f.id.DER, nil, func(b *sgxtest.Builder) { b.TCBInfo.Levels[0].Status = "OutOfDate" }), f.runPay, f.id.Sign(f.runPay)), base, ErrPolicyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Through the file format, as a third party gets it.
			b, err := Marshal(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(p, tc.opts)
			if tc.is == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Simulation || res.Evidence == nil || sgx.ResultOf(res.Evidence.Claims).Status != sgx.UpToDate || !ed25519.PublicKey(res.SigningKey).Equal(f.id.SigningPublicKey()) {
					t.Fatalf("unexpected result %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted: %+v", res)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestVerifyWithNewerCollateral: a proof that verifies with its own
// collateral is refused when the verifier supplies newer collateral whose
// PCK CRL revokes the proof's PCK certificate, or whose TCB info moved the
// platform's level to OutOfDate (a TCB recovery after the proof).
func TestVerifyWithNewerCollateral(t *testing.T) {
	issuedAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := issuedAt.AddDate(0, 0, 20)
	pki, err := sgxtest.NewPKI(issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	b := sgxtest.NewBuilder(pki, issuedAt)
	b.ReportBody.ReportData = attest.ReportData(f.id.DER, nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: sgx.CollateralToProto(ev.Collateral), EnclaveHeldData: f.id.DER}, f.runPay, f.id.Sign(f.runPay))
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	opts := VerifyOptions{Policy: anyPolicy(t), Now: at(issuedAt), TestRoot: pki.Root}
	res, err := Verify(p, opts)
	if err != nil {
		t.Fatalf("with its own collateral: %v", err)
	}
	if res.SuppliedCollateral {
		t.Error("SuppliedCollateral set without supplied collateral")
	}

	// Newer collateral, as a PCCS serves it 20 days later.
	fresh := func(change func(*sgxtest.Builder)) *sgx.Collateral {
		nb := sgxtest.NewBuilder(pki, later)
		if change != nil {
			change(nb)
		}
		c, err := ev.Reissue(nb)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	opts.Now = at(later)
	opts.Collateral = fresh(nil)
	res, err = Verify(p, opts)
	if err != nil {
		t.Fatalf("with fresh collateral that still vouches for it: %v", err)
	}
	if !res.SuppliedCollateral || !sgx.ResultOf(res.Evidence.Claims).CollateralIssued.After(issuedAt) {
		t.Errorf("supplied %t, collateral issued %s", res.SuppliedCollateral, sgx.ResultOf(res.Evidence.Claims).CollateralIssued)
	}

	opts.Collateral = fresh(func(nb *sgxtest.Builder) { nb.PCKCRL.Revoked = []*big.Int{ev.PCK.SerialNumber} })
	_, err = Verify(p, opts)
	var se *sgx.Error
	if !errors.Is(err, ErrBadEvidence) || !errors.Is(err, sgx.ErrRevoked) || !errors.As(err, &se) || se.Item != sgx.ItemPCKCRL {
		t.Fatalf("revoked PCK: err = %v", err)
	}

	opts.Collateral = fresh(func(nb *sgxtest.Builder) { nb.TCBInfo.Levels[0].Status = "OutOfDate" })
	if _, err = Verify(p, opts); !errors.Is(err, ErrPolicyMismatch) {
		t.Fatalf("TCB recovery: err = %v", err)
	}

	// Collateral from another PKI does not verify the quote.
	other, err := sgxtest.NewPKI(later)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := sgxtest.NewBuilder(other, later).Build()
	if err != nil {
		t.Fatal(err)
	}
	opts.Collateral = ob.Collateral
	if _, err = Verify(p, opts); !errors.Is(err, ErrBadEvidence) {
		t.Fatalf("foreign collateral: err = %v", err)
	}
}
