// Package sgxtest builds synthetic SGX DCAP evidence for tests: a test PKI
// shaped like Intel's (root CA, PCK CA, PCK certificate with the SGX
// extensions, TCB signing certificate, CRLs), signed TCB info and QE
// identity, and a quote signed by a test attestation key whose QE report is
// signed by the PCK key. Evidence built here verifies only with
// sgx.Options.TestRoot set to the PKI's root; it proves nothing about
// hardware.
package sgxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// PKI is a test root CA.
type PKI struct {
	// Root is the self-signed root certificate ("Intel SGX Root CA", test).
	Root *x509.Certificate
	// RootKey is the root's private key.
	RootKey *ecdsa.PrivateKey
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"Blindfold test PKI"}}
}

// NewPKI makes a root CA valid from ten years before now to ten years after.
func NewPKI(now time.Time) (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               name("Intel SGX Root CA"),
		NotBefore:             now.AddDate(-10, 0, 0),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &PKI{Root: cert, RootKey: key}, nil
}

// Validity is a certificate's validity window.
type Validity struct {
	// NotBefore and NotAfter bound the certificate's validity.
	NotBefore, NotAfter time.Time
}

// CRL describes a CRL to issue.
type CRL struct {
	// ThisUpdate and NextUpdate bound the CRL's validity.
	ThisUpdate, NextUpdate time.Time
	// Revoked lists the serial numbers to revoke.
	Revoked []*big.Int
	// Omit leaves the CRL out of the collateral.
	Omit bool
}

// TCBLevel is a level of the TCB info.
type TCBLevel struct {
	// Components are the 16 CPUSVN component SVNs of the level.
	Components [16]uint8
	// PCESVN is the level's PCESVN.
	PCESVN uint16
	// Status is the tcbStatus.
	Status string
	// AdvisoryIDs are the level's advisories.
	AdvisoryIDs []string
}

// QELevel is a level of the QE identity.
type QELevel struct {
	// ISVSVN is the level's QE ISVSVN.
	ISVSVN uint16
	// Status is the tcbStatus.
	Status string
	// AdvisoryIDs are the level's advisories.
	AdvisoryIDs []string
}

// TCBInfo is the body of the TCB info (version 3, SGX).
type TCBInfo struct {
	// ID, FMSPC and PCEID are the id, fmspc and pceId fields.
	ID, FMSPC, PCEID string
	// Version, IssueDate, NextUpdate, TCBEvaluationDataNumber and Levels
	// are the fields of the same names.
	Version                 int
	IssueDate, NextUpdate   time.Time
	TCBEvaluationDataNumber int
	Levels                  []TCBLevel
}

// QEIdentity is the body of the QE identity (version 2).
type QEIdentity struct {
	// The fields are those of the same names in the PCS response (masks,
	// attributes and MRSIGNER as hex strings).
	ID                                                               string
	Version                                                          int
	IssueDate, NextUpdate                                            time.Time
	TCBEvaluationDataNumber                                          int
	MiscSelect, MiscSelectMask, Attributes, AttributesMask, MRSIGNER string
	ISVProdID                                                        int
	Levels                                                           []QELevel
}

// Serial numbers of the certificates Build issues.
var (
	PCKSerial        = big.NewInt(0x50434b)
	PCKCASerial      = big.NewInt(0x4341)
	TCBSigningSerial = big.NewInt(0x544342)
)

// DefaultQEMRSIGNER is the QE MRSIGNER of the default QE identity and report.
const DefaultQEMRSIGNER = "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff"

// Builder holds everything a synthetic quote and collateral are made of.
// NewBuilder fills it with evidence that verifies as UpToDate at Now;
// change fields, then call Build.
type Builder struct {
	// PKI is the root that signs everything.
	PKI *PKI
	// Now is the reference time; the defaults are valid around it.
	Now time.Time

	// Header is the quote header.
	Header abi.Header
	// ReportBody is the ISV enclave report body.
	ReportBody abi.ReportBody
	// QEReport is the QE report body (its report data is computed by Build).
	QEReport abi.ReportBody
	// QEAuthData is the QE authentication data.
	QEAuthData []byte
	// QEReportData, when set, replaces the QE report data that Build
	// computes (SHA-256(attestation key || QE auth data) || zeros).
	QEReportData *[64]byte
	// BindQEReportData, with QEReportData set, still writes the correct
	// SHA-256(attestation key || QE auth data) into its first 32 bytes, so
	// that only the last 32 bytes are as given.
	BindQEReportData bool

	// FMSPC, PCEID, Components, PCESVN and CPUSVN go into the PCK
	// certificate's SGX extensions.
	FMSPC      [6]byte
	PCEID      [2]byte
	Components [16]uint8
	PCESVN     uint16
	CPUSVN     [16]byte

	// PCKValidity, PCKCAValidity and TCBSigningValidity are the validity
	// windows of the certificates Build issues.
	PCKValidity, PCKCAValidity, TCBSigningValidity Validity
	// RootCRL and PCKCRL describe the CRLs of the root and the PCK CA.
	RootCRL, PCKCRL CRL

	// TCBInfo is the TCB info body Build signs.
	TCBInfo TCBInfo
	// QEIdentity is the QE identity body Build signs.
	QEIdentity QEIdentity

	// Machine, when set, keeps the PCK CA and PCK certificates (and their
	// keys) that the first Build with it issued, and later Builds reuse
	// them: evidence built with one Machine names one platform, as a real
	// machine's PCK certificate does. The PCK settings of the first Build
	// (FMSPC, components, validity...) are the ones kept.
	Machine *Machine
}

// Machine is the PCK certificates of one synthetic platform (see
// Builder.Machine). Its zero value is ready to use; it is safe for
// concurrent Builds.
type Machine struct {
	mu          sync.Mutex
	ca, pck     *x509.Certificate
	caKey, pkey *ecdsa.PrivateKey
}

// NewBuilder returns a Builder whose evidence verifies as UpToDate at now.
func NewBuilder(pki *PKI, now time.Time) *Builder {
	now = now.UTC().Truncate(time.Second)
	year := Validity{now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)}
	b := &Builder{
		PKI: pki, Now: now,
		Header:      abi.Header{Version: 3, AttestationKeyType: 2, QESVN: 8, PCESVN: 13, QEVendorID: abi.IntelQEVendorID},
		QEAuthData:  []byte("test QE authentication data"),
		FMSPC:       [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00},
		Components:  [16]uint8{5, 5, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		PCESVN:      13,
		PCKValidity: year, PCKCAValidity: year, TCBSigningValidity: year,
		RootCRL: CRL{ThisUpdate: now.AddDate(0, -1, 0), NextUpdate: now.AddDate(0, 11, 0)},
		PCKCRL:  CRL{ThisUpdate: now.AddDate(0, 0, -1), NextUpdate: now.AddDate(0, 0, 29)},
	}
	copy(b.CPUSVN[:], b.Components[:])
	b.ReportBody = abi.ReportBody{MiscSelect: 0, AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 3, ISVProdID: 7, ISVSVN: 2}
	b.ReportBody.CPUSVN = b.CPUSVN
	for i := range b.ReportBody.MRENCLAVE {
		b.ReportBody.MRENCLAVE[i] = byte(0xe0 + i)
		b.ReportBody.MRSIGNER[i] = byte(0x50 + i)
		b.ReportBody.ReportData[i] = byte(i)
	}
	mrsigner, _ := hex.DecodeString(DefaultQEMRSIGNER)
	b.QEReport = abi.ReportBody{CPUSVN: b.CPUSVN, AttributesFlags: 0x15, AttributesXFRM: 0xe7, ISVProdID: 1, ISVSVN: 8}
	copy(b.QEReport.MRSIGNER[:], mrsigner)
	b.TCBInfo = TCBInfo{
		ID: "SGX", Version: 3, IssueDate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 0, 30),
		FMSPC: strings.ToUpper(hex.EncodeToString(b.FMSPC[:])), PCEID: "0000", TCBEvaluationDataNumber: 17,
		Levels: []TCBLevel{
			{Components: b.Components, PCESVN: 13, Status: "UpToDate"},
			{Components: [16]uint8{4, 4, 2, 2, 255, 1}, PCESVN: 11, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00001"}},
		},
	}
	b.QEIdentity = QEIdentity{
		ID: "QE", Version: 2, IssueDate: now.Add(-2 * time.Hour), NextUpdate: now.AddDate(0, 0, 30), TCBEvaluationDataNumber: 17,
		MiscSelect: "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes: "11000000000000000000000000000000", AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSIGNER: strings.ToUpper(DefaultQEMRSIGNER), ISVProdID: 1,
		Levels: []QELevel{{ISVSVN: 8, Status: "UpToDate"}, {ISVSVN: 6, Status: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-00002"}}},
	}
	return b
}

// Evidence is what Build returns.
type Evidence struct {
	// Quote is the quote bytes.
	Quote []byte
	// Collateral verifies Quote with sgx.Options.TestRoot = Root.
	Collateral *sgx.Collateral
	// Root is the PKI's root certificate.
	Root *x509.Certificate
	// PCK is the PCK certificate in the quote.
	PCK *x509.Certificate
	// PCKCA is the PCK certificate's issuer.
	PCKCA *x509.Certificate
	// TCBSigning signs the TCB info and QE identity.
	TCBSigning *x509.Certificate
	// PCKCAKey is PCKCA's private key (it signs the PCK CRL).
	PCKCAKey *ecdsa.PrivateKey
	// TCBSigningKey is TCBSigning's private key.
	TCBSigningKey *ecdsa.PrivateKey
	// RootKey is Root's private key (it signs the root CA CRL).
	RootKey *ecdsa.PrivateKey
}

// Reissue returns new collateral for the same quote, as the PCS would
// serve it later: the TCB info and QE identity bodies of b signed again by
// the same TCB signing key, and the CRLs b describes signed again by the
// same issuers (so a CRL can revoke the quote's PCK certificate after the
// fact). The certificates are those of e; b's keys and validities are not
// used.
func (e *Evidence) Reissue(b *Builder) (*sgx.Collateral, error) {
	c := &sgx.Collateral{
		Version:               3,
		PCKCRLIssuerChain:     pemCerts(e.PCKCA, e.Root),
		TCBInfoIssuerChain:    pemCerts(e.TCBSigning, e.Root),
		TCBInfo:               SignedResponse("tcbInfo", b.TCBInfo.Body(), e.TCBSigningKey),
		QEIdentityIssuerChain: pemCerts(e.TCBSigning, e.Root),
		QEIdentity:            SignedResponse("enclaveIdentity", b.QEIdentity.Body(), e.TCBSigningKey),
	}
	if !b.RootCRL.Omit {
		der, err := makeCRL(b.RootCRL, e.Root, e.RootKey)
		if err != nil {
			return nil, err
		}
		c.RootCACRL = string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	if !b.PCKCRL.Omit {
		der, err := makeCRL(b.PCKCRL, e.PCKCA, e.PCKCAKey)
		if err != nil {
			return nil, err
		}
		c.PCKCRL = hex.EncodeToString(der)
	}
	return c, nil
}

func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemCerts(certs ...*x509.Certificate) string {
	var sb strings.Builder
	for _, c := range certs {
		sb.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return sb.String()
}

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func rawOf(v any) asn1.RawValue {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: b}
}

// SGXExtension returns the DER of the SGX extensions of a PCK certificate.
func SGXExtension(fmspc [6]byte, pceid [2]byte, comps [16]uint8, pcesvn uint16, cpusvn [16]byte) []byte {
	var tcb []oidValue
	for i, c := range comps {
		tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, sgx.OIDTCB...), i+1), rawOf(int(c))})
	}
	tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, sgx.OIDTCB...), 17), rawOf(int(pcesvn))})
	tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, sgx.OIDTCB...), 18), rawOf(cpusvn[:])})
	ext := []oidValue{
		{sgx.OIDPPID, rawOf(make([]byte, 16))},
		{sgx.OIDTCB, rawOf(tcb)},
		{sgx.OIDPCEID, rawOf(pceid[:])},
		{sgx.OIDFMSPC, rawOf(fmspc[:])},
		{sgx.OIDSGXType, rawOf(asn1.Enumerated(0))},
	}
	der, err := asn1.Marshal(ext)
	if err != nil {
		panic(err)
	}
	return der
}

// SignRaw signs SHA-256(msg) and returns the raw r || s signature.
func SignRaw(key *ecdsa.PrivateKey, msg []byte) []byte {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		panic(err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

// MarshalJSON writes the level in the PCS TCB info version 3 shape.
func (l TCBLevel) MarshalJSON() ([]byte, error) {
	type svn struct {
		SVN int `json:"svn"`
	}
	comps := make([]svn, 16)
	for i, c := range l.Components {
		comps[i] = svn{int(c)}
	}
	return json.Marshal(struct {
		TCB struct {
			Comps  []svn `json:"sgxtcbcomponents"`
			PCESVN int   `json:"pcesvn"`
		} `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}{
		TCB: struct {
			Comps  []svn `json:"sgxtcbcomponents"`
			PCESVN int   `json:"pcesvn"`
		}{comps, int(l.PCESVN)},
		TCBDate: "2024-03-13T00:00:00Z", TCBStatus: l.Status, AdvisoryIDs: l.AdvisoryIDs,
	})
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Body returns the JSON text of the TCB info body.
func (t TCBInfo) Body() []byte {
	b, err := json.Marshal(struct {
		ID                      string     `json:"id"`
		Version                 int        `json:"version"`
		IssueDate               string     `json:"issueDate"`
		NextUpdate              string     `json:"nextUpdate"`
		FMSPC                   string     `json:"fmspc"`
		PCEID                   string     `json:"pceId"`
		TCBType                 int        `json:"tcbType"`
		TCBEvaluationDataNumber int        `json:"tcbEvaluationDataNumber"`
		TCBLevels               []TCBLevel `json:"tcbLevels"`
	}{t.ID, t.Version, rfc(t.IssueDate), rfc(t.NextUpdate), t.FMSPC, t.PCEID, 0, t.TCBEvaluationDataNumber, t.Levels})
	if err != nil {
		panic(err)
	}
	return b
}

// Body returns the JSON text of the QE identity body.
func (q QEIdentity) Body() []byte {
	type level struct {
		TCB struct {
			ISVSVN int `json:"isvsvn"`
		} `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	levels := make([]level, len(q.Levels))
	for i, l := range q.Levels {
		levels[i].TCB.ISVSVN = int(l.ISVSVN)
		levels[i].TCBDate, levels[i].TCBStatus, levels[i].AdvisoryIDs = "2024-03-13T00:00:00Z", l.Status, l.AdvisoryIDs
	}
	b, err := json.Marshal(struct {
		ID                      string  `json:"id"`
		Version                 int     `json:"version"`
		IssueDate               string  `json:"issueDate"`
		NextUpdate              string  `json:"nextUpdate"`
		TCBEvaluationDataNumber int     `json:"tcbEvaluationDataNumber"`
		MiscSelect              string  `json:"miscselect"`
		MiscSelectMask          string  `json:"miscselectMask"`
		Attributes              string  `json:"attributes"`
		AttributesMask          string  `json:"attributesMask"`
		MRSIGNER                string  `json:"mrsigner"`
		ISVProdID               int     `json:"isvprodid"`
		TCBLevels               []level `json:"tcbLevels"`
	}{q.ID, q.Version, rfc(q.IssueDate), rfc(q.NextUpdate), q.TCBEvaluationDataNumber, q.MiscSelect, q.MiscSelectMask, q.Attributes, q.AttributesMask, q.MRSIGNER, q.ISVProdID, levels})
	if err != nil {
		panic(err)
	}
	return b
}

// SignedResponse returns the PCS response {"<key>":<body>,"signature":"<hex>"}.
func SignedResponse(key string, body []byte, signer *ecdsa.PrivateKey) string {
	return fmt.Sprintf(`{"%s":%s,"signature":"%s"}`, key, body, hex.EncodeToString(SignRaw(signer, body)))
}

func makeCRL(c CRL, issuer *x509.Certificate, key *ecdsa.PrivateKey) ([]byte, error) {
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}
	for _, s := range c.Revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: c.ThisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
}

// Build issues the certificates and CRLs, signs the collateral and the
// quote, and returns them.
func (b *Builder) Build() (*Evidence, error) {
	if m := b.Machine; m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	ca, caKey, pck, pckKey, err := b.pckChain()
	if err != nil {
		return nil, err
	}
	return b.build(ca, caKey, pck, pckKey)
}

// pckChain returns the PCK CA and PCK certificates and keys: the
// Machine's, or new ones (kept in the Machine when there is one).
func (b *Builder) pckChain() (ca *x509.Certificate, caKey *ecdsa.PrivateKey, pck *x509.Certificate, pckKey *ecdsa.PrivateKey, err error) {
	if m := b.Machine; m != nil && m.pck != nil {
		return m.ca, m.caKey, m.pck, m.pkey, nil
	}
	root, rootKey := b.PKI.Root, b.PKI.RootKey
	caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ca, err = issue(&x509.Certificate{
		SerialNumber: PCKCASerial, Subject: name("Intel SGX PCK Processor CA"),
		NotBefore: b.PCKCAValidity.NotBefore, NotAfter: b.PCKCAValidity.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, root, &caKey.PublicKey, rootKey)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pckKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pck, err = issue(&x509.Certificate{
		SerialNumber: PCKSerial, Subject: name("Intel SGX PCK Certificate"),
		NotBefore: b.PCKValidity.NotBefore, NotAfter: b.PCKValidity.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: sgx.OIDSGXExtensions, Value: SGXExtension(b.FMSPC, b.PCEID, b.Components, b.PCESVN, b.CPUSVN)}},
	}, ca, &pckKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if m := b.Machine; m != nil {
		m.ca, m.caKey, m.pck, m.pkey = ca, caKey, pck, pckKey
	}
	return ca, caKey, pck, pckKey, nil
}

func (b *Builder) build(ca *x509.Certificate, caKey *ecdsa.PrivateKey, pck *x509.Certificate, pckKey *ecdsa.PrivateKey) (*Evidence, error) {
	root, rootKey := b.PKI.Root, b.PKI.RootKey
	tcbKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tcbCert, err := issue(&x509.Certificate{
		SerialNumber: TCBSigningSerial, Subject: name("Intel SGX TCB Signing"),
		NotBefore: b.TCBSigningValidity.NotBefore, NotAfter: b.TCBSigningValidity.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}, root, &tcbKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var q abi.Quote
	q.Header, q.ReportBody = b.Header, b.ReportBody
	sd := &q.SignatureData
	pub, err := attKey.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	copy(sd.AttestationKey[:], pub[1:])
	sd.QEAuthData = b.QEAuthData
	sd.QEReport = b.QEReport
	h := sha256.Sum256(append(append([]byte{}, sd.AttestationKey[:]...), b.QEAuthData...))
	sd.QEReport.ReportData = [64]byte{}
	if b.QEReportData != nil {
		sd.QEReport.ReportData = *b.QEReportData
	}
	if b.QEReportData == nil || b.BindQEReportData {
		copy(sd.QEReport.ReportData[:], h[:])
	}
	copy(sd.QEReportSignature[:], SignRaw(pckKey, sd.QEReport.Marshal()))
	sd.CertificationData = abi.CertificationData{Type: abi.CertDataPCKCertChain, Data: append([]byte(pemCerts(pck, ca, root)), 0)}
	signed := append(q.Header.Marshal(), q.ReportBody.Marshal()...)
	copy(sd.Signature[:], SignRaw(attKey, signed))

	c := &sgx.Collateral{
		Version:               3,
		PCKCRLIssuerChain:     pemCerts(ca, root),
		TCBInfoIssuerChain:    pemCerts(tcbCert, root),
		TCBInfo:               SignedResponse("tcbInfo", b.TCBInfo.Body(), tcbKey),
		QEIdentityIssuerChain: pemCerts(tcbCert, root),
		QEIdentity:            SignedResponse("enclaveIdentity", b.QEIdentity.Body(), tcbKey),
	}
	if !b.RootCRL.Omit {
		der, err := makeCRL(b.RootCRL, root, rootKey)
		if err != nil {
			return nil, err
		}
		c.RootCACRL = string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	if !b.PCKCRL.Omit {
		der, err := makeCRL(b.PCKCRL, ca, caKey)
		if err != nil {
			return nil, err
		}
		c.PCKCRL = hex.EncodeToString(der)
	}
	return &Evidence{Quote: q.Marshal(), Collateral: c, Root: root, PCK: pck, PCKCA: ca, TCBSigning: tcbCert,
		PCKCAKey: caKey, TCBSigningKey: tcbKey, RootKey: rootKey}, nil
}
