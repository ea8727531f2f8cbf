package tdx_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
)

// v5 returns a builder change that makes a version 5 quote of the body
// type, then applies change.
func v5(bodyType uint16, change func(*tdxtest.Builder)) func(*tdxtest.Builder) {
	return func(b *tdxtest.Builder) {
		b.Version, b.BodyType = 5, bodyType
		if change != nil {
			change(b)
		}
	}
}

// buildCol builds evidence and applies edit to its collateral.
func buildCol(t *testing.T, pki *tdxtest.PKI, change func(*tdxtest.Builder), edit func(*sgx.Collateral)) *attest.Evidence {
	t.Helper()
	b := tdxtest.NewBuilder(pki, synthNow)
	if change != nil {
		change(b)
	}
	q, c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	enc, err := tdx.EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}
}

var (
	serviceTD = [48]byte{0x5c, 1, 2, 3}
	svn2      = [16]byte{4, 1, 3}
)

// TestSyntheticV5Verifies: version 5 quotes with a TD report 1.0 body and
// a 1.5 body verify; the 1.5 body's TEE_TCB_SVN_2 and MRSERVICETD are in
// the result and the claims, and a policy can pin MRSERVICETD.
func TestSyntheticV5Verifies(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, bt := range []uint16{tdx.BodyTD10, tdx.BodyTD15} {
		ev := build(t, pki, v5(bt, func(b *tdxtest.Builder) { b.Body.MRServiceTD, b.Body.TEETCBSVN2 = serviceTD, svn2 }))
		if v := binary.LittleEndian.Uint16(ev.Raw); v != 5 {
			t.Fatalf("built a version %d quote", v)
		}
		extra := ""
		if bt == tdx.BodyTD15 {
			extra = "mr_servicetd = \"" + hex.EncodeToString(serviceTD[:]) + "\"\n"
		}
		c, err := verify(t, pki, ev, tdxPolicy(t, extra), synthNow)
		if err != nil {
			t.Fatalf("body type %d: %v", bt, err)
		}
		r := tdx.ResultOf(c)
		if r == nil || r.Version != 5 || r.BodyType != bt || r.MRTD != tdxtest.MRTD() || r.FMSPC != "90C06F000000" || !c.TestRoot {
			t.Fatalf("body type %d: result %+v", bt, r)
		}
		if r.TEETCBSVN != [16]byte{3, 1, 2} || r.RTMR[3][0] != 0x13 || r.TDAttributes != 0x10000000 || r.XFAM != 0xe7 {
			t.Fatalf("body type %d: fields %+v", bt, r)
		}
		got, ok := c.Get("mr_servicetd")
		if bt == tdx.BodyTD15 {
			if r.MRServiceTD != serviceTD || r.TEETCBSVN2 != svn2 || got != hex.EncodeToString(serviceTD[:]) {
				t.Fatalf("TD report 1.5: MRSERVICETD %x TEE_TCB_SVN_2 %x claim %q", r.MRServiceTD, r.TEETCBSVN2, got)
			}
		} else if r.MRServiceTD != ([48]byte{}) || r.TEETCBSVN2 != ([16]byte{}) || ok {
			t.Fatalf("TD report 1.0: MRSERVICETD %x TEE_TCB_SVN_2 %x claim %q", r.MRServiceTD, r.TEETCBSVN2, got)
		}
	}
}

func tcbEdit(edit func(ti map[string]any)) func(*tdxtest.Builder) {
	return func(b *tdxtest.Builder) { b.EditTCBInfo = edit }
}

func moduleIdentity(ti map[string]any) map[string]any {
	return ti["tdxModuleIdentities"].([]any)[0].(map[string]any)
}

func firstLevel(levels any) map[string]any {
	return levels.([]any)[0].(map[string]any)["tcb"].(map[string]any)
}

// TestSyntheticV5Refused: each check of the version 5 path refuses
// evidence that breaks it, for both body types, with an error that says
// which check failed.
func TestSyntheticV5Refused(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	ones := strings.Repeat("01", 48)
	for _, tc := range []struct {
		name   string
		change func(*tdxtest.Builder)
		col    func(*sgx.Collateral)
		at     time.Time
		pki    *tdxtest.PKI
		stale  bool
		want   string
	}{
		{name: "PCK revoked", change: func(b *tdxtest.Builder) { b.RevokePCK = true }, want: "revoked by the PCK CRL"},
		{name: "PCK CA revoked", change: func(b *tdxtest.Builder) { b.RevokePCKCA = true }, want: "revoked by the root CA CRL"},
		{name: "collateral expired", at: synthNow.Add(40 * 24 * time.Hour), stale: true, want: "TCB info expired"},
		{name: "collateral not yet valid", at: synthNow.Add(-48 * time.Hour), stale: true, want: "QE identity is not valid before"},
		{name: "PCK certificate expired", change: func(b *tdxtest.Builder) { b.PCKNotAfter = synthNow.Add(-time.Minute) }, want: "\"Intel SGX PCK Certificate\" expired"},
		{name: "another root", pki: other, want: "not at the pinned root"},
		{name: "platform OutOfDate", change: func(b *tdxtest.Builder) { b.Status = "OutOfDate" }, want: "platform's TCB level (tcbLevels[0] of the TCB info) is OutOfDate"},
		{name: "TDX module OutOfDate", change: func(b *tdxtest.Builder) { b.ModuleStatus = "OutOfDate" }, want: "TDX module's TCB level (identity TDX_01, tcbLevels[0]) is OutOfDate"},
		{name: "QE Revoked", change: func(b *tdxtest.Builder) { b.QEStatus = "Revoked" }, want: "QE's TCB level (ISVSVN 4) is Revoked"},
		{name: "QE OutOfDate", change: func(b *tdxtest.Builder) { b.QEStatus = "OutOfDate" }, want: "QE's TCB level (ISVSVN 4) is OutOfDate"},
		{name: "no platform TCB level", change: tcbEdit(func(ti map[string]any) { firstLevel(ti["tcbLevels"])["pcesvn"] = 12 }), want: "no TCB level of the TCB info applies"},
		{name: "TDX component below", change: tcbEdit(func(ti map[string]any) {
			firstLevel(ti["tcbLevels"])["tdxtcbcomponents"].([]map[string]any)[2]["svn"] = 3
		}), want: "no TCB level of the TCB info applies"},
		{name: "tdxModule MRSIGNER", change: tcbEdit(func(ti map[string]any) { ti["tdxModule"].(map[string]any)["mrsigner"] = ones }), want: "MRSIGNERSEAM 0000"},
		{name: "module identity MRSIGNER", change: tcbEdit(func(ti map[string]any) { moduleIdentity(ti)["mrsigner"] = ones }), want: "TCB info's TDX module identity TDX_01 wants 0101"},
		{name: "SEAM attributes", change: func(b *tdxtest.Builder) { b.Body.SEAMAttributes = 1 }, want: "SEAM attributes 0100000000000000 under mask"},
		{name: "module identity attributes", change: tcbEdit(func(ti map[string]any) { moduleIdentity(ti)["attributes"] = "0100000000000000" }), want: "TDX module identity TDX_01 wants 0100000000000000"},
		{name: "no module identity", change: tcbEdit(func(ti map[string]any) { moduleIdentity(ti)["id"] = "TDX_07" }), want: "no TDX module identity TDX_01"},
		{name: "module SVN below", change: tcbEdit(func(ti map[string]any) { firstLevel(moduleIdentity(ti)["tcbLevels"])["isvsvn"] = 4 }), want: "SVN 3 (TEE_TCB_SVN[0]) is below every TCB level"},
		{name: "TCB info of another FMSPC", change: tcbEdit(func(ti map[string]any) { ti["fmspc"] = "00606A000000" }), want: "FMSPC \"00606A000000\""},
		{name: "SGX TCB info", change: tcbEdit(func(ti map[string]any) { ti["id"] = "SGX" }), want: "want TDX, 3, 0"},
		{name: "SGX QE identity", change: func(b *tdxtest.Builder) { b.EditQEIdentity = func(m map[string]any) { m["id"] = "QE" } }, want: "want TD_QE, 2"},
		{name: "QE MRSIGNER", change: func(b *tdxtest.Builder) {
			b.EditQEIdentity = func(m map[string]any) { m["mrsigner"] = strings.Repeat("AB", 32) }
		}, want: "QE MRSIGNER dcdc"},
		{name: "QE ISVPRODID", change: func(b *tdxtest.Builder) { b.EditQEIdentity = func(m map[string]any) { m["isvprodid"] = 1 } }, want: "ISVPRODID 2"},
		{name: "QE below every level", change: func(b *tdxtest.Builder) {
			b.EditQEIdentity = func(m map[string]any) { firstLevel(m["tcbLevels"])["isvsvn"] = 5 }
		}, want: "QE ISVSVN 4 is below every TCB level"},
		{name: "TCB info changed after signing", col: func(c *sgx.Collateral) {
			c.TCBInfo = strings.Replace(c.TCBInfo, `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1)
		}, want: "TCB info is not signed"},
		{name: "QE identity changed after signing", col: func(c *sgx.Collateral) {
			c.QEIdentity = strings.Replace(c.QEIdentity, `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1)
		}, want: "QE identity is not signed"},
		{name: "TCB info signing chain of another root", col: func(c *sgx.Collateral) {
			c2 := otherCollateral(t, other)
			c.TCBInfo, c.TCBInfoIssuerChain = c2.TCBInfo, c2.TCBInfoIssuerChain
		}, want: "TCB info issuer chain ends at"},
		{name: "PCK CRL of another CA", col: func(c *sgx.Collateral) { c.PCKCRL = otherCollateral(t, other).PCKCRL }, want: "PCK CRL is not signed by"},
		{name: "PCK CRL issuer chain of another PKI", col: func(c *sgx.Collateral) {
			c.PCKCRLIssuerChain = otherCollateral(t, other).PCKCRLIssuerChain
		}, want: "PCK CRL issuer chain ends at"},
		{name: "root CRL of another root", col: func(c *sgx.Collateral) { c.RootCACRL = otherCollateral(t, other).RootCACRL }, want: "root CA CRL is not signed by"},
		{name: "no PCK CRL", col: func(c *sgx.Collateral) { c.PCKCRL = "" }, want: "PCK CRL is required"},
		{name: "no root CRL", col: func(c *sgx.Collateral) { c.RootCACRL = "" }, want: "root CA CRL is required"},
		{name: "no QE identity", col: func(c *sgx.Collateral) { c.QEIdentity = "" }, want: "QE identity is required"},
		// Bytes no signature covers are refused, as for SGX.
		{name: "text before the PCK CRL", col: func(c *sgx.Collateral) { c.PCKCRL = "note: " + crlPEM(t, c.PCKCRL, nil) }, want: "PCK CRL"},
		{name: "text after the root CRL", col: func(c *sgx.Collateral) { c.RootCACRL = crlPEM(t, c.RootCACRL, nil) + "note" }, want: "data after the PEM block"},
		{name: "PEM headers in the PCK CRL", col: func(c *sgx.Collateral) {
			c.PCKCRL = crlPEM(t, c.PCKCRL, map[string]string{"Note": "x"})
		}, want: "canonical PEM"},
		{name: "TCB info response with another key", col: func(c *sgx.Collateral) {
			c.TCBInfo = strings.Replace(c.TCBInfo, "{", `{"note":1,`, 1)
		}, want: "3 keys"},
		{name: "QE identity response with another key", col: func(c *sgx.Collateral) {
			c.QEIdentity = strings.Replace(c.QEIdentity, "{", `{"note":1,`, 1)
		}, want: "3 keys"},
	} {
		for _, bt := range []uint16{tdx.BodyTD10, tdx.BodyTD15} {
			ev := buildCol(t, pki, v5(bt, tc.change), tc.col)
			at, vp := synthNow, pki
			if !tc.at.IsZero() {
				at = tc.at
			}
			if tc.pki != nil {
				vp = tc.pki
			}
			_, err := verify(t, vp, ev, tdxPolicy(t, ""), at)
			if !errors.Is(err, attest.ErrBadEvidence) || errors.Is(err, attest.ErrStaleCollateral) != tc.stale || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s (body type %d): %v, want ErrBadEvidence (stale %t) saying %q", tc.name, bt, err, tc.stale, tc.want)
			}
		}
	}
}

// crlPEM re-encodes a CRL given as hex of DER (as tdxtest makes it) as
// PEM with headers.
func crlPEM(t *testing.T, hexDER string, headers map[string]string) string {
	t.Helper()
	der, err := hex.DecodeString(hexDER)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Headers: headers, Bytes: der}))
}

// otherCollateral is collateral of another PKI.
func otherCollateral(t *testing.T, pki *tdxtest.PKI) *sgx.Collateral {
	t.Helper()
	_, c, err := tdxtest.NewBuilder(pki, synthNow).Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSyntheticV5Malformed: version 5 quotes whose layout is wrong are
// refused before any signature is checked: SGX or unknown body types, a
// body size that is not the type's, bytes after the quote, truncation,
// sizes that do not add up, another TEE, key or certification data type.
func TestSyntheticV5Malformed(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	good := build(t, pki, v5(tdx.BodyTD15, nil)).Raw
	// Offsets in a version 5 quote with a 648-byte body.
	const sigLen = 48 + 6 + 648
	set16 := func(off int, v uint16) func([]byte) []byte {
		return func(q []byte) []byte { binary.LittleEndian.PutUint16(q[off:], v); return q }
	}
	set32 := func(off int, v uint32) func([]byte) []byte {
		return func(q []byte) []byte { binary.LittleEndian.PutUint32(q[off:], v); return q }
	}
	sigDataLen := binary.LittleEndian.Uint32(good[sigLen:])
	for _, tc := range []struct {
		name   string
		raw    []byte
		mutate func([]byte) []byte
		want   error
	}{
		{name: "body type 1 (SGX)", raw: build(t, pki, v5(tdx.BodySGX, nil)).Raw, want: tdx.ErrUnsupported},
		{name: "body type 9", raw: build(t, pki, v5(9, nil)).Raw, want: tdx.ErrUnsupported},
		{name: "body type 0", raw: build(t, pki, v5(0, nil)).Raw, want: tdx.ErrUnsupported},
		{name: "body type 3, size 584", mutate: set32(50, 584), want: tdx.ErrMalformed},
		{name: "body type 2, size 648", raw: build(t, pki, v5(tdx.BodyTD10, nil)).Raw, mutate: set32(50, 648), want: tdx.ErrMalformed},
		{name: "body type 2 with a 648-byte body", mutate: set16(48, tdx.BodyTD10), want: tdx.ErrMalformed},
		{name: "body size 2^32-1", mutate: set32(50, 0xffffffff), want: tdx.ErrMalformed},
		{name: "trailing byte", mutate: func(q []byte) []byte { return append(q, 0) }, want: tdx.ErrMalformed},
		{name: "truncated", mutate: func(q []byte) []byte { return q[:len(q)-1] }, want: tdx.ErrMalformed},
		{name: "header only", mutate: func(q []byte) []byte { return q[:48] }, want: tdx.ErrMalformed},
		{name: "signature data length + 1", mutate: set32(sigLen, sigDataLen+1), want: tdx.ErrMalformed},
		{name: "signature data length - 1", mutate: set32(sigLen, sigDataLen-1), want: tdx.ErrMalformed},
		{name: "certification data size 2^32-1", mutate: set32(sigLen+4+128+2, 0xffffffff), want: tdx.ErrMalformed},
		{name: "certification data type 5", mutate: set16(sigLen+4+128, 5), want: tdx.ErrUnsupported},
		{name: "QE authentication data size 0xffff", mutate: set16(sigLen+4+128+6+384+64, 0xffff), want: tdx.ErrMalformed},
		{name: "inner certification data type 3", mutate: set16(sigLen+4+128+6+384+64+2+32, 3), want: tdx.ErrUnsupported},
		{name: "TEE type SGX", mutate: set32(4, 0), want: tdx.ErrUnsupported},
		{name: "attestation key type 3", mutate: set16(2, 3), want: tdx.ErrUnsupported},
		{name: "QE vendor ID", mutate: func(q []byte) []byte { q[12] ^= 1; return q }, want: tdx.ErrUnsupported},
		{name: "version 6", mutate: set16(0, 6), want: tdx.ErrUnsupported},
		{name: "larger than MaxQuoteBytes", mutate: func(q []byte) []byte { return append(q, make([]byte, tdx.MaxQuoteBytes)...) }, want: tdx.ErrMalformed},
	} {
		raw := tc.raw
		if raw == nil {
			raw = good
		}
		raw = bytes.Clone(raw)
		if tc.mutate != nil {
			raw = tc.mutate(raw)
		}
		ev := build(t, pki, v5(tdx.BodyTD15, nil))
		ev.Raw = raw
		if _, err := verify(t, pki, ev, tdxPolicy(t, ""), synthNow); !errors.Is(err, tc.want) || !errors.Is(err, attest.ErrBadEvidence) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if _, err := tdx.PlatformOf(raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: PlatformOf: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSyntheticV5FetchedCollateral: a version 5 quote without collateral
// is verified with collateral fetched for the platform of its PCK
// certificate, which PlatformOf reads alike from version 4 and 5 quotes.
func TestSyntheticV5FetchedCollateral(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	ev := build(t, pki, v5(tdx.BodyTD15, nil))
	want := pccs.Platform{FMSPC: [6]byte{0x90, 0xc0, 0x6f}, CA: pccs.CAPlatform, TEE: pccs.TEETDX}
	for _, raw := range [][]byte{ev.Raw, build(t, pki, nil).Raw} {
		if p, err := tdx.PlatformOf(raw); err != nil || p != want {
			t.Fatalf("PlatformOf(version %d) = %v, %v, want %v", raw[0], p, err, want)
		}
	}
	ev.Collateral = nil
	v, err := tdx.NewVerifier(tdxPolicy(t, ""), tdx.Options{Now: func() time.Time { return synthNow }, TestRoot: pki.Root, Fetcher: tdxtest.Source{PKI: pki, Now: synthNow}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if r := tdx.ResultOf(c); r.Version != 5 || r.BodyType != tdx.BodyTD15 {
		t.Fatalf("result %+v", r)
	}
	if _, err := verify(t, pki, ev, tdxPolicy(t, ""), synthNow); !errors.Is(err, tdx.ErrCollateral) {
		t.Fatalf("without a Fetcher: %v, want ErrCollateral", err)
	}
}

// quoteCerts returns the PEM certificates of a quote's PCK chain.
func quoteCerts(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	rest := raw[bytes.Index(raw, []byte("-----BEGIN CERTIFICATE-----")):]
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		out = append(out, string(pem.EncodeToMemory(b)))
	}
	if len(out) != 3 {
		t.Fatalf("%d certificates in the quote", len(out))
	}
	return out
}

// TestSyntheticCollateralPCK: collateral that carries copies of the PCK
// certificate and its signing chain (as BlindAI's servers fill them in)
// verifies when they are the quote's, and is refused when they are not,
// for quotes of version 4 and 5.
func TestSyntheticCollateralPCK(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []func(*tdxtest.Builder){func(*tdxtest.Builder) {}, v5(tdx.BodyTD15, nil)} {
		b := tdxtest.NewBuilder(pki, synthNow)
		version(b)
		quote, col, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		mine := quoteCerts(t, quote)
		theirs := quoteCerts(t, build(t, other, version).Raw)
		for _, tc := range []struct {
			name       string
			pck, chain string
			ok         bool
		}{
			{"the quote's", mine[0], mine[1] + mine[2], true},
			{"the quote's without the root", mine[0], mine[1], true},
			{"the quote's certificate only", mine[0], "", true},
			{"another PCK certificate", theirs[0], mine[1], false},
			{"another signing chain", mine[0], theirs[1], false},
			{"signing chain in another order", mine[0], mine[2] + mine[1], false},
			{"signing chain too long", mine[0], mine[1] + mine[2] + mine[2], false},
			{"the whole chain as the PCK certificate", mine[0] + mine[1], "", false},
		} {
			c := *col
			c.PCKCertificate, c.PCKSigningChain = tc.pck, tc.chain
			enc, err := tdx.EncodeCollateral(&c)
			if err != nil {
				t.Fatal(err)
			}
			ev := &attest.Evidence{Type: attest.TypeTDX, Raw: quote, Collateral: enc}
			_, err = verify(t, pki, ev, tdxPolicy(t, ""), synthNow)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, tdx.ErrCollateral)) {
				t.Errorf("version %d, %s: %v", binary.LittleEndian.Uint16(ev.Raw), tc.name, err)
			}
		}
	}
}
