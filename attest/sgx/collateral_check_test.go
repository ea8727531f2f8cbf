package sgx_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

func TestVerifyCollateralSynthetic(t *testing.T) {
	ev := build(t, nil)
	got, err := sgx.VerifyCollateral(ev.Collateral, opts(ev))
	if err != nil {
		t.Fatal(err)
	}
	if got.TCBInfo.ID != "SGX" || got.QEIdentity.ID != "QE" || got.TCBInfo.Signer != "Intel SGX TCB Signing" || got.QEIdentity.Signer != "Intel SGX TCB Signing" {
		t.Errorf("signed items %+v %+v", got.TCBInfo, got.QEIdentity)
	}
	if got.PCKCRL.Issuer != "Intel SGX PCK Processor CA" || got.RootCACRL.Issuer != "Intel SGX Root CA" {
		t.Errorf("CRL issuers %q %q", got.PCKCRL.Issuer, got.RootCACRL.Issuer)
	}
	want := got.TCBInfo.NextUpdate
	for _, t := range []time.Time{got.QEIdentity.NextUpdate, got.PCKCRL.NextUpdate, got.RootCACRL.NextUpdate} {
		if t.Before(want) {
			want = t
		}
	}
	if !got.NextUpdate.Equal(want) {
		t.Errorf("NextUpdate %s, want the earliest %s", got.NextUpdate, want)
	}
	// Without the test root the same collateral does not chain to Intel's.
	if _, err := sgx.VerifyCollateral(ev.Collateral, sgx.Options{Now: func() time.Time { return testNow }}); err == nil {
		t.Fatal("test-PKI collateral verified against the pinned Intel root")
	}
}

func TestVerifyCollateralRefuses(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *sgxtest.Builder)
		after func(ev *sgxtest.Evidence)
		item  sgx.Item
		err   error
	}{
		{name: "TCB info signature flipped", after: func(ev *sgxtest.Evidence) { ev.Collateral.TCBInfo = flipHexSignature(ev.Collateral.TCBInfo) }, item: sgx.ItemTCBInfo, err: sgx.ErrSignature},
		{name: "QE identity body edited", after: func(ev *sgxtest.Evidence) {
			ev.Collateral.QEIdentity = strings.Replace(ev.Collateral.QEIdentity, `"isvprodid":1`, `"isvprodid":2`, 1)
		}, item: sgx.ItemQEIdentity, err: sgx.ErrSignature},
		{name: "TCB info signed by another root", after: func(ev *sgxtest.Evidence) {
			other, err := sgxtest.NewBuilder(pk2, testNow).Build()
			if err != nil {
				t.Fatal(err)
			}
			ev.Collateral.TCBInfoIssuerChain, ev.Collateral.TCBInfo = other.Collateral.TCBInfoIssuerChain, other.Collateral.TCBInfo
		}, item: sgx.ItemTCBInfoIssuerChain, err: sgx.ErrUntrustedRoot},
		{name: "QE identity chain is the PCK CA's", after: func(ev *sgxtest.Evidence) { ev.Collateral.QEIdentityIssuerChain = ev.Collateral.PCKCRLIssuerChain }, item: sgx.ItemQEIdentityIssuerChain, err: sgx.ErrMismatch},
		{name: "stale TCB info", build: func(b *sgxtest.Builder) { b.TCBInfo.NextUpdate = testNow }, item: sgx.ItemTCBInfo, err: sgx.ErrExpired},
		{name: "future QE identity", build: func(b *sgxtest.Builder) { b.QEIdentity.IssueDate = testNow.Add(time.Second) }, item: sgx.ItemQEIdentity, err: sgx.ErrNotYetValid},
		{name: "TCB signing revoked", build: func(b *sgxtest.Builder) { b.RootCRL.Revoked = []*big.Int{sgxtest.TCBSigningSerial} }, item: sgx.ItemRootCACRL, err: sgx.ErrRevoked},
		{name: "PCK CA revoked", build: func(b *sgxtest.Builder) { b.RootCRL.Revoked = []*big.Int{sgxtest.PCKCASerial} }, item: sgx.ItemRootCACRL, err: sgx.ErrRevoked},
		{name: "root CRL signature flipped", after: func(ev *sgxtest.Evidence) {
			der := decodePEM(t, ev.Collateral.RootCACRL)
			der[len(der)-1] ^= 1
			ev.Collateral.RootCACRL = string(der)
		}, item: sgx.ItemRootCACRL, err: sgx.ErrSignature},
		{name: "PCK CRL from the wrong issuer", after: func(ev *sgxtest.Evidence) { ev.Collateral.PCKCRL = ev.Collateral.RootCACRL }, item: sgx.ItemPCKCRL, err: sgx.ErrMismatch},
		{name: "PCK CRL issuer chain signature flipped", after: func(ev *sgxtest.Evidence) {
			ev.Collateral.PCKCRLIssuerChain = flipPEMSignature(t, ev.Collateral.PCKCRLIssuerChain, 0)
		}, item: sgx.ItemPCKCRLIssuerChain, err: sgx.ErrSignature},
		{name: "stale PCK CRL", build: func(b *sgxtest.Builder) { b.PCKCRL.NextUpdate = testNow }, item: sgx.ItemPCKCRL, err: sgx.ErrExpired},
		{name: "PCK CRL missing", build: func(b *sgxtest.Builder) { b.PCKCRL.Omit = true }, item: sgx.ItemPCKCRL, err: sgx.ErrMissing},
		{name: "root CRL missing", build: func(b *sgxtest.Builder) { b.RootCRL.Omit = true }, item: sgx.ItemRootCACRL, err: sgx.ErrMissing},
		{name: "PCK CRL issuer chain missing", after: func(ev *sgxtest.Evidence) { ev.Collateral.PCKCRLIssuerChain = "" }, item: sgx.ItemPCKCRLIssuerChain, err: sgx.ErrMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, tc.build)
			if tc.after != nil {
				tc.after(ev)
			}
			o := opts(ev)
			o.AllowMissingCRLs = true // ignored: the check always needs both CRLs
			_, err := sgx.VerifyCollateral(ev.Collateral, o)
			assertErr(t, err, tc.item, tc.err)
		})
	}
}

// TestVerifyCollateralReal checks Intel's real SGX and TDX collateral
// (dcap-qvl's samples) against the pinned Intel root, and that it is refused
// after its earliest nextUpdate.
func TestVerifyCollateralReal(t *testing.T) {
	at := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		file, tcbID, qeID, fmspc, pckCA string
		next                            time.Time
	}{
		{"sgx/dcap-qvl/sgx_quote_collateral.json", "SGX", "QE", "00A067110000", "Intel SGX PCK Processor CA", time.Date(2025, 7, 19, 10, 1, 18, 0, time.UTC)},
		{"tdx/dcap-qvl/tdx_quote_collateral.json", "TDX", "TD_QE", "B0C06F000000", "Intel SGX PCK Platform CA", time.Date(2025, 7, 19, 10, 0, 35, 0, time.UTC)},
	} {
		t.Run(tc.tcbID, func(t *testing.T) {
			c, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := sgx.VerifyCollateral(c, sgx.Options{Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			if got.TCBInfo.ID != tc.tcbID || got.QEIdentity.ID != tc.qeID || !strings.EqualFold(got.TCBInfo.FMSPC, tc.fmspc) || got.PCKCRL.Issuer != tc.pckCA {
				t.Errorf("got TCB info %+v, QE identity %+v, PCK CRL %+v", got.TCBInfo, got.QEIdentity, got.PCKCRL)
			}
			if got.TCBInfo.TCBEvaluationDataNumber != 17 || got.TCBInfo.Version != 3 || got.QEIdentity.Version != 2 {
				t.Errorf("versions/evaluation data number %+v %+v", got.TCBInfo, got.QEIdentity)
			}
			if !got.NextUpdate.Equal(tc.next) {
				t.Errorf("NextUpdate %s, want %s", got.NextUpdate, tc.next)
			}
			_, err = sgx.VerifyCollateral(c, sgx.Options{Now: func() time.Time { return tc.next }})
			if err == nil {
				t.Fatal("collateral accepted at its earliest nextUpdate")
			}
		})
	}
}
