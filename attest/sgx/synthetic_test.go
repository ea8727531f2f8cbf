package sgx_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

var (
	testNow  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pkiOnce  sync.Once
	pki, pk2 *sgxtest.PKI
)

func newPKI(t testing.TB) *sgxtest.PKI {
	t.Helper()
	pkiOnce.Do(func() {
		var err error
		if pki, err = sgxtest.NewPKI(testNow); err != nil {
			panic(err)
		}
		if pk2, err = sgxtest.NewPKI(testNow); err != nil {
			panic(err)
		}
	})
	return pki
}

func build(t testing.TB, mod func(b *sgxtest.Builder)) *sgxtest.Evidence {
	t.Helper()
	b := sgxtest.NewBuilder(newPKI(t), testNow)
	if mod != nil {
		mod(b)
	}
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func opts(ev *sgxtest.Evidence) sgx.Options {
	return sgx.Options{Now: func() time.Time { return testNow }, TestRoot: ev.Root}
}

func TestSyntheticUpToDate(t *testing.T) {
	ev := build(t, nil)
	res, err := sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != sgx.UpToDate || len(res.AdvisoryIDs) != 0 || !res.CRLsChecked {
		t.Fatalf("result %s", res)
	}
	if res.PCKCertificate.SerialNumber.Cmp(sgxtest.PCKSerial) != 0 || res.PCKExtensions.PCESVN != 13 {
		t.Errorf("PCK %v", res.PCKExtensions)
	}
	if res.ReportBody.ISVProdID != 7 || res.CollateralNextUpdate.IsZero() {
		t.Errorf("report %+v", res.ReportBody)
	}
	// The embedded Intel root refuses the synthetic chain.
	o := opts(ev)
	o.TestRoot = nil
	_, err = sgx.Verify(ev.Quote, ev.Collateral, o)
	assertErr(t, err, sgx.ItemCertificationData, sgx.ErrUntrustedRoot)
	// So does another test root.
	newPKI(t)
	o.TestRoot = pk2.Root
	_, err = sgx.Verify(ev.Quote, ev.Collateral, o)
	assertErr(t, err, sgx.ItemCertificationData, sgx.ErrUntrustedRoot)
}

// flipPEMSignature flips the last byte of the n-th certificate's signature
// in a PEM chain.
func flipPEMSignature(t *testing.T, chain string, n int) string {
	t.Helper()
	certs, rest := []string{}, chain
	for strings.Contains(rest, "-----BEGIN") {
		i := strings.Index(rest, "-----END CERTIFICATE-----\n") + len("-----END CERTIFICATE-----\n")
		certs = append(certs, rest[:i])
		rest = rest[i:]
	}
	blk := decodePEM(t, certs[n])
	blk[len(blk)-1] ^= 1
	certs[n] = encodePEM(blk)
	return strings.Join(certs, "") + rest
}

func flipHexSignature(s string) string {
	i := strings.LastIndex(s, `"`) - 1
	c := s[i]
	r := byte('0')
	if c == '0' {
		r = '1'
	}
	return s[:i] + string(r) + s[i+1:]
}

func TestSyntheticNegatives(t *testing.T) {
	day := 24 * time.Hour
	quoteMod := func(off int) func(ev *sgxtest.Evidence) {
		return func(ev *sgxtest.Evidence) { ev.Quote[off] ^= 1 }
	}
	const sd = abi.SignatureDataOffset
	tests := []struct {
		name  string
		build func(b *sgxtest.Builder)
		after func(ev *sgxtest.Evidence)
		opts  func(o *sgx.Options)
		item  sgx.Item
		err   error
	}{
		{name: "quote signature flipped", after: quoteMod(sd + 10), item: sgx.ItemQuoteSignature, err: sgx.ErrSignature},
		{name: "report body changed", after: quoteMod(abi.HeaderSize + 64), item: sgx.ItemQuoteSignature, err: sgx.ErrSignature},
		{name: "header changed", after: quoteMod(28), item: sgx.ItemQuoteSignature, err: sgx.ErrSignature},
		{name: "attestation key changed", after: quoteMod(sd + 64 + 5), item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "QE report changed", after: quoteMod(sd + 128 + 2), item: sgx.ItemQEReportSignature, err: sgx.ErrSignature},
		{name: "QE report signature flipped", after: quoteMod(sd + 128 + 384 + 3), item: sgx.ItemQEReportSignature, err: sgx.ErrSignature},
		{name: "QE auth data changed", after: quoteMod(sd + 128 + 384 + 64 + 2), item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "QE report data not bound", build: func(b *sgxtest.Builder) { b.QEReportData = &[64]byte{1} }, item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "quote from another vendor", build: func(b *sgxtest.Builder) { b.Header.QEVendorID[0] ^= 1 }, item: sgx.ItemQuote, err: sgx.ErrUnsupported},
		{name: "trailing byte", after: func(ev *sgxtest.Evidence) { ev.Quote = append(ev.Quote, 0) }, item: sgx.ItemQuote, err: sgx.ErrMalformed},
		{name: "PCK certificate signature flipped", after: func(ev *sgxtest.Evidence) {
			q, _ := abi.ParseQuote(ev.Quote)
			q.SignatureData.CertificationData.Data = []byte(flipPEMSignature(t, string(q.SignatureData.CertificationData.Data), 0))
			ev.Quote = q.Marshal()
		}, item: sgx.ItemPCKCertificate, err: sgx.ErrSignature},
		{name: "PCK CA signature flipped", after: func(ev *sgxtest.Evidence) {
			q, _ := abi.ParseQuote(ev.Quote)
			q.SignatureData.CertificationData.Data = []byte(flipPEMSignature(t, string(q.SignatureData.CertificationData.Data), 1))
			ev.Quote = q.Marshal()
		}, item: sgx.ItemPCKCACertificate, err: sgx.ErrSignature},
		{name: "PCK chain without root", after: func(ev *sgxtest.Evidence) {
			q, _ := abi.ParseQuote(ev.Quote)
			d := string(q.SignatureData.CertificationData.Data)
			q.SignatureData.CertificationData.Data = []byte(d[:strings.LastIndex(d, "-----BEGIN")])
			ev.Quote = q.Marshal()
		}, item: sgx.ItemCertificationData, err: sgx.ErrMalformed},
		{name: "PCK expired", build: func(b *sgxtest.Builder) { b.PCKValidity.NotAfter = testNow.Add(-time.Second) }, item: sgx.ItemPCKCertificate, err: sgx.ErrExpired},
		{name: "PCK not yet valid", build: func(b *sgxtest.Builder) { b.PCKValidity.NotBefore = testNow.Add(time.Second) }, item: sgx.ItemPCKCertificate, err: sgx.ErrNotYetValid},
		{name: "PCK CA expired", build: func(b *sgxtest.Builder) { b.PCKCAValidity.NotAfter = testNow.Add(-time.Second) }, item: sgx.ItemPCKCACertificate, err: sgx.ErrExpired},
		{name: "TCB signing not yet valid", build: func(b *sgxtest.Builder) { b.TCBSigningValidity.NotBefore = testNow.Add(time.Hour) }, item: sgx.ItemQEIdentityIssuerChain, err: sgx.ErrNotYetValid},
		{name: "PCK revoked", build: func(b *sgxtest.Builder) { b.PCKCRL.Revoked = []*big.Int{big.NewInt(3), sgxtest.PCKSerial} }, item: sgx.ItemPCKCRL, err: sgx.ErrRevoked},
		{name: "PCK CA revoked", build: func(b *sgxtest.Builder) { b.RootCRL.Revoked = []*big.Int{sgxtest.PCKCASerial} }, item: sgx.ItemRootCACRL, err: sgx.ErrRevoked},
		{name: "TCB signing revoked", build: func(b *sgxtest.Builder) { b.RootCRL.Revoked = []*big.Int{sgxtest.TCBSigningSerial} }, item: sgx.ItemRootCACRL, err: sgx.ErrRevoked},
		{name: "stale PCK CRL", build: func(b *sgxtest.Builder) { b.PCKCRL.NextUpdate = testNow }, item: sgx.ItemPCKCRL, err: sgx.ErrExpired},
		{name: "future PCK CRL", build: func(b *sgxtest.Builder) { b.PCKCRL.ThisUpdate = testNow.Add(time.Minute) }, item: sgx.ItemPCKCRL, err: sgx.ErrNotYetValid},
		{name: "stale root CRL", build: func(b *sgxtest.Builder) { b.RootCRL.NextUpdate = testNow.Add(-day) }, item: sgx.ItemRootCACRL, err: sgx.ErrExpired},
		{name: "root CRL missing", build: func(b *sgxtest.Builder) { b.RootCRL.Omit = true }, item: sgx.ItemRootCACRL, err: sgx.ErrMissing},
		{name: "PCK CRL missing", build: func(b *sgxtest.Builder) { b.PCKCRL.Omit = true }, item: sgx.ItemPCKCRL, err: sgx.ErrMissing},
		{name: "PCK CRL signature flipped", after: func(ev *sgxtest.Evidence) {
			der, _ := hex.DecodeString(ev.Collateral.PCKCRL)
			der[len(der)-1] ^= 1
			ev.Collateral.PCKCRL = string(der) // raw DER form
		}, item: sgx.ItemPCKCRL, err: sgx.ErrSignature},
		{name: "root CRL signature flipped", after: func(ev *sgxtest.Evidence) {
			der := decodePEM(t, ev.Collateral.RootCACRL)
			der[len(der)-1] ^= 1
			ev.Collateral.RootCACRL = hex.EncodeToString(der)
		}, item: sgx.ItemRootCACRL, err: sgx.ErrSignature},
		{name: "PCK CRL from the wrong issuer", after: func(ev *sgxtest.Evidence) { ev.Collateral.PCKCRL = ev.Collateral.RootCACRL }, item: sgx.ItemPCKCRL, err: sgx.ErrMismatch},
		{name: "PCK CRL issuer chain of another CA", after: func(ev *sgxtest.Evidence) {
			other := build(t, nil)
			ev.Collateral.PCKCRLIssuerChain = other.Collateral.PCKCRLIssuerChain
		}, item: sgx.ItemPCKCRLIssuerChain, err: sgx.ErrMismatch},
		{name: "TCB info signature flipped", after: func(ev *sgxtest.Evidence) { ev.Collateral.TCBInfo = flipHexSignature(ev.Collateral.TCBInfo) }, item: sgx.ItemTCBInfo, err: sgx.ErrSignature},
		{name: "QE identity signature flipped", after: func(ev *sgxtest.Evidence) { ev.Collateral.QEIdentity = flipHexSignature(ev.Collateral.QEIdentity) }, item: sgx.ItemQEIdentity, err: sgx.ErrSignature},
		{name: "TCB info body edited", after: func(ev *sgxtest.Evidence) {
			ev.Collateral.TCBInfo = strings.Replace(ev.Collateral.TCBInfo, `"OutOfDate"`, `"UpToDate"`, 1)
		}, item: sgx.ItemTCBInfo, err: sgx.ErrSignature},
		{name: "TCB signing cert signature flipped", after: func(ev *sgxtest.Evidence) {
			ev.Collateral.TCBInfoIssuerChain = flipPEMSignature(t, ev.Collateral.TCBInfoIssuerChain, 0)
		}, item: sgx.ItemTCBInfoIssuerChain, err: sgx.ErrSignature},
		{name: "TCB info signed by another root", after: func(ev *sgxtest.Evidence) {
			b := sgxtest.NewBuilder(pk2, testNow)
			other, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			ev.Collateral.TCBInfoIssuerChain, ev.Collateral.TCBInfo = other.Collateral.TCBInfoIssuerChain, other.Collateral.TCBInfo
		}, item: sgx.ItemTCBInfoIssuerChain, err: sgx.ErrUntrustedRoot},
		{name: "TCB info signed by the PCK CA", after: func(ev *sgxtest.Evidence) {
			ev.Collateral.TCBInfoIssuerChain = ev.Collateral.PCKCRLIssuerChain
		}, item: sgx.ItemTCBInfoIssuerChain, err: sgx.ErrMismatch},
		{name: "stale TCB info", build: func(b *sgxtest.Builder) { b.TCBInfo.NextUpdate = testNow.Add(-time.Second) }, item: sgx.ItemTCBInfo, err: sgx.ErrExpired},
		{name: "future TCB info", build: func(b *sgxtest.Builder) { b.TCBInfo.IssueDate = testNow.Add(time.Second) }, item: sgx.ItemTCBInfo, err: sgx.ErrNotYetValid},
		{name: "stale QE identity", build: func(b *sgxtest.Builder) { b.QEIdentity.NextUpdate = testNow }, item: sgx.ItemQEIdentity, err: sgx.ErrExpired},
		{name: "TCB info too old for max age", opts: func(o *sgx.Options) { o.MaxCollateralAge = 90 * time.Minute }, item: sgx.ItemQEIdentity, err: sgx.ErrTooOld},
		{name: "TCB evaluation data number too low", build: func(b *sgxtest.Builder) { b.QEIdentity.TCBEvaluationDataNumber = 18 },
			opts: func(o *sgx.Options) { o.MinTCBEvaluationDataNumber = 18 }, item: sgx.ItemTCBInfo, err: sgx.ErrTooOld},
		{name: "FMSPC mismatch", build: func(b *sgxtest.Builder) { b.TCBInfo.FMSPC = "00906ED50001" }, item: sgx.ItemTCBInfo, err: sgx.ErrMismatch},
		{name: "PCE ID mismatch", build: func(b *sgxtest.Builder) { b.TCBInfo.PCEID = "0001" }, item: sgx.ItemTCBInfo, err: sgx.ErrMismatch},
		{name: "TCB info id TDX", build: func(b *sgxtest.Builder) { b.TCBInfo.ID = "TDX" }, item: sgx.ItemTCBInfo, err: sgx.ErrMalformed},
		{name: "TCB info version 4", build: func(b *sgxtest.Builder) { b.TCBInfo.Version = 4 }, item: sgx.ItemTCBInfo, err: sgx.ErrUnsupported},
		{name: "QE identity id QVE", build: func(b *sgxtest.Builder) { b.QEIdentity.ID = "QVE" }, item: sgx.ItemQEIdentity, err: sgx.ErrUnsupported},
		{name: "no TCB level", build: func(b *sgxtest.Builder) { b.Components[1] = 3 }, item: sgx.ItemTCBInfo, err: sgx.ErrTCBLevelNotFound},
		{name: "PCESVN below every level", build: func(b *sgxtest.Builder) { b.PCESVN = 10 }, item: sgx.ItemTCBInfo, err: sgx.ErrTCBLevelNotFound},
		{name: "QE MRSIGNER mismatch", build: func(b *sgxtest.Builder) { b.QEReport.MRSIGNER[0] ^= 1 }, item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "QE ISVPRODID mismatch", build: func(b *sgxtest.Builder) { b.QEReport.ISVProdID = 2 }, item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "QE DEBUG attribute", build: func(b *sgxtest.Builder) { b.QEReport.AttributesFlags |= abi.AttributeDebug }, item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "QE MISCSELECT", build: func(b *sgxtest.Builder) { b.QEReport.MiscSelect = 1 }, item: sgx.ItemQEReport, err: sgx.ErrMismatch},
		{name: "EPPID certification data", after: func(ev *sgxtest.Evidence) {
			q, _ := abi.ParseQuote(ev.Quote)
			q.SignatureData.CertificationData = abi.CertificationData{Type: abi.CertDataPPIDRSA3072OAEP, Data: make([]byte, 390)}
			ev.Quote = q.Marshal()
		}, item: sgx.ItemCertificationData, err: sgx.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, tc.build)
			if tc.after != nil {
				tc.after(ev)
			}
			o := opts(ev)
			if tc.opts != nil {
				tc.opts(&o)
			}
			_, err := sgx.Verify(ev.Quote, ev.Collateral, o)
			assertErr(t, err, tc.item, tc.err)
			if !strings.Contains(err.Error(), string(tc.item)) {
				t.Errorf("message %q does not name %q", err, tc.item)
			}
		})
	}
}

func TestQEReportDataUpperHalf(t *testing.T) {
	b := sgxtest.NewBuilder(newPKI(t), testNow)
	b.QEReportData = &[64]byte{}
	b.QEReportData[40] = 1
	b.BindQEReportData = true
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
	assertErr(t, err, sgx.ItemQEReport, sgx.ErrMismatch)
	if !strings.Contains(err.Error(), "[32:64]") {
		t.Errorf("error %q does not name the upper half", err)
	}
}

func TestSyntheticMissingCRLsAllowed(t *testing.T) {
	ev := build(t, func(b *sgxtest.Builder) { b.RootCRL.Omit, b.PCKCRL.Omit = true, true })
	o := opts(ev)
	o.AllowMissingCRLs = true
	res, err := sgx.Verify(ev.Quote, ev.Collateral, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.CRLsChecked {
		t.Error("CRLsChecked")
	}
	// A present CRL is still checked.
	ev = build(t, func(b *sgxtest.Builder) { b.RootCRL.Omit = true; b.PCKCRL.Revoked = []*big.Int{sgxtest.PCKSerial} })
	o = opts(ev)
	o.AllowMissingCRLs = true
	_, err = sgx.Verify(ev.Quote, ev.Collateral, o)
	assertErr(t, err, sgx.ItemPCKCRL, sgx.ErrRevoked)
}

func TestSyntheticTCBStatuses(t *testing.T) {
	comps := [16]uint8{5, 5, 2, 2, 255, 1}
	lower := [16]uint8{4, 4, 2, 2, 255, 1}
	tests := []struct {
		name     string
		platform string
		levels   []sgxtest.TCBLevel // nil: the platform's own level has status platform
		qeSVN    uint16
		want     sgx.TCBStatus
		adv      []string
	}{
		{name: "UpToDate", platform: "UpToDate", qeSVN: 8, want: sgx.UpToDate},
		{name: "SWHardeningNeeded", platform: "SWHardeningNeeded", qeSVN: 8, want: sgx.SWHardeningNeeded, adv: []string{"INTEL-SA-00615"}},
		{name: "ConfigurationNeeded", platform: "ConfigurationNeeded", qeSVN: 8, want: sgx.ConfigurationNeeded, adv: []string{"INTEL-SA-00615"}},
		{name: "ConfigurationAndSWHardeningNeeded", platform: "ConfigurationAndSWHardeningNeeded", qeSVN: 8, want: sgx.ConfigurationAndSWHardeningNeeded, adv: []string{"INTEL-SA-00615"}},
		{name: "OutOfDate", platform: "OutOfDate", qeSVN: 8, want: sgx.OutOfDate, adv: []string{"INTEL-SA-00615"}},
		{name: "OutOfDateConfigurationNeeded", platform: "OutOfDateConfigurationNeeded", qeSVN: 8, want: sgx.OutOfDateConfigurationNeeded, adv: []string{"INTEL-SA-00615"}},
		{name: "Revoked", platform: "Revoked", qeSVN: 8, want: sgx.Revoked, adv: []string{"INTEL-SA-00615"}},
		{name: "QE OutOfDate, platform UpToDate", platform: "UpToDate", qeSVN: 7, want: sgx.OutOfDate, adv: []string{"INTEL-SA-00002"}},
		{name: "QE OutOfDate, platform SWHardeningNeeded", platform: "SWHardeningNeeded", qeSVN: 6, want: sgx.OutOfDate, adv: []string{"INTEL-SA-00002", "INTEL-SA-00615"}},
		{name: "QE OutOfDate, platform ConfigurationNeeded", platform: "ConfigurationNeeded", qeSVN: 6, want: sgx.OutOfDateConfigurationNeeded, adv: []string{"INTEL-SA-00002", "INTEL-SA-00615"}},
		{name: "QE OutOfDate, platform ConfigurationAndSWHardeningNeeded", platform: "ConfigurationAndSWHardeningNeeded", qeSVN: 6, want: sgx.OutOfDateConfigurationNeeded, adv: []string{"INTEL-SA-00002", "INTEL-SA-00615"}},
		{name: "QE OutOfDate, platform OutOfDateConfigurationNeeded", platform: "OutOfDateConfigurationNeeded", qeSVN: 6, want: sgx.OutOfDateConfigurationNeeded, adv: []string{"INTEL-SA-00002", "INTEL-SA-00615"}},
		{name: "QE Revoked level", platform: "SWHardeningNeeded", qeSVN: 3, want: sgx.Revoked, adv: []string{"INTEL-SA-00615", "INTEL-SA-00666"}},
		{name: "first matching level wins", levels: []sgxtest.TCBLevel{
			{Components: [16]uint8{6, 5, 2, 2, 255, 1}, PCESVN: 13, Status: "UpToDate"},
			{Components: comps, PCESVN: 14, Status: "UpToDate"},
			{Components: lower, PCESVN: 13, Status: "SWHardeningNeeded", AdvisoryIDs: []string{"INTEL-SA-00615", "INTEL-SA-00003"}},
			{Components: lower, PCESVN: 11, Status: "OutOfDate"},
		}, qeSVN: 9, want: sgx.SWHardeningNeeded, adv: []string{"INTEL-SA-00003", "INTEL-SA-00615"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, func(b *sgxtest.Builder) {
				b.QEReport.ISVSVN = tc.qeSVN
				b.QEIdentity.Levels = append(b.QEIdentity.Levels, sgxtest.QELevel{ISVSVN: 3, Status: "Revoked", AdvisoryIDs: []string{"INTEL-SA-00666"}})
				if tc.levels != nil {
					b.TCBInfo.Levels = tc.levels
					return
				}
				var adv []string
				if tc.platform != "UpToDate" {
					adv = []string{"INTEL-SA-00615"}
				}
				b.TCBInfo.Levels = []sgxtest.TCBLevel{{Components: comps, PCESVN: 13, Status: tc.platform, AdvisoryIDs: adv}}
			})
			res, err := sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want {
				t.Errorf("status %s (platform %s, QE %s), want %s", res.Status, res.PlatformStatus, res.QEStatus, tc.want)
			}
			if !slices.Equal(res.AdvisoryIDs, tc.adv) && !(len(res.AdvisoryIDs) == 0 && len(tc.adv) == 0) {
				t.Errorf("advisories %v, want %v", res.AdvisoryIDs, tc.adv)
			}
		})
	}
}

func TestMergeStatus(t *testing.T) {
	for _, p := range sgx.AllTCBStatuses {
		if got := sgx.MergeStatus(p, sgx.UpToDate); got != p {
			t.Errorf("MergeStatus(%s, UpToDate) = %s", p, got)
		}
		if got := sgx.MergeStatus(p, sgx.Revoked); got != sgx.Revoked {
			t.Errorf("MergeStatus(%s, Revoked) = %s", p, got)
		}
	}
	want := map[sgx.TCBStatus]sgx.TCBStatus{
		sgx.UpToDate: sgx.OutOfDate, sgx.SWHardeningNeeded: sgx.OutOfDate,
		sgx.ConfigurationNeeded: sgx.OutOfDateConfigurationNeeded, sgx.ConfigurationAndSWHardeningNeeded: sgx.OutOfDateConfigurationNeeded,
		sgx.OutOfDate: sgx.OutOfDate, sgx.OutOfDateConfigurationNeeded: sgx.OutOfDateConfigurationNeeded, sgx.Revoked: sgx.Revoked,
	}
	for p, w := range want {
		if got := sgx.MergeStatus(p, sgx.OutOfDate); got != w {
			t.Errorf("MergeStatus(%s, OutOfDate) = %s, want %s", p, got, w)
		}
	}
}

func TestErrorsAreTyped(t *testing.T) {
	_, err := sgx.Verify([]byte{3, 0}, &sgx.Collateral{}, sgx.Options{})
	var e *sgx.Error
	if !errors.As(err, &e) || e.Item != sgx.ItemQuote || !errors.Is(err, sgx.ErrMalformed) {
		t.Fatalf("%v", err)
	}
	if _, err := sgx.Verify(nil, nil, sgx.Options{}); err == nil {
		t.Fatal("nil collateral accepted")
	}
}

// TestAnyQuoteByteChanged flips each byte of a valid quote in turn: every
// change must make verification fail (header, report body, signatures,
// keys, QE report, authentication data, certification data). Bytes of the
// PEM certification data are sampled every 5th, the rest taken all.
func TestAnyQuoteByteChanged(t *testing.T) {
	ev := build(t, nil)
	o := opts(ev)
	if _, err := sgx.Verify(ev.Quote, ev.Collateral, o); err != nil {
		t.Fatal(err)
	}
	// 48-byte header + 384-byte report body + 4-byte length, then the
	// signature data; its certification data (PEM) is at the end.
	const sigData = 48 + 384 + 4
	pemStart := bytes.Index(ev.Quote, []byte("-----BEGIN"))
	if pemStart < 0 {
		t.Fatal("no PEM certification data in the quote")
	}
	checked := 0
	for i := range ev.Quote {
		if i >= pemStart && (i-pemStart)%5 != 0 {
			continue
		}
		q := bytes.Clone(ev.Quote)
		q[i] ^= 0x01
		if _, err := sgx.Verify(q, ev.Collateral, o); err == nil {
			region := "header"
			switch {
			case i >= pemStart:
				region = "certification data"
			case i >= sigData:
				region = "signature data"
			case i >= 48:
				region = "report body"
			}
			t.Fatalf("the quote with byte %d (%s) changed still verifies", i, region)
		}
		checked++
	}
	t.Logf("%d changed quotes, all refused", checked)
}

// TestQEBelowEveryLevel: a QE whose ISVSVN is below every level of the QE
// identity is not supported at all (a hard failure, as Intel's QVL has it),
// not a Revoked status a policy might be made to list.
func TestQEBelowEveryLevel(t *testing.T) {
	ev := build(t, func(b *sgxtest.Builder) { b.QEReport.ISVSVN = 5 })
	res, err := sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
	if res != nil {
		t.Fatalf("a result came back: %s", res)
	}
	assertErr(t, err, sgx.ItemQEIdentity, sgx.ErrTCBLevelNotFound)
	if !strings.Contains(err.Error(), "TCB not supported") {
		t.Errorf("error %q does not say the TCB is not supported", err)
	}
}

// TestQELevelsSorted: the QE identity's levels are searched highest ISVSVN
// first, whatever their JSON order.
func TestQELevelsSorted(t *testing.T) {
	ev := build(t, func(b *sgxtest.Builder) {
		b.QEReport.ISVSVN = 9
		b.QEIdentity.Levels = []sgxtest.QELevel{
			{ISVSVN: 6, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00002"}},
			{ISVSVN: 8, Status: "UpToDate"},
		}
	})
	res, err := sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
	if err != nil {
		t.Fatal(err)
	}
	if res.QEStatus != sgx.UpToDate || len(res.AdvisoryIDs) != 0 {
		t.Errorf("QE status %s, advisories %v; want UpToDate and none", res.QEStatus, res.AdvisoryIDs)
	}
}

// TestTCBLevelOrder: TCB levels are sorted as Intel's QVL sorts them (the
// 16 CPUSVN components in order, then PCESVN, highest first) before the
// first applicable one is taken. With [4,5,...] UpToDate listed before
// [5,4,...] OutOfDate, a platform at [5,5,...] matches both; sorted,
// [5,4,...] comes first and the answer is OutOfDate, as QVL answers.
func TestTCBLevelOrder(t *testing.T) {
	platform := [16]uint8{5, 5, 2, 2, 255, 1}
	a := [16]uint8{4, 5, 2, 2, 255, 1}
	b := [16]uint8{5, 4, 2, 2, 255, 1}
	for _, tc := range []struct {
		name   string
		levels []sgxtest.TCBLevel
		want   sgx.TCBStatus
	}{
		{"UpToDate listed first", []sgxtest.TCBLevel{
			{Components: a, PCESVN: 13, Status: "UpToDate"},
			{Components: b, PCESVN: 13, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00001"}},
		}, sgx.OutOfDate},
		{"OutOfDate listed first", []sgxtest.TCBLevel{
			{Components: b, PCESVN: 13, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00001"}},
			{Components: a, PCESVN: 13, Status: "UpToDate"},
		}, sgx.OutOfDate},
		{"PCESVN breaks a tie", []sgxtest.TCBLevel{
			{Components: platform, PCESVN: 10, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00001"}},
			{Components: platform, PCESVN: 12, Status: "SWHardeningNeeded", AdvisoryIDs: []string{"INTEL-SA-00615"}},
		}, sgx.SWHardeningNeeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, func(bl *sgxtest.Builder) {
				bl.Components = platform
				bl.TCBInfo.Levels = tc.levels
			})
			res, err := sgx.Verify(ev.Quote, ev.Collateral, opts(ev))
			if err != nil {
				t.Fatal(err)
			}
			if res.PlatformStatus != tc.want {
				t.Errorf("platform status %s, want %s", res.PlatformStatus, tc.want)
			}
		})
	}
}

// TestVerifyQuoteUsesTheBytes: a parsed quote whose fields are edited after
// parsing cannot make the verdict disagree with the signed bytes.
func TestVerifyQuoteUsesTheBytes(t *testing.T) {
	ev := build(t, nil)
	q, err := abi.ParseQuote(ev.Quote)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sgx.VerifyQuote(q, ev.Collateral, opts(ev))
	if err != nil {
		t.Fatal(err)
	}
	signed := res.ReportBody.MRENCLAVE
	q.ReportBody.MRENCLAVE[0] ^= 0xff
	res, err = sgx.VerifyQuote(q, ev.Collateral, opts(ev))
	if res != nil {
		t.Fatalf("edited quote verified, MRENCLAVE %x (signed %x)", res.ReportBody.MRENCLAVE, signed)
	}
	assertErr(t, err, sgx.ItemQuote, sgx.ErrMismatch)
	// Editing the bytes instead fails the signature.
	q, _ = abi.ParseQuote(bytes.Clone(ev.Quote))
	q.Raw[48+64] ^= 1
	if _, err := sgx.VerifyQuote(q, ev.Collateral, opts(ev)); err == nil {
		t.Fatal("quote with edited bytes verified")
	}
	if _, err := sgx.VerifyQuote(&abi.Quote{}, ev.Collateral, opts(ev)); err == nil {
		t.Fatal("empty quote verified")
	}
}

// TestCollateralPCKFields: the collateral's pck_certificate and
// pck_signing_chain (which BlindAI servers fill in and proofs carry) must
// be the quote's own certificates when present; otherwise they would be
// bytes inside verified evidence that nothing checked.
func TestCollateralPCKFields(t *testing.T) {
	ev := build(t, nil)
	other, err := sgxtest.NewBuilder(pk2, testNow).Build() // another PKI: other certificates
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(certs ...*x509.Certificate) string {
		var s strings.Builder
		for _, c := range certs {
			s.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		return s.String()
	}
	for _, tc := range []struct {
		name       string
		cert, sign string
		item       sgx.Item // "" = verifies
	}{
		{"absent", "", "", ""},
		{"as the quote carries them", pemOf(ev.PCK), pemOf(ev.PCKCA, ev.Root), ""},
		{"chain without the root", pemOf(ev.PCK), pemOf(ev.PCKCA), ""},
		{"only the certificate", "\n" + pemOf(ev.PCK) + "\n", "", ""},
		{"another PCK certificate", pemOf(other.PCK), "", sgx.ItemCollateralPCKCertificate},
		{"certificate and its CA", pemOf(ev.PCK, ev.PCKCA), "", sgx.ItemCollateralPCKCertificate},
		{"another CA", "", pemOf(other.PCKCA), sgx.ItemCollateralPCKSigningChain},
		{"chain in the wrong order", "", pemOf(ev.Root, ev.PCKCA), sgx.ItemCollateralPCKSigningChain},
		{"chain longer than the quote's", "", pemOf(ev.PCKCA, ev.Root, ev.Root), sgx.ItemCollateralPCKSigningChain},
		{"chain starting with the PCK certificate", "", pemOf(ev.PCK, ev.PCKCA), sgx.ItemCollateralPCKSigningChain},
		{"garbage certificate", "not a certificate", "", sgx.ItemCollateralPCKCertificate},
		{"trailing garbage in the chain", "", pemOf(ev.PCKCA) + "x", sgx.ItemCollateralPCKSigningChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *ev.Collateral
			c.PCKCertificate, c.PCKSigningChain = tc.cert, tc.sign
			_, err := sgx.Verify(ev.Quote, &c, opts(ev))
			if tc.item == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *sgx.Error
			if !errors.As(err, &e) || e.Item != tc.item {
				t.Fatalf("error %v, want one about the %s", err, tc.item)
			}
		})
	}
}

// TestNonCanonicalPEMRefused: PEM text that decodes to the signed bytes
// but is not their one encoding (unused base64 bits set, headers) is
// refused: a proof must not carry bytes that change without changing what
// was checked.
func TestNonCanonicalPEMRefused(t *testing.T) {
	ev := build(t, nil)
	// The TCB info issuer chain: the TCB signing certificate and the root.
	certs := []*x509.Certificate{}
	for rest := []byte(ev.Collateral.TCBInfoIssuerChain); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	encode := func(der []byte, tweak func(string) string, headers map[string]string) string {
		b64 := tweak(base64.StdEncoding.EncodeToString(der))
		var s strings.Builder
		s.WriteString("-----BEGIN CERTIFICATE-----\n")
		for k, v := range headers {
			s.WriteString(k + ": " + v + "\n\n")
		}
		for len(b64) > 64 {
			s.WriteString(b64[:64] + "\n")
			b64 = b64[64:]
		}
		s.WriteString(b64 + "\n-----END CERTIFICATE-----\n")
		return s.String()
	}
	same := func(s string) string { return s }
	verify := func(chain string) error {
		c := *ev.Collateral
		c.TCBInfoIssuerChain = chain
		_, err := sgx.Verify(ev.Quote, &c, opts(ev))
		return err
	}
	canonical := encode(certs[0].Raw, same, nil) + encode(certs[1].Raw, same, nil)
	if err := verify(canonical); err != nil {
		t.Fatalf("the chain re-encoded canonically: %v", err)
	}
	if err := verify(encode(certs[0].Raw, same, map[string]string{"Proc-Type": "4,ENCRYPTED"}) + encode(certs[1].Raw, same, nil)); err == nil {
		t.Error("a PEM block with headers was accepted")
	}
	tested := false
	for i, c := range certs {
		if len(c.Raw)%3 == 0 {
			continue // no padding, no unused bits
		}
		// Set the lowest unused bit of the last data character.
		setUnused := func(s string) string {
			i := strings.IndexByte(s, '=') - 1
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
			v := strings.IndexByte(alphabet, s[i])
			return s[:i] + string(alphabet[v|1]) + s[i+1:]
		}
		parts := []string{encode(certs[0].Raw, same, nil), encode(certs[1].Raw, same, nil)}
		parts[i] = encode(c.Raw, setUnused, nil)
		if blk, _ := pem.Decode([]byte(parts[i])); blk == nil || !bytes.Equal(blk.Bytes, c.Raw) {
			t.Fatal("the test's PEM does not decode to the certificate: the test is wrong")
		}
		if err := verify(parts[0] + parts[1]); err == nil {
			t.Errorf("certificate %d with an unused base64 bit set was accepted", i)
		}
		tested = true
	}
	if !tested {
		t.Log("neither certificate's DER length leaves unused base64 bits in this run; only the header case was checked")
	}
}
