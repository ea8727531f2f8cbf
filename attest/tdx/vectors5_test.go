package tdx

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// v5At is inside the validity of the real version 5 quote's PCK
// certificate (from 2026-01-27) and of its TDX TCB info
// (2026-02-01T14:49:26Z to 2026-03-03T14:49:26Z). The TD QE identity
// (2023-06-08 to 2023-07-08) and the CRLs (2023) that come with it in
// go-tdx-guest's test data expired long before: no single time verifies
// the quote with these files, and what can be checked is checked apart.
var v5At = time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)

const v5Quote = "tdx/go-tdx-guest/quote_v5_sample.dat"

func realV5(t *testing.T) *rawQuote {
	t.Helper()
	q, err := parseQuoteV5(testvectors.Read(t, v5Quote))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// realV5Collateral is the collateral of the real version 5 quote: its TDX
// TCB info, TD QE identity and CRLs from go-tdx-guest's test data, which
// come without issuer chains, with the issuer chains of the dcap-qvl TDX
// collateral (the Intel SGX TCB Signing certificate of 2025, the same key
// that signed both, and the Intel SGX PCK Platform CA that issued the
// quote's PCK certificate).
func realV5Collateral(t *testing.T) *sgx.Collateral {
	t.Helper()
	dc, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "tdx/dcap-qvl/tdx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &sgx.Collateral{
		TCBInfoIssuerChain:    dc.TCBInfoIssuerChain,
		TCBInfo:               string(testvectors.Read(t, "tdx/go-tdx-guest/sample_tcbinfo_response_v5")),
		QEIdentityIssuerChain: dc.QEIdentityIssuerChain,
		QEIdentity:            string(testvectors.Read(t, "tdx/go-tdx-guest/sample_qeIdentity_response")),
		PCKCRLIssuerChain:     dc.PCKCRLIssuerChain,
		PCKCRL:                hex.EncodeToString(testvectors.Read(t, "tdx/go-tdx-guest/pckcrl")),
		RootCACRL:             hex.EncodeToString(testvectors.Read(t, "tdx/go-tdx-guest/rootcrl.der")),
	}
}

// TestRealV5Parses: the real version 5 quote has a TD report 1.5 body,
// whose fields (TEE_TCB_SVN_2, MRSERVICETD among them) the result carries,
// and the platform of its PCK certificate.
func TestRealV5Parses(t *testing.T) {
	raw := testvectors.Read(t, v5Quote)
	q := realV5(t)
	if q.bodyType != BodyTD15 || len(q.body) != tdBody15Size || len(q.signed) != 48+6+648 {
		t.Fatalf("body type %d, body %d bytes, signed %d bytes", q.bodyType, len(q.body), len(q.signed))
	}
	r := resultOfV5(q, pccs.Platform{FMSPC: [6]byte{0x90, 0xc0, 0x6f}}, v5At)
	h := func(b []byte) string { return hex.EncodeToString(b) }
	for _, c := range []struct{ name, got, want string }{
		{"TEE_TCB_SVN", h(r.TEETCBSVN[:]), "0b010400000000000000000000000000"},
		{"TEE_TCB_SVN_2", h(r.TEETCBSVN2[:]), "0d010400000000000000000000000000"},
		{"MRSERVICETD", h(r.MRServiceTD[:]), strings.Repeat("00", 48)},
		{"MRSIGNERSEAM", h(r.MRSignerSEAM[:]), strings.Repeat("00", 48)},
		{"MRTD", h(r.MRTD[:]), h(raw[48+6+136 : 48+6+184])},
		{"report data", h(r.ReportData[:]), h(raw[48+6+520 : 48+6+584])},
		{"FMSPC", r.FMSPC, "90C06F000000"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if r.Version != 5 || r.BodyType != BodyTD15 {
		t.Errorf("version %d body type %d", r.Version, r.BodyType)
	}
	p, err := PlatformOf(raw)
	if err != nil || p != (pccs.Platform{FMSPC: [6]byte{0x90, 0xc0, 0x6f}, CA: pccs.CAPlatform, TEE: pccs.TEETDX}) {
		t.Errorf("PlatformOf = %v, %v", p, err)
	}
}

// TestRealV5Signatures: the PCK chain of the real version 5 quote verifies
// to the pinned Intel root at v5At, the QE report's signature and report
// data binding verify, and the quote's signature verifies over header,
// body descriptor and body, and not over header and body alone (as in a
// version 4 quote).
func TestRealV5Signatures(t *testing.T) {
	q := realV5(t)
	v := &verifierV5{q: q, now: v5At, root: sgx.IntelRootCA()}
	for _, step := range []struct {
		name string
		f    func() error
	}{{"PCK chain", v.pckChain}, {"QE report", v.qeReport}, {"quote signature", v.quoteSignature}} {
		if err := step.f(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	key := q.raw[48+6+648+4+64 : 48+6+648+4+128]
	if !bytes.Equal(key, q.attestationKey) {
		t.Fatal("attestation key not where the layout puts it")
	}
	headerAndBody := append(bytes.Clone(q.raw[:48]), q.body...)
	alt := &verifierV5{q: &rawQuote{signed: headerAndBody, signature: q.signature, attestationKey: q.attestationKey}}
	if alt.quoteSignature() == nil {
		t.Error("the quote's signature verifies over header || body without the body descriptor")
	}
	// The PCK certificate is not valid before 2026-01-27.
	early := &verifierV5{q: q, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), root: sgx.IntelRootCA()}
	if err := early.pckChain(); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "valid from") {
		t.Errorf("PCK chain before the PCK certificate's notBefore: %v", err)
	}
	other := newPKI(t, v5At)
	if err := (&verifierV5{q: q, now: v5At, root: other.root}).pckChain(); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "not at the pinned root") {
		t.Errorf("PCK chain against another root: %v", err)
	}
}

// TestRealV5Collateral: with the real collateral at v5At, the TCB info's
// signature verifies and it places the quote at an UpToDate platform TCB
// level and TDX module level; the QE identity's signature verifies and the
// QE matches it, UpToDate; both CRLs verify and revoke nothing in use;
// and the only failure left is the validity window of the QE identity and
// the CRLs, which is what full verification says.
func TestRealV5Collateral(t *testing.T) {
	q := realV5(t)
	v := &verifierV5{q: q, c: realV5Collateral(t), now: v5At, root: sgx.IntelRootCA()}
	if err := v.pckChain(); err != nil {
		t.Fatal(err)
	}
	if err := v.tcbInfo(); err != nil {
		t.Fatal(err)
	}
	// The expected verdict, read by hand from sample_tcbinfo_response_v5
	// and the quote:
	//   - the PCK certificate's SGX TCB components are 4 4 2 2 4 1 0 5 and
	//     eight 0, its PCESVN 13; the quote's TEE_TCB_SVN is 0b 01 04 and
	//     thirteen 0.
	//   - tcbLevels[0] (tcbDate 2024-11-13, UpToDate) has SGX components
	//     3 3 2 2 4 1 0 5 0..., PCESVN 13, TDX components 5 0 3 0...: every
	//     SGX component and the PCESVN are reached; TEE_TCB_SVN[1] = 1 > 0
	//     (TDX 1.5), so the first two TDX components are left to the module
	//     identity, and TEE_TCB_SVN[2] = 4 >= 3, the rest 0 >= 0. The first
	//     level applies: UpToDate.
	//   - the module identity is "TDX_01" (TEE_TCB_SVN[1] = 0x01): its
	//     mrsigner (48 zero bytes) is the quote's MRSIGNERSEAM, its
	//     attributes 0 under mask FFFFFFFFFFFFFFFF the SEAM attributes (0);
	//     its levels have ISVSVN 6 (UpToDate), 4 and 2 (OutOfDate); the
	//     module's SVN TEE_TCB_SVN[0] = 11 reaches the first: level 0,
	//     UpToDate.
	want := tcbVerdict{level: 0, status: "UpToDate", module: "TDX_01", moduleLevel: 0, moduleStatus: "UpToDate"}
	if *v.tcb != want {
		t.Fatalf("TCB verdict %+v, want %+v", *v.tcb, want)
	}
	// The QE report: MRSIGNER DC9E2A7C..., ISVPRODID 2, MISCSELECT 0,
	// ATTRIBUTES 15000000000000000E7... which under the QE identity's mask
	// FBFFFFFFFFFFFFFF0000... is 11000000...; ISVSVN 7 reaches the only
	// level (ISVSVN 4, UpToDate).
	if err := v.qeIdentity(); err != nil {
		t.Fatal(err)
	}
	if v.qeSVN != 7 || v.qeStatus != "UpToDate" {
		t.Fatalf("QE ISVSVN %d status %s, want 7 UpToDate", v.qeSVN, v.qeStatus)
	}
	if err := v.crls(); err != nil {
		t.Fatal(err)
	}
	if err := v.upToDate(); err != nil {
		t.Fatal(err)
	}
	err := v.dates()
	var se *staleError
	if !errors.As(err, &se) {
		t.Fatalf("dates: %v, want stale collateral", err)
	}
	for _, item := range []string{"QE identity expired", "PCK CRL expired", "root CA CRL expired"} {
		if !strings.Contains(err.Error(), item) {
			t.Errorf("%v: does not say %q", err, item)
		}
	}
	if strings.Contains(err.Error(), "TCB info") {
		t.Errorf("%v: the TCB info is valid at %s", err, v5At)
	}
}

// TestRealV5Verify: full verification of the real version 5 quote with its
// collateral fails at v5At only because the QE identity and the CRLs are
// stale (validity windows are checked last), and at a time inside their
// windows because the PCK certificate was not issued yet.
func TestRealV5Verify(t *testing.T) {
	enc, err := EncodeCollateral(realV5Collateral(t))
	if err != nil {
		t.Fatal(err)
	}
	ev := &attest.Evidence{Type: attest.TypeTDX, Raw: testvectors.Read(t, v5Quote), Collateral: enc}
	_, err = verifierAt(t, anyTD{}, v5At).Verify(context.Background(), ev)
	if !errors.Is(err, attest.ErrStaleCollateral) || !errors.Is(err, attest.ErrBadEvidence) || !strings.Contains(err.Error(), "QE identity expired at its next update, 2023-07-08T07:24:59Z") {
		t.Fatalf("at %s: %v, want stale collateral naming the QE identity", v5At, err)
	}
	in2023 := time.Date(2023, 6, 20, 0, 0, 0, 0, time.UTC)
	_, err = verifierAt(t, anyTD{}, in2023).Verify(context.Background(), ev)
	if errors.Is(err, attest.ErrStaleCollateral) || !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "Intel SGX PCK Certificate") {
		t.Fatalf("at %s: %v, want the PCK certificate not yet valid", in2023, err)
	}
}

// TestRealV5EveryByte: flipping any byte of the real version 5 quote makes
// it fail to parse or fail a cryptographic or collateral check (everything
// but the collateral's dates, which fail for the unflipped quote too).
func TestRealV5EveryByte(t *testing.T) {
	if testing.Short() {
		t.Skip("verifies a 5 kB quote once per byte: skipped with -short only")
	}
	c := realV5Collateral(t)
	check := func(raw []byte) error {
		q, err := parseQuoteV5(raw)
		if err != nil {
			return err
		}
		v := &verifierV5{q: q, c: c, now: v5At, root: sgx.IntelRootCA()}
		for _, step := range []func() error{v.pckChain, v.qeReport, v.quoteSignature, v.tcbInfo, v.qeIdentity, v.crls, v.upToDate} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}
	raw := testvectors.Read(t, v5Quote)
	if err := check(raw); err != nil {
		t.Fatalf("the unchanged quote: %v", err)
	}
	if bad := flipEveryByte(&attest.Evidence{Raw: raw}, func(e *attest.Evidence) error { return check(e.Raw) }); len(bad) > 0 {
		t.Fatalf("bytes %v flipped: the quote still passes", bad)
	}
}

// TestLayoutBeforeGoTDXGuest: a version 4 quote whose signature data size
// does not add up is refused as malformed; go-tdx-guest's parser, which
// ParseQuote calls only after the layout is checked, panics on it (here
// caught by quoteToProto), so a hostile quote cannot crash the verifier.
func TestLayoutBeforeGoTDXGuest(t *testing.T) {
	good := testvectors.Read(t, "tdx/oasis/quote_v4_tdx_ecdsa_p256.bin")
	if _, err := ParseQuote(good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func([]byte){
		"signature data size 0":          func(q []byte) { binary.LittleEndian.PutUint32(q[632:], 0) },
		"signature data size 64":         func(q []byte) { binary.LittleEndian.PutUint32(q[632:], 64) },
		"a version 5 quote as version 4": nil,
	} {
		raw := bytes.Clone(good)
		if mutate != nil {
			mutate(raw)
		} else {
			raw = bytes.Clone(testvectors.Read(t, v5Quote))
			raw[0] = 4
		}
		if _, err := ParseQuote(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseQuote: %v, want ErrMalformed", name, err)
		}
		if _, err := PlatformOf(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: PlatformOf: %v, want ErrMalformed", name, err)
		}
		if _, err := quoteToProto(raw); err == nil {
			t.Errorf("%s: go-tdx-guest parses it", name)
		}
	}
}

// TestPCKChainCanonical: the PCK chain of a quote is refused when a byte
// changes without changing a certificate: base64 padding bits that are not
// zero, text before a certificate, a byte that is not white space or NUL
// after the last one.
func TestPCKChainCanonical(t *testing.T) {
	chain := realV5(t).pckChain
	if _, err := pckChainCerts(chain); err != nil {
		t.Fatal(err)
	}
	// The root certificate's DER is not a multiple of 3 bytes: its base64
	// ends with padding, and the last character before it has bits that
	// decoders may ignore.
	root := sgx.IntelRootCA().Raw
	if len(root)%3 == 0 {
		t.Fatalf("root certificate of %d bytes: no padding bits", len(root))
	}
	i := bytes.LastIndex(chain, []byte("=\n-----END CERTIFICATE-----"))
	for chain[i] == '=' {
		i--
	}
	padBits := bytes.Clone(chain)
	padBits[i] ^= 0x01
	if c, err := pckChainCerts(padBits); err == nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("padding bits set (%q for %q): %v, %d certificates", padBits[i], chain[i], err, len(c))
	}
	for name, bad := range map[string][]byte{
		"text before the first certificate": append([]byte("x\n"), chain...),
		"text between certificates":         bytes.Replace(chain, []byte("-----END CERTIFICATE-----\n-----BEGIN"), []byte("-----END CERTIFICATE-----\nx\n-----BEGIN"), 1),
		"a byte after the chain":            append(bytes.Clone(chain), 'x'),
	} {
		if _, err := pckChainCerts(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for name, ok := range map[string][]byte{
		"CRLF line ends":    bytes.ReplaceAll(chain, []byte("\n"), []byte("\r\n")),
		"no NUL at the end": bytes.TrimRight(chain, "\x00"),
	} {
		if _, err := pckChainCerts(ok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
