package proof

import (
	"crypto/ed25519"
	"errors"
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
	return &untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: attest.CollateralToProto(ev.Collateral), EnclaveHeldData: certDER}
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
				if res.Simulation || res.Evidence == nil || res.Evidence.SGX.Status != sgx.UpToDate || !ed25519.PublicKey(res.SigningKey).Equal(f.id.SigningPublicKey()) {
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
