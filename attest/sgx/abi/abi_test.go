package abi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// synthetic returns a well-formed quote with the given certification data.
func synthetic(certType CertificationDataType, cert []byte) []byte {
	q := &Quote{
		Header: Header{Version: 3, AttestationKeyType: 2, QESVN: 9, PCESVN: 13, QEVendorID: IntelQEVendorID},
		ReportBody: ReportBody{
			MiscSelect: 0x01020304, AttributesFlags: AttributeInit | AttributeMode64Bit, AttributesXFRM: 3,
			ISVProdID: 0x1122, ISVSVN: 0x3344, ConfigSVN: 0x5566,
		},
	}
	for i := range q.ReportBody.MRENCLAVE {
		q.ReportBody.MRENCLAVE[i] = byte(i)
		q.ReportBody.MRSIGNER[i] = byte(0x80 + i)
	}
	q.SignatureData.QEAuthData = []byte("auth")
	q.SignatureData.QEReport.ISVSVN = 8
	q.SignatureData.CertificationData = CertificationData{Type: certType, Data: cert}
	return q.Marshal()
}

func TestReportBodyOffsets(t *testing.T) {
	b := make([]byte, ReportBodySize)
	for i := range b {
		b[i] = byte(i)
	}
	r, err := ParseReportBody(b)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  []byte
		off  int
	}{
		{"CPUSVN", r.CPUSVN[:], 0}, {"ISVEXTPRODID", r.ISVExtProdID[:], 32}, {"MRENCLAVE", r.MRENCLAVE[:], 64},
		{"MRSIGNER", r.MRSIGNER[:], 128}, {"CONFIGID", r.ConfigID[:], 192}, {"ISVFAMILYID", r.ISVFamilyID[:], 304},
		{"REPORTDATA", r.ReportData[:], 320},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, b[c.off:c.off+len(c.got)]) {
			t.Errorf("%s not at offset %d", c.name, c.off)
		}
	}
	if r.MiscSelect != 0x13121110 || r.AttributesFlags != 0x3736353433323130 || r.AttributesXFRM != 0x3f3e3d3c3b3a3938 {
		t.Errorf("misc/attributes: %#x %#x %#x", r.MiscSelect, r.AttributesFlags, r.AttributesXFRM)
	}
	if r.ISVProdID != 0x0100 || r.ISVSVN != 0x0302 || r.ConfigSVN != 0x0504 {
		t.Errorf("prodid/svn/configsvn: %#x %#x %#x", r.ISVProdID, r.ISVSVN, r.ConfigSVN)
	}
	if !bytes.Equal(r.Marshal(), b) {
		t.Error("Marshal does not round-trip")
	}
}

func TestParseSynthetic(t *testing.T) {
	raw := synthetic(CertDataPCKCertChain, []byte("-----BEGIN CERTIFICATE-----\n"))
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Marshal(), raw) || !bytes.Equal(q.Raw, raw) || !bytes.Equal(q.Signed, raw[:SignedSize]) {
		t.Error("round trip failed")
	}
	if q.ReportBody.ISVProdID != 0x1122 || string(q.SignatureData.QEAuthData) != "auth" || q.SignatureData.QEReport.ISVSVN != 8 {
		t.Errorf("fields: %+v", q.ReportBody)
	}
	if !bytes.Equal(q.SignatureData.QEReportRaw, raw[SignatureDataOffset+128:SignatureDataOffset+128+ReportBodySize]) {
		t.Error("QEReportRaw at wrong offset")
	}
}

func TestParseErrors(t *testing.T) {
	good := synthetic(CertDataPCKCertChain, []byte("chain"))
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		in    []byte
		err   error
		field string
	}{
		{"empty", nil, ErrTruncated, "header"},
		{"header only", good[:HeaderSize], ErrTruncated, "report body"},
		{"version 4", mod(func(b []byte) []byte { b[0] = 4; return b }), ErrUnsupported, "header.version"},
		{"key type 3", mod(func(b []byte) []byte { b[2] = 3; return b }), ErrUnsupported, "header.attestation_key_type"},
		{"TDX tee type", mod(func(b []byte) []byte { b[4] = 0x81; return b }), ErrUnsupported, "header.tee_type"},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrTrailingBytes, "signature_data_len"},
		{"missing byte", good[:len(good)-1], ErrTruncated, "signature_data_len"},
		{"no signature data length", good[:SignedSize+2], ErrTruncated, "signature_data_len"},
		{"cert size too big", mod(func(b []byte) []byte { b[len(b)-len("chain")-4]++; return b }), ErrTruncated, "signature_data.certification_data.size"},
		{"cert size too small", mod(func(b []byte) []byte { b[len(b)-len("chain")-4]--; return b }), ErrTrailingBytes, "signature_data.certification_data.size"},
		{"cert type 0", mod(func(b []byte) []byte { b[len(b)-len("chain")-6] = 0; return b }), ErrMalformed, "signature_data.certification_data.type"},
		{"cert type 8", mod(func(b []byte) []byte { b[len(b)-len("chain")-6] = 8; return b }), ErrMalformed, "signature_data.certification_data.type"},
		{"auth size too big", mod(func(b []byte) []byte {
			off := SignatureDataOffset + 64 + 64 + 384 + 64
			b[off], b[off+1] = 0xff, 0xff
			return b
		}), ErrTruncated, "signature_data.qe_auth_data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQuote(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want field %q", err, tc.field)
			}
		})
	}
}

func TestCertificationDataTypes(t *testing.T) {
	for ty := CertificationDataType(1); ty <= 7; ty++ {
		q, err := ParseQuote(synthetic(ty, []byte{1, 2, 3}))
		if err != nil {
			t.Fatalf("type %d: %v", ty, err)
		}
		if q.SignatureData.CertificationData.Type != ty || strings.HasPrefix(ty.String(), "unknown") {
			t.Errorf("type %d: %v", ty, ty)
		}
	}
}

func TestOasisQuotes(t *testing.T) {
	raw := testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_pck_chain.bin")
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := q.ReportBody
	if q.Header.QESVN != 9 || q.Header.PCESVN != 13 || q.Header.QEVendorID != IntelQEVendorID {
		t.Errorf("header: %+v", q.Header)
	}
	if !bytes.Equal(r.CPUSVN[:], mustHex(t, "08090e0dffff01000000000000000000")) {
		t.Errorf("CPUSVN %x", r.CPUSVN)
	}
	if r.MiscSelect != 0 || r.AttributesFlags != AttributeInit|AttributeMode64Bit || r.AttributesXFRM != 3 {
		t.Errorf("misc %#x flags %#x xfrm %#x", r.MiscSelect, r.AttributesFlags, r.AttributesXFRM)
	}
	if !bytes.Equal(r.MRENCLAVE[:], mustHex(t, "68823bc62f409ee33a32ea270cfe45d4b19a6fb3c8570d7bc186cbe062398e8f")) {
		t.Errorf("MRENCLAVE %x", r.MRENCLAVE)
	}
	if !bytes.Equal(r.MRSIGNER[:], mustHex(t, "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a")) {
		t.Errorf("MRSIGNER %x", r.MRSIGNER)
	}
	if r.ISVProdID != 0 || r.ISVSVN != 0 {
		t.Errorf("ISVPRODID %d ISVSVN %d", r.ISVProdID, r.ISVSVN)
	}
	if q.SignatureData.CertificationData.Type != CertDataPCKCertChain {
		t.Errorf("cert type %v", q.SignatureData.CertificationData.Type)
	}
	if !bytes.Equal(q.Marshal(), raw) {
		t.Error("Marshal does not round-trip")
	}

	eppid := testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_eppid.bin")
	q, err = ParseQuote(eppid)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header.QESVN != 7 || q.Header.PCESVN != 12 || q.SignatureData.CertificationData.Type != CertDataPPIDRSA3072OAEP {
		t.Errorf("EPPID quote: QE SVN %d PCE SVN %d type %v", q.Header.QESVN, q.Header.PCESVN, q.SignatureData.CertificationData.Type)
	}
}

func TestDCAPQVLQuote(t *testing.T) {
	raw := testvectors.Read(t, "sgx/dcap-qvl/sgx_quote")
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if q.SignatureData.CertificationData.Type != CertDataPCKCertChain || !bytes.Contains(q.SignatureData.CertificationData.Data, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("cert data type %v", q.SignatureData.CertificationData.Type)
	}
}

// TestParseNeverPanics truncates and extends the real and synthetic quotes
// at every length.
func TestParseNeverPanics(t *testing.T) {
	inputs := [][]byte{synthetic(CertDataPCKCertChain, []byte("x"))}
	inputs = append(inputs, testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_eppid.bin"))
	for _, in := range inputs {
		for n := 0; n <= len(in); n++ {
			_, err := ParseQuote(in[:n])
			if n < len(in) && err == nil {
				t.Fatalf("truncated to %d bytes: no error", n)
			}
		}
	}
}

func FuzzParseQuote(f *testing.F) {
	f.Add(synthetic(CertDataPCKCertChain, []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")))
	f.Add(synthetic(CertDataPPIDRSA3072OAEP, make([]byte, 390)))
	f.Add(synthetic(CertDataPCKCertChain, nil))
	for _, rel := range []string{"sgx/oasis/quote_v3_ecdsa_p256_pck_chain.bin", "sgx/oasis/quote_v3_ecdsa_p256_eppid.bin", "sgx/dcap-qvl/sgx_quote"} {
		if p := testvectors.Find(rel); p != "" {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			return
		}
		if !bytes.Equal(q.Marshal(), b) {
			t.Fatal("accepted quote does not round-trip")
		}
	})
}
