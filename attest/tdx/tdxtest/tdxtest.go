// Package tdxtest builds synthetic Intel TDX evidence for tests: a root CA
// of its own standing in for Intel's, a PCK chain, TCB signing, TDX TCB
// info, TD QE identity, CRLs, and quotes of version 4 or 5 (TD report body
// 1.0 or 1.5) over a TD report body.
// Evidence made here verifies only with tdx.Options.TestRoot = PKI.Root and
// proves nothing.
package tdxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

// Serial numbers of the certificates issued.
var (
	PCKSerial   = big.NewInt(0x50434b)
	PCKCASerial = big.NewInt(0x4341)
)

// PKI is a test root CA ("Intel SGX Root CA", not Intel's) and the keys
// of one platform under it: its PCK Platform CA, PCK key, TCB signing key
// and quoting enclave's attestation key. Quotes and collateral built from
// one PKI all fit together.
type PKI struct {
	Root    *x509.Certificate
	RootKey *ecdsa.PrivateKey

	ca                            *x509.Certificate
	caKey, pckKey, tcbKey, attKey *ecdsa.PrivateKey
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"Blindfold test PKI"}}
}

// NewPKI makes a root CA valid from ten years before now to ten years after,
// with a CRL distribution point (go-tdx-guest asks for one).
func NewPKI(now time.Time) (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name("Intel SGX Root CA"),
		NotBefore: now.AddDate(-10, 0, 0), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
		CRLDistributionPoints: []string{"https://test.invalid/IntelSGXRootCA.der"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &PKI{Root: root, RootKey: key}
	for _, k := range []**ecdsa.PrivateKey{&p.caKey, &p.pckKey, &p.tcbKey, &p.attKey} {
		if *k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	p.ca, err = issue(&x509.Certificate{
		SerialNumber: PCKCASerial, Subject: name("Intel SGX PCK Platform CA"),
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, root, &p.caKey.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Body is the TD report body of a quote.
type Body struct {
	TEETCBSVN                           [16]byte
	MRSEAM, MRSignerSEAM                [48]byte
	SEAMAttributes, TDAttributes, XFAM  uint64
	MRTD, MRConfigID, MROwner, MROwnerC [48]byte
	RTMR                                [4][48]byte
	ReportData                          [64]byte
	// TEETCBSVN2 and MRServiceTD are the fields that a TD report 1.5 body
	// (version 5 quotes of body type 3) adds.
	TEETCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// Builder makes one piece of evidence; change its fields before Build.
type Builder struct {
	PKI *PKI
	Now time.Time
	// Body is the TD report body.
	Body Body
	// FMSPC of the platform (in the PCK certificate and the TCB info).
	FMSPC [6]byte
	// Status, ModuleStatus and QEStatus are the TCB statuses of the
	// platform, TDX module and QE levels the quote matches.
	Status, ModuleStatus, QEStatus string
	// IssueDate and NextUpdate date the TCB info, QE identity and CRLs.
	IssueDate, NextUpdate time.Time
	// PCKNotAfter ends the PCK certificate's validity.
	PCKNotAfter time.Time
	// RevokePCK lists the PCK certificate in the PCK CRL.
	RevokePCK bool
	// RevokePCKCA lists the PCK CA in the root CA CRL.
	RevokePCKCA bool
	// Version is the quote version: 4 (the default) or 5.
	Version uint16
	// BodyType is the body type of a version 5 quote: 2 (TD report 1.0
	// body, the default) or 3 (TD report 1.5 body); any other value is
	// written as it is, with the body of type 2, to build quotes that must
	// be refused.
	BodyType uint16
	// EditTCBInfo and EditQEIdentity, when set, change the TCB info and QE
	// identity bodies before they are signed.
	EditTCBInfo, EditQEIdentity func(map[string]any)
}

// MRTD is the MRTD of the builder's default body.
func MRTD() [48]byte {
	var m [48]byte
	for i := range m {
		m[i] = byte(0x70 + i)
	}
	return m
}

// NewBuilder returns a builder of UpToDate evidence at now with a default
// body: MRTD(), RTMRs 0x10.., 0x11.., a TDX module of version 1 at SVN 3,
// TD attributes 0x10000000 (SEPT_VE_DISABLE; no DEBUG), XFAM 0xe7.
func NewBuilder(pki *PKI, now time.Time) *Builder {
	b := &Builder{
		PKI: pki, Now: now, FMSPC: [6]byte{0x90, 0xc0, 0x6f, 0, 0, 0},
		Status: "UpToDate", ModuleStatus: "UpToDate", QEStatus: "UpToDate",
		IssueDate: now.Add(-24 * time.Hour), NextUpdate: now.Add(29 * 24 * time.Hour),
		PCKNotAfter: now.AddDate(5, 0, 0),
		Version:     4, BodyType: 2,
	}
	b.Body.TEETCBSVN = [16]byte{3, 1, 2}
	b.Body.MRTD = MRTD()
	for i := range b.Body.RTMR {
		for j := range b.Body.RTMR[i] {
			b.Body.RTMR[i][j] = byte(0x10 + i)
		}
	}
	for i := range b.Body.MRSEAM {
		b.Body.MRSEAM[i] = 0x5e
	}
	b.Body.TDAttributes = 0x10000000
	b.Body.XFAM = 0xe7
	return b
}

func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemCerts(certs ...*x509.Certificate) string {
	var s strings.Builder
	for _, c := range certs {
		s.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return s.String()
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}

// marshalBody returns the 584 bytes of a TD report 1.0 body, or the 648
// bytes of a 1.5 body when v15 is set.
func marshalBody(b Body, v15 bool) []byte {
	var out []byte
	out = append(out, b.TEETCBSVN[:]...)
	out = append(out, b.MRSEAM[:]...)
	out = append(out, b.MRSignerSEAM[:]...)
	out = append(out, le64(b.SEAMAttributes)...)
	out = append(out, le64(b.TDAttributes)...)
	out = append(out, le64(b.XFAM)...)
	out = append(out, b.MRTD[:]...)
	out = append(out, b.MRConfigID[:]...)
	out = append(out, b.MROwner[:]...)
	out = append(out, b.MROwnerC[:]...)
	for _, r := range b.RTMR {
		out = append(out, r[:]...)
	}
	out = append(out, b.ReportData[:]...)
	if v15 {
		out = append(out, b.TEETCBSVN2[:]...)
		out = append(out, b.MRServiceTD[:]...)
	}
	return out
}

// intelQEVendorID is the QE vendor ID of Intel's quoting enclaves.
var intelQEVendorID, _ = hex.DecodeString("939a7233f79c4ca9940a0db3957f0607")

func components(svns []byte) []map[string]any {
	out := make([]map[string]any, 16)
	for i := range out {
		out[i] = map[string]any{"svn": svns[i]}
	}
	return out
}

// Build issues the certificates and CRLs, signs the collateral and the
// quote, and returns the quote and its collateral.
func (b *Builder) Build() ([]byte, *sgx.Collateral, error) {
	root, rootKey := b.PKI.Root, b.PKI.RootKey
	ca, caKey, pckKey, tcbKey, attKey := b.PKI.ca, b.PKI.caKey, b.PKI.pckKey, b.PKI.tcbKey, b.PKI.attKey
	var comps [16]uint8
	for i := range comps {
		comps[i] = 2
	}
	var cpusvn [16]byte
	copy(cpusvn[:], comps[:])
	ski := sha256.Sum256([]byte("pck"))
	pck, err := issue(&x509.Certificate{
		SerialNumber: PCKSerial, Subject: name("Intel SGX PCK Certificate"),
		NotBefore: b.Now.AddDate(-1, 0, 0), NotAfter: b.PCKNotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
		CRLDistributionPoints: []string{"https://test.invalid/pckcrl?ca=platform"},
		ExtraExtensions:       []pkix.Extension{{Id: sgx.OIDSGXExtensions, Value: sgxtest.SGXExtension(b.FMSPC, [2]byte{}, comps, 11, cpusvn)}},
	}, ca, &pckKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	tcbCert, err := issue(&x509.Certificate{
		SerialNumber: big.NewInt(0x544342), Subject: name("Intel SGX TCB Signing"),
		NotBefore: b.Now.AddDate(-1, 0, 0), NotAfter: b.Now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
	}, root, &tcbKey.PublicKey, rootKey)
	if err != nil {
		return nil, nil, err
	}

	// Header and body (for version 5, body type and size, then the body),
	// signed by the attestation key.
	header := make([]byte, 48)
	binary.LittleEndian.PutUint16(header[0:], b.Version)
	binary.LittleEndian.PutUint16(header[2:], 2)
	binary.LittleEndian.PutUint32(header[4:], 0x81)
	copy(header[12:28], intelQEVendorID)
	signed := header
	body := marshalBody(b.Body, b.Version == 5 && b.BodyType == 3)
	if b.Version == 5 {
		signed = binary.LittleEndian.AppendUint16(signed, b.BodyType)
		signed = binary.LittleEndian.AppendUint32(signed, uint32(len(body)))
	}
	signed = append(signed, body...)
	attPub, err := attKey.PublicKey.Bytes()
	if err != nil {
		return nil, nil, err
	}
	// The QE report binds the attestation key and the (empty) auth data.
	var qe abi.ReportBody
	qe.MiscSelect = 0
	qe.AttributesFlags, qe.AttributesXFRM = 0x11, 0xe7
	for i := range qe.MRSIGNER {
		qe.MRSIGNER[i] = 0xdc
	}
	qe.ISVProdID, qe.ISVSVN = 2, 4
	authData := make([]byte, 32)
	h := sha256.Sum256(append(append([]byte{}, attPub[1:]...), authData...))
	copy(qe.ReportData[:], h[:])
	qeBytes := qe.Marshal()
	pckChain := append([]byte(pemCerts(pck, ca, root)), 0)

	var inner []byte
	inner = append(inner, qeBytes...)
	inner = append(inner, sgxtest.SignRaw(pckKey, qeBytes)...)
	inner = binary.LittleEndian.AppendUint16(inner, uint16(len(authData)))
	inner = append(inner, authData...)
	inner = binary.LittleEndian.AppendUint16(inner, 5)
	inner = binary.LittleEndian.AppendUint32(inner, uint32(len(pckChain)))
	inner = append(inner, pckChain...)

	var sig []byte
	sig = append(sig, sgxtest.SignRaw(attKey, signed)...)
	sig = append(sig, attPub[1:]...)
	sig = binary.LittleEndian.AppendUint16(sig, 6)
	sig = binary.LittleEndian.AppendUint32(sig, uint32(len(inner)))
	sig = append(sig, inner...)

	quote := append([]byte{}, signed...)
	quote = binary.LittleEndian.AppendUint32(quote, uint32(len(sig)))
	quote = append(quote, sig...)

	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	hexU := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	tcbInfo := map[string]any{
		"id": "TDX", "version": 3, "issueDate": rfc(b.IssueDate), "nextUpdate": rfc(b.NextUpdate),
		"fmspc": hexU(b.FMSPC[:]), "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
		"tdxModule": map[string]any{"mrsigner": hexU(b.Body.MRSignerSEAM[:]), "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
		"tdxModuleIdentities": []any{map[string]any{
			"id": fmt.Sprintf("TDX_%02X", b.Body.TEETCBSVN[1]), "mrsigner": hexU(b.Body.MRSignerSEAM[:]), "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
			"tcbLevels": []any{map[string]any{"tcb": map[string]any{"isvsvn": b.Body.TEETCBSVN[0]}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": b.ModuleStatus}},
		}},
		"tcbLevels": []any{map[string]any{
			"tcb":     map[string]any{"sgxtcbcomponents": components(comps[:]), "pcesvn": 11, "tdxtcbcomponents": components(b.Body.TEETCBSVN[:])},
			"tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": b.Status,
		}},
	}
	qeID := map[string]any{
		"id": "TD_QE", "version": 2, "issueDate": rfc(b.IssueDate), "nextUpdate": rfc(b.NextUpdate), "tcbEvaluationDataNumber": 17,
		"miscselect": hexU(qeBytes[16:20]), "miscselectMask": "FFFFFFFF",
		"attributes": hexU(qeBytes[48:64]), "attributesMask": "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
		"mrsigner": hexU(qe.MRSIGNER[:]), "isvprodid": 2,
		"tcbLevels": []any{map[string]any{"tcb": map[string]any{"isvsvn": 4}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": b.QEStatus}},
	}
	if b.EditTCBInfo != nil {
		b.EditTCBInfo(tcbInfo)
	}
	if b.EditQEIdentity != nil {
		b.EditQEIdentity(qeID)
	}
	tcbBody, err := json.Marshal(tcbInfo)
	if err != nil {
		return nil, nil, err
	}
	qeBody, err := json.Marshal(qeID)
	if err != nil {
		return nil, nil, err
	}
	crl := func(issuer *x509.Certificate, key *ecdsa.PrivateKey, revoked ...*big.Int) (string, error) {
		var entries []x509.RevocationListEntry
		for _, s := range revoked {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: b.IssueDate})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: b.IssueDate, NextUpdate: b.NextUpdate, RevokedCertificateEntries: entries,
		}, issuer, key)
		return hex.EncodeToString(der), err
	}
	var revokedPCK, revokedCA []*big.Int
	if b.RevokePCK {
		revokedPCK = append(revokedPCK, PCKSerial)
	}
	if b.RevokePCKCA {
		revokedCA = append(revokedCA, PCKCASerial)
	}
	pckCRL, err := crl(ca, caKey, revokedPCK...)
	if err != nil {
		return nil, nil, err
	}
	rootCRL, err := crl(root, rootKey, revokedCA...)
	if err != nil {
		return nil, nil, err
	}
	return quote, &sgx.Collateral{
		Version:               4,
		PCKCRLIssuerChain:     pemCerts(ca, root),
		RootCACRL:             rootCRL,
		PCKCRL:                pckCRL,
		TCBInfoIssuerChain:    pemCerts(tcbCert, root),
		TCBInfo:               sgxtest.SignedResponse("tcbInfo", tcbBody, tcbKey),
		QEIdentityIssuerChain: pemCerts(tcbCert, root),
		QEIdentity:            sgxtest.SignedResponse("enclaveIdentity", qeBody, tcbKey),
	}, nil
}
