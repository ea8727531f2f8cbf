package sgx_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/policy"
)

func at(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }

func TestIntelRootFingerprint(t *testing.T) {
	root := sgx.IntelRootCA()
	sum := sha256.Sum256(root.Raw)
	const want = "44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3"
	got := ""
	for i, b := range sum {
		if i > 0 {
			got += ":"
		}
		got += hex.EncodeToString([]byte{b})
	}
	if got != toLower(want) {
		t.Fatalf("embedded root fingerprint %s, want %s", got, want)
	}
	if root.Subject.CommonName != "Intel SGX Root CA" {
		t.Fatalf("root CN %q", root.Subject.CommonName)
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func dcapQVL(t *testing.T) ([]byte, *sgx.Collateral) {
	quote := testvectors.Read(t, "sgx/dcap-qvl/sgx_quote")
	c, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "sgx/dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	return quote, c
}

func TestDCAPQVLVector(t *testing.T) {
	quote, c := dcapQVL(t)
	// Latest issue date: TCB info 2025-06-19T10:56:11Z; earliest nextUpdate:
	// QE identity 2025-07-19T10:01:18Z.
	first := time.Date(2025, 6, 19, 10, 56, 11, 0, time.UTC)
	last := time.Date(2025, 7, 19, 10, 1, 17, 0, time.UTC)
	for _, now := range []time.Time{first, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), last} {
		res, err := sgx.Verify(quote, c, sgx.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("at %s: %v", now, err)
		}
		if res.Status != sgx.ConfigurationAndSWHardeningNeeded {
			t.Errorf("at %s: status %s", now, res.Status)
		}
		if !slices.Equal(res.AdvisoryIDs, []string{"INTEL-SA-00289", "INTEL-SA-00615"}) {
			t.Errorf("advisories %v", res.AdvisoryIDs)
		}
		if !res.CRLsChecked || res.QEStatus != sgx.UpToDate || hex.EncodeToString(res.FMSPC[:]) != "00a067110000" {
			t.Errorf("result %s", res)
		}
		if !res.CollateralIssued.Equal(first) || !res.CollateralNextUpdate.Equal(last.Add(time.Second)) {
			t.Errorf("collateral dates %s .. %s", res.CollateralIssued, res.CollateralNextUpdate)
		}
		if res.TCBEvaluationDataNumber != 17 {
			t.Errorf("TCB evaluation data number %d", res.TCBEvaluationDataNumber)
		}
	}
	for _, tc := range []struct {
		now  time.Time
		item sgx.Item
		err  error
	}{
		{first.Add(-time.Second), sgx.ItemTCBInfo, sgx.ErrNotYetValid},
		{last.Add(time.Second), sgx.ItemQEIdentity, sgx.ErrExpired},
	} {
		_, err := sgx.Verify(quote, c, sgx.Options{Now: func() time.Time { return tc.now }})
		assertErr(t, err, tc.item, tc.err)
	}
	// Without CRLs the default refuses.
	noCRL := *c
	noCRL.PCKCRL = ""
	_, err := sgx.Verify(quote, &noCRL, sgx.Options{Now: func() time.Time { return first }})
	assertErr(t, err, sgx.ItemPCKCRL, sgx.ErrMissing)
	// Tampered body: the signature covers the exact bytes.
	bad := *c
	bad.TCBInfo = c.TCBInfo[:20] + " " + c.TCBInfo[20:]
	_, err = sgx.Verify(quote, &bad, sgx.Options{Now: func() time.Time { return first }})
	assertErr(t, err, sgx.ItemTCBInfo, sgx.ErrSignature)
}

func assertErr(t *testing.T, err error, item sgx.Item, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: %v", item, sentinel)
	}
	var e *sgx.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *sgx.Error", err)
	}
	if e.Item != item || !errors.Is(err, sentinel) {
		t.Fatalf("error %q, want item %q and %q", err, item, sentinel)
	}
}

func oasis(t *testing.T) ([]byte, *sgx.Collateral) {
	quote := testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_pck_chain.bin")
	chain := string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000_certs.pem"))
	return quote, &sgx.Collateral{
		TCBInfoIssuerChain:    chain,
		TCBInfo:               string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000.json")),
		QEIdentityIssuerChain: chain,
		QEIdentity:            string(testvectors.Read(t, "sgx/oasis/qe_identity_v2.json")),
	}
}

// The oasis set comes without CRLs, so its tests allow missing CRLs.
func TestOasisVector(t *testing.T) {
	quote, c := oasis(t)
	opts := func(unix int64) sgx.Options { return sgx.Options{Now: at(unix), AllowMissingCRLs: true} }
	res, err := sgx.Verify(quote, c, opts(1671497404))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("oasis: %s", res)
	if res.CRLsChecked {
		t.Error("CRLsChecked true without CRLs")
	}
	if hex.EncodeToString(res.ReportBody.MRENCLAVE[:]) != "68823bc62f409ee33a32ea270cfe45d4b19a6fb3c8570d7bc186cbe062398e8f" {
		t.Errorf("MRENCLAVE %x", res.ReportBody.MRENCLAVE)
	}
	if res.Quote.Header.QESVN != 9 || res.Quote.Header.PCESVN != 13 || hex.EncodeToString(res.FMSPC[:]) != "00606a000000" {
		t.Errorf("header %+v FMSPC %x", res.Quote.Header, res.FMSPC)
	}

	tests := []struct {
		name string
		opts sgx.Options
		item sgx.Item
		err  error
	}{
		{"PCK certificate expired", opts(1891163522), sgx.ItemPCKCertificate, sgx.ErrExpired},
		{"PCK certificate not yet valid", opts(1670238720), sgx.ItemPCKCertificate, sgx.ErrNotYetValid},
		{"QE identity issued in the future", opts(1671194735), sgx.ItemQEIdentity, sgx.ErrNotYetValid},
		{"QE identity past nextUpdate", opts(1673786737), sgx.ItemQEIdentity, sgx.ErrExpired},
		{"min TCB evaluation data number 100", func() sgx.Options { o := opts(1671497404); o.MinTCBEvaluationDataNumber = 100; return o }(), sgx.ItemQEIdentity, sgx.ErrTooOld},
		{"CRLs required by default", sgx.Options{Now: at(1671497404)}, sgx.ItemRootCACRL, sgx.ErrMissing},
		{"real vector against a test root", func() sgx.Options { o := opts(1671497404); o.TestRoot = newPKI(t).Root; return o }(), sgx.ItemCertificationData, sgx.ErrUntrustedRoot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sgx.Verify(quote, c, tc.opts)
			assertErr(t, err, tc.item, tc.err)
			t.Log(err)
		})
	}
	// Held to 30 days from its issue date (as oasis-core's default policy
	// does), the QE identity (issued 2022-12-16T12:45:36Z) is too old at
	// 1673786737 (2023-01-15T12:45:37Z) — one second after its own
	// nextUpdate too. Ten days bound it even at the success time.
	o := opts(1673786737)
	o.MaxCollateralAge = 30 * 24 * time.Hour
	if _, err := sgx.Verify(quote, c, o); err == nil {
		t.Error("30-day collateral age: no error")
	}
	o = opts(1671497404)
	o.MaxCollateralAge = 2 * 24 * time.Hour
	_, err = sgx.Verify(quote, c, o)
	assertErr(t, err, sgx.ItemQEIdentity, sgx.ErrTooOld)

	bad := *c
	bad.TCBInfoIssuerChain = string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000_certs_bad.pem"))
	_, err = sgx.Verify(quote, &bad, opts(1671497404))
	var e *sgx.Error
	if !errors.As(err, &e) || e.Item != sgx.ItemTCBInfoIssuerChain && e.Item != sgx.ItemTCBInfo {
		t.Fatalf("bad TCB info chain: %v", err)
	}
	t.Logf("bad chain: %v", err)
}

func TestOasisEPPIDQuote(t *testing.T) {
	quote := testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_eppid.bin")
	_, c := oasis(t)
	q, err := abi.ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header.QESVN != 7 || q.Header.PCESVN != 12 {
		t.Errorf("QE SVN %d PCE SVN %d", q.Header.QESVN, q.Header.PCESVN)
	}
	_, err = sgx.Verify(quote, c, sgx.Options{Now: at(1671497404), AllowMissingCRLs: true})
	assertErr(t, err, sgx.ItemCertificationData, sgx.ErrUnsupported)
	t.Log(err)
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestRealVectorsUnderPolicies runs the real quotes, with the statuses
// their sources state, through the strict default policy, a policy as
// "blindfold policy from-sigstruct" writes it, a BlindAI 0.5 policy, and a
// policy that accepts their status and advisories deliberately.
func TestRealVectorsUnderPolicies(t *testing.T) {
	qvlQuote, qvlColl := dcapQVL(t)
	qvl, err := sgx.Verify(qvlQuote, qvlColl, sgx.Options{Now: func() time.Time { return time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	oasisQuote, oasisColl := oasis(t)
	oas, err := sgx.Verify(oasisQuote, oasisColl, sgx.Options{Now: at(1671497404), AllowMissingCRLs: true})
	if err != nil {
		t.Fatal(err)
	}
	if qvl.Status != sgx.ConfigurationAndSWHardeningNeeded || !slices.Equal(qvl.AdvisoryIDs, []string{"INTEL-SA-00289", "INTEL-SA-00615"}) {
		t.Fatalf("dcap-qvl: %s", qvl)
	}
	if oas.Status != sgx.SWHardeningNeeded || !slices.Equal(oas.AdvisoryIDs, []string{"INTEL-SA-00615", "INTEL-SA-00657"}) {
		t.Fatalf("oasis: %s", oas)
	}
	parse := func(res *sgx.Result, extra string) *policy.Policy {
		rb := res.ReportBody
		text := fmt.Sprintf(`mr_enclave = "%x"
misc_select_hex = "%#x"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "%#x"
attributes_xfrm_hex = "%#x"
attributes_mask_flags_hex = "0xffffffffffffffff"
attributes_mask_xfrm_hex = "0xffffffffffffffff"
allow_debug = %t
`, rb.MRENCLAVE, rb.MiscSelect, rb.AttributesFlags&^abi.AttributeInit, rb.AttributesXFRM, rb.AttributesFlags&abi.AttributeDebug != 0) + extra
		p, err := policy.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	generated := "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\naccepted_advisory_ids = " + fmt.Sprintf("%q", policy.BuildMitigatedAdvisoryIDs) + "\n"
	generated = strings.ReplaceAll(generated, "\" \"", "\", \"")
	for _, tc := range []struct {
		name    string
		res     *sgx.Result
		extra   string
		accepts bool
		blind   bool
	}{
		{"dcap-qvl, strict default", qvl, "accepted_advisory_ids = []\n", false, false},
		{"dcap-qvl, generated policy", qvl, generated, false, false},
		{"dcap-qvl, BlindAI 0.5 policy", qvl, "", false, true},
		{"dcap-qvl, accepted deliberately", qvl, "accepted_tcb_statuses = [\"UpToDate\", \"ConfigurationAndSWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00289\", \"INTEL-SA-00615\"]\n", true, false},
		{"oasis, strict default", oas, "accepted_advisory_ids = []\n", false, false},
		{"oasis, generated policy (INTEL-SA-00657 not mitigated)", oas, generated, false, false},
		{"oasis, BlindAI 0.5 policy", oas, "", true, true},
		{"oasis, accepted deliberately", oas, "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00615\", \"INTEL-SA-00657\"]\n", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(tc.res, tc.extra)
			if p.BlindAI05 != tc.blind {
				t.Fatalf("BlindAI05 = %t", p.BlindAI05)
			}
			if err := p.CheckReport(tc.res.ReportBody); err != nil {
				t.Fatalf("the report itself: %v", err)
			}
			err := p.Check(tc.res)
			if tc.accepts && err != nil {
				t.Fatal(err)
			}
			if !tc.accepts && !errors.Is(err, policy.ErrMismatch) {
				t.Fatalf("err = %v, want a refusal", err)
			}
		})
	}
}
