// Package sgx verifies Intel SGX DCAP quotes (version 3, ECDSA P-256) in
// pure Go, against Intel PCS collateral, with the Intel SGX Root CA pinned.
//
// Verify checks, and fails closed on any failure:
//   - the PCK certificate chain of the quote up to the pinned root, with the
//     validity dates of every certificate at the verification time;
//   - when the collateral carries copies of the PCK certificate and its
//     signing chain (pck_certificate, pck_signing_chain), that they are
//     exactly the certificates the quote carries;
//   - the root CA CRL and the PCK CRL: issuer, signature, thisUpdate and
//     nextUpdate, and that no certificate in use is revoked;
//   - the QE report's signature by the PCK key, and that its report data
//     binds the attestation key and the QE authentication data;
//   - the quote's signature by the attestation key;
//   - the QE identity: signing chain, signature, validity window, MRSIGNER,
//     ISVPRODID, MISCSELECT and ATTRIBUTES under their masks, and the QE TCB
//     level of the QE report's ISVSVN (levels highest ISVSVN first; a QE
//     below every level fails with ErrTCBLevelNotFound: TCB not supported);
//   - the TCB info: signing chain, signature, validity window, FMSPC and PCE
//     ID against the PCK certificate, and the platform TCB level of the PCK
//     certificate's TCB (levels sorted as Intel's QVL sorts them, highest
//     first, then the first that applies);
//
// and returns the combined TCB status with its advisories. It does not
// judge the enclave's identity (MRENCLAVE, attributes): that is the job of
// package policy.
package sgx

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelRootCAFingerprint is the SHA-256 of the DER of the Intel SGX Root CA
// certificate that this package pins.
const IntelRootCAFingerprint = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

var intelRoot = sync.OnceValues(func() (*x509.Certificate, error) {
	certs, err := ParseCertChain(ItemRootCertificate, intelRootPEM)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(certs[0].Raw)
	if len(certs) != 1 || hex.EncodeToString(sum[:]) != IntelRootCAFingerprint {
		return nil, newErr(ItemRootCertificate, ErrMismatch, "embedded root does not have the pinned fingerprint")
	}
	return certs[0], nil
})

// IntelRootCA returns the embedded Intel SGX Root CA certificate.
func IntelRootCA() *x509.Certificate {
	c, err := intelRoot()
	if err != nil {
		panic(err) // the embedded file is part of the build
	}
	return c
}

// Certificate common names that the chains must carry.
const (
	cnPCKLeaf     = "Intel SGX PCK Certificate"
	cnProcessorCA = "Intel SGX PCK Processor CA"
	cnPlatformCA  = "Intel SGX PCK Platform CA"
	cnTCBSigning  = "Intel SGX TCB Signing"
)

// Options adjust Verify. The zero value verifies at the current time against
// the embedded Intel SGX Root CA and requires CRLs.
type Options struct {
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
	// MinTCBEvaluationDataNumber, when not zero, refuses TCB info and QE
	// identity whose tcbEvaluationDataNumber is lower.
	MinTCBEvaluationDataNumber uint32
	// MaxCollateralAge, when not zero, refuses TCB info and QE identity
	// issued more than this long before the verification time, on top of
	// their own nextUpdate. (CRLs are held to their nextUpdate only: the
	// root CA CRL is routinely reissued once a year.)
	MaxCollateralAge time.Duration
	// AllowMissingCRLs accepts collateral without the root CA CRL and/or the
	// PCK CRL, skipping the revocation check of what they would cover.
	// Revocation is then unknown: use it only for collateral sets that come
	// without CRLs. CRLs that are present are always checked.
	AllowMissingCRLs bool
	// TestRoot replaces the pinned Intel SGX Root CA. For tests only (a
	// test PKI): evidence that chains to it proves nothing about Intel
	// hardware.
	TestRoot *x509.Certificate
}

// Result is what a verified quote says.
type Result struct {
	// Quote is the parsed quote.
	Quote *abi.Quote
	// ReportBody is the ISV enclave report body (points into Quote).
	ReportBody *abi.ReportBody
	// Status is the combined TCB status (platform and QE).
	Status TCBStatus
	// PlatformStatus is the status of the platform's TCB level in the TCB info.
	PlatformStatus TCBStatus
	// QEStatus is the status of the QE's TCB level in the QE identity.
	QEStatus TCBStatus
	// AdvisoryIDs is the sorted union of the advisories of both levels.
	AdvisoryIDs []string
	// TCBDate is the tcbDate of the platform's TCB level (zero if absent).
	TCBDate time.Time
	// TCBEvaluationDataNumber is the TCB info's tcbEvaluationDataNumber.
	TCBEvaluationDataNumber uint32
	// TCBRecoveriesBehind is how many TCB recovery events the TCB info
	// lists after the platform's TCB level: the number of distinct tcbDate
	// values, later than that level's, among the levels above it (levels
	// sorted highest first, as they are searched). 0 means the platform's
	// level is of the latest recovery; -1 that it cannot be told, a level
	// having no tcbDate.
	TCBRecoveriesBehind int
	// LatestTCBDate is the latest tcbDate of the TCB info's levels: the
	// TCB level of the latest TCB recovery, which an UpToDate platform
	// needs (zero if no level has a tcbDate).
	LatestTCBDate time.Time
	// QEIdentityTCBEvaluationDataNumber is the QE identity's tcbEvaluationDataNumber.
	QEIdentityTCBEvaluationDataNumber uint32
	// FMSPC is the platform's FMSPC (from the PCK certificate).
	FMSPC [6]byte
	// PCEID is the platform's PCE ID (from the PCK certificate).
	PCEID [2]byte
	// PCKCertificate is the verified PCK certificate.
	PCKCertificate *x509.Certificate
	// PCKExtensions are the SGX extensions of PCKCertificate.
	PCKExtensions *PCKExtensions
	// TCBInfoIssueDate is the TCB info's issueDate.
	TCBInfoIssueDate time.Time
	// QEIdentityIssueDate is the QE identity's issueDate.
	QEIdentityIssueDate time.Time
	// CollateralIssued is the latest issue date among the TCB info, the QE
	// identity and the CRLs (thisUpdate).
	CollateralIssued time.Time
	// CollateralNextUpdate is the earliest nextUpdate among the TCB info,
	// the QE identity and the CRLs: the evidence must be verified again
	// with fresh collateral after it.
	CollateralNextUpdate time.Time
	// CRLsChecked is false when Options.AllowMissingCRLs let a CRL be absent.
	CRLsChecked bool
	// VerifiedAt is the verification time.
	VerifiedAt time.Time
}

// Verify parses and verifies an SGX DCAP quote with its collateral. On
// success the quote is authentic and its TCB status is Result.Status; the
// caller then checks Result.Status and the report body against its policy.
// Every error is an *Error.
func Verify(quote []byte, c *Collateral, opts Options) (*Result, error) {
	q, err := abi.ParseQuote(quote)
	if err != nil {
		sentinel := ErrMalformed
		if errors.Is(err, abi.ErrUnsupported) {
			sentinel = ErrUnsupported
		}
		return nil, newErr(ItemQuote, sentinel, "%v", err)
	}
	return verifyQuote(q, c, opts)
}

// VerifyQuote verifies a parsed quote; see Verify. The verdict is always
// about the quote's bytes (q.Raw), never about its parsed fields: the quote
// is parsed again from q.Raw, and a q whose fields differ from what its
// bytes say (a caller edited it after parsing) is refused with ErrMismatch.
// Result.Quote is the fresh parse, not q.
func VerifyQuote(q *abi.Quote, c *Collateral, opts Options) (*Result, error) {
	if q == nil || c == nil {
		return nil, newErr(ItemOptions, ErrMissing, "nil quote or collateral")
	}
	fresh, err := abi.ParseQuote(q.Raw)
	if err != nil {
		sentinel := ErrMalformed
		if errors.Is(err, abi.ErrUnsupported) {
			sentinel = ErrUnsupported
		}
		return nil, newErr(ItemQuote, sentinel, "%v", err)
	}
	if !reflect.DeepEqual(fresh, q) {
		return nil, newErr(ItemQuote, ErrMismatch, "the parsed quote's fields differ from its bytes (Raw); parse the quote again, do not edit it")
	}
	return verifyQuote(fresh, c, opts)
}

// verifyQuote verifies q, which the caller has just parsed from q.Raw and
// shares with nobody.
func verifyQuote(q *abi.Quote, c *Collateral, opts Options) (*Result, error) {
	if c == nil {
		return nil, newErr(ItemOptions, ErrMissing, "nil collateral")
	}
	v := &verifier{q: q, c: c, opts: opts}
	if opts.Now != nil {
		v.now = opts.Now()
	} else {
		v.now = time.Now()
	}
	if opts.TestRoot != nil {
		v.root = opts.TestRoot
	} else {
		root, err := intelRoot()
		if err != nil {
			return nil, err
		}
		v.root = root
	}
	v.res = &Result{Quote: q, ReportBody: &q.ReportBody, VerifiedAt: v.now, CRLsChecked: true}
	steps := []func() error{
		v.header,
		v.pckChain,
		v.collateralPCK,
		v.qeReport,
		v.quoteSignature,
		v.qeIdentity,
		v.tcbInfo,
		v.crls,
		v.finish,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return v.res, nil
}

type verifier struct {
	q    *abi.Quote
	c    *Collateral
	opts Options
	now  time.Time
	root *x509.Certificate
	res  *Result

	pck, pckCA   *x509.Certificate
	quoteCerts   []*x509.Certificate // the quote's PCK chain, PCK certificate first
	ext          *PCKExtensions
	rootIssued   []*x509.Certificate // certificates issued by the root, for the root CA CRL
	qeLevel      qeLevel
	platformLvl  tcbLevel
	issued, next []time.Time
}

func (v *verifier) header() error {
	if v.q.Header.QEVendorID != abi.IntelQEVendorID {
		return newErr(ItemQuote, ErrUnsupported, "QE vendor ID %x, want Intel's %x", v.q.Header.QEVendorID, abi.IntelQEVendorID)
	}
	return nil
}

// checkValidity checks a certificate's dates and critical extensions.
func (v *verifier) checkCert(item Item, c *x509.Certificate) error {
	if v.now.Before(c.NotBefore) {
		return newErr(item, ErrNotYetValid, "%q valid from %s, verification time %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), v.now.UTC().Format(time.RFC3339))
	}
	if v.now.After(c.NotAfter) {
		return newErr(item, ErrExpired, "%q valid until %s, verification time %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339), v.now.UTC().Format(time.RFC3339))
	}
	if len(c.UnhandledCriticalExtensions) != 0 {
		return newErr(item, ErrUnsupported, "%q has unhandled critical extensions %v", c.Subject.CommonName, c.UnhandledCriticalExtensions)
	}
	return nil
}

// verifyChain checks a chain (leaf first) whose last certificate must be the
// pinned root, with the given items and the common names each certificate
// must carry (one set per non-root certificate).
func (v *verifier) verifyChain(chainItem Item, items []Item, names [][]string, certs []*x509.Certificate) error {
	want := len(items) + 1
	if len(certs) != want {
		return newErr(chainItem, ErrMalformed, "%d certificates, want %d (ending at the root)", len(certs), want)
	}
	last := certs[len(certs)-1]
	if !bytes.Equal(last.Raw, v.root.Raw) {
		got, want := sha256.Sum256(last.Raw), sha256.Sum256(v.root.Raw)
		return newErr(chainItem, ErrUntrustedRoot, "chain ends at %q with SHA-256 %x, the pinned root %q has SHA-256 %x", last.Subject.CommonName, got, v.root.Subject.CommonName, want)
	}
	for i := len(certs) - 2; i >= 0; i-- {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return newErr(items[i], ErrSignature, "%q is not signed by %q: %v", certs[i].Subject.CommonName, certs[i+1].Subject.CommonName, err)
		}
		if !bytes.Equal(certs[i].RawIssuer, certs[i+1].RawSubject) {
			return newErr(items[i], ErrMismatch, "issuer of %q is not the subject of %q", certs[i].Subject.CommonName, certs[i+1].Subject.CommonName)
		}
		if !slices.Contains(names[i], certs[i].Subject.CommonName) {
			return newErr(items[i], ErrMismatch, "common name %q, want one of %q", certs[i].Subject.CommonName, names[i])
		}
	}
	for i, c := range certs[:len(certs)-1] {
		if err := v.checkCert(items[i], c); err != nil {
			return err
		}
	}
	return v.checkCert(ItemRootCertificate, v.root)
}

func (v *verifier) pckChain() error {
	cd := v.q.SignatureData.CertificationData
	if cd.Type != abi.CertDataPCKCertChain {
		return newErr(ItemCertificationData, ErrUnsupported, "certification data type %d (%v) cannot be verified without the PCK certificate: the quote must carry the PCK certificate chain (type 5)", uint16(cd.Type), cd.Type)
	}
	certs, err := ParseCertChain(ItemCertificationData, cd.Data)
	if err != nil {
		return err
	}
	if err := v.verifyChain(ItemCertificationData, []Item{ItemPCKCertificate, ItemPCKCACertificate}, [][]string{{cnPCKLeaf}, {cnProcessorCA, cnPlatformCA}}, certs); err != nil {
		return err
	}
	v.pck, v.pckCA, v.quoteCerts = certs[0], certs[1], certs
	v.rootIssued = append(v.rootIssued, v.pckCA)
	ext, err := ParsePCKExtensions(v.pck)
	if err != nil {
		return newErr(ItemPCKCertificate, ErrMalformed, "%v", err)
	}
	v.ext = ext
	v.res.PCKCertificate, v.res.PCKExtensions = v.pck, ext
	v.res.FMSPC, v.res.PCEID = ext.FMSPC, ext.PCEID
	return nil
}

// collateralPCK checks the collateral's PCK certificate and PCK signing
// chain fields against the chain the quote carries (CheckCollateralPCK).
func (v *verifier) collateralPCK() error { return CheckCollateralPCK(v.quoteCerts, v.c) }

// CheckCollateralPCK checks the collateral's copies of the PCK certificate
// and its signing chain against chain, the certificates a quote carries
// (the PCK certificate first). A verifier takes the PCK chain from the
// quote; these fields (which BlindAI's servers fill in) would otherwise be
// bytes that travel inside evidence and proofs without being checked. When
// present, PCKCertificate must be exactly the quote's PCK certificate, and
// PCKSigningChain the certificates that follow it in the quote, in order
// (it may leave out the root). Its errors are *Error.
func CheckCollateralPCK(chain []*x509.Certificate, c *Collateral) error {
	if strings.Trim(c.PCKCertificate, pemSpace) != "" {
		certs, err := ParseCertChain(ItemCollateralPCKCertificate, []byte(c.PCKCertificate))
		if err != nil {
			return err
		}
		if len(chain) == 0 || len(certs) != 1 || !bytes.Equal(certs[0].Raw, chain[0].Raw) {
			return newErr(ItemCollateralPCKCertificate, ErrMismatch, "the collateral's PCK certificate is not the one the quote carries")
		}
	}
	if strings.Trim(c.PCKSigningChain, pemSpace) != "" {
		certs, err := ParseCertChain(ItemCollateralPCKSigningChain, []byte(c.PCKSigningChain))
		if err != nil {
			return err
		}
		if len(chain) == 0 || len(certs) > len(chain)-1 {
			return newErr(ItemCollateralPCKSigningChain, ErrMismatch, "the collateral's PCK signing chain has %d certificates, the quote's chain above the PCK certificate %d", len(certs), max(0, len(chain)-1))
		}
		for i, cert := range certs {
			if !bytes.Equal(cert.Raw, chain[i+1].Raw) {
				return newErr(ItemCollateralPCKSigningChain, ErrMismatch, "certificate %d of the collateral's PCK signing chain (%q) is not the quote's", i, cert.Subject.CommonName)
			}
		}
	}
	return nil
}

func verifyRaw(pub *ecdsa.PublicKey, msg []byte, sig [64]byte) bool {
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

func verifyRawSlice(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	var s [64]byte
	if len(sig) != 64 {
		return false
	}
	copy(s[:], sig)
	return verifyRaw(pub, msg, s)
}

func p256Key(c *x509.Certificate) (*ecdsa.PublicKey, bool) {
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, false
	}
	return k, true
}

func (v *verifier) qeReport() error {
	sd := &v.q.SignatureData
	key, ok := p256Key(v.pck)
	if !ok {
		return newErr(ItemPCKCertificate, ErrUnsupported, "public key is not ECDSA P-256")
	}
	if !verifyRaw(key, sd.QEReportRaw, sd.QEReportSignature) {
		return newErr(ItemQEReportSignature, ErrSignature, "QE report is not signed by the PCK certificate's key")
	}
	h := sha256.New()
	h.Write(sd.AttestationKey[:])
	h.Write(sd.QEAuthData)
	want := h.Sum(nil)
	rd := sd.QEReport.ReportData
	if !bytes.Equal(rd[:32], want) {
		return newErr(ItemQEReport, ErrMismatch, "report data[0:32] = %x, want SHA-256(attestation key || QE authentication data) = %x", rd[:32], want)
	}
	if !bytes.Equal(rd[32:], make([]byte, 32)) {
		return newErr(ItemQEReport, ErrMismatch, "report data[32:64] = %x, want all zeros", rd[32:])
	}
	return nil
}

func (v *verifier) quoteSignature() error {
	sd := &v.q.SignatureData
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, sd.AttestationKey[:]...))
	if err != nil {
		return newErr(ItemQuoteSignature, ErrMalformed, "attestation key is not a P-256 point: %v", err)
	}
	if !verifyRaw(key, v.q.Signed, sd.Signature) {
		return newErr(ItemQuoteSignature, ErrSignature, "header and report body are not signed by the attestation key")
	}
	return nil
}

// signingChain parses and verifies a TCB signing chain (signing certificate
// and root) and returns the signing certificate.
func (v *verifier) signingChain(chainItem Item, pemChain string) (*x509.Certificate, error) {
	if pemChain == "" {
		return nil, newErr(chainItem, ErrMissing, "empty")
	}
	certs, err := ParseCertChain(chainItem, []byte(pemChain))
	if err != nil {
		return nil, err
	}
	if err := v.verifyChain(chainItem, []Item{chainItem}, [][]string{{cnTCBSigning}}, certs); err != nil {
		return nil, err
	}
	v.rootIssued = append(v.rootIssued, certs[0])
	return certs[0], nil
}

// checkSigned verifies a PCS response's signature and returns its body.
func (v *verifier) checkSigned(item, chainItem Item, response, bodyKey, pemChain string) ([]byte, error) {
	body, sig, err := splitSignedJSON(item, response, bodyKey)
	if err != nil {
		return nil, err
	}
	signer, err := v.signingChain(chainItem, pemChain)
	if err != nil {
		return nil, err
	}
	key, ok := p256Key(signer)
	if !ok {
		return nil, newErr(chainItem, ErrUnsupported, "signing key is not ECDSA P-256")
	}
	if !verifyRawSlice(key, body, sig) {
		return nil, newErr(item, ErrSignature, "body is not signed by %q", signer.Subject.CommonName)
	}
	return body, nil
}

func (v *verifier) window(item Item, issue, next time.Time, evalNum uint32) error {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if v.now.Before(issue) {
		return newErr(item, ErrNotYetValid, "issueDate %s is after the verification time %s", f(issue), f(v.now))
	}
	if !v.now.Before(next) {
		return newErr(item, ErrExpired, "nextUpdate %s is not after the verification time %s", f(next), f(v.now))
	}
	if v.opts.MaxCollateralAge > 0 && v.now.Sub(issue) > v.opts.MaxCollateralAge {
		return newErr(item, ErrTooOld, "issued %s, more than %v before the verification time %s", f(issue), v.opts.MaxCollateralAge, f(v.now))
	}
	if evalNum < v.opts.MinTCBEvaluationDataNumber {
		return newErr(item, ErrTooOld, "tcbEvaluationDataNumber %d, want at least %d", evalNum, v.opts.MinTCBEvaluationDataNumber)
	}
	v.issued = append(v.issued, issue)
	v.next = append(v.next, next)
	return nil
}

func bodyErr(item Item, err error) error {
	if errors.Is(err, ErrUnsupported) {
		return newErr(item, ErrUnsupported, "%v", err)
	}
	return newErr(item, ErrMalformed, "%v", err)
}

func (v *verifier) qeIdentity() error {
	body, err := v.checkSigned(ItemQEIdentity, ItemQEIdentityIssuerChain, v.c.QEIdentity, "enclaveIdentity", v.c.QEIdentityIssuerChain)
	if err != nil {
		return err
	}
	id, err := parseQEIdentityBody(body)
	if err != nil {
		return bodyErr(ItemQEIdentity, err)
	}
	if err := v.window(ItemQEIdentity, id.IssueDate, id.NextUpdate, id.TCBEvaluationDataNumber); err != nil {
		return err
	}
	r := &v.q.SignatureData.QEReport
	if r.MRSIGNER != id.MRSIGNER {
		return newErr(ItemQEReport, ErrMismatch, "MRSIGNER %x, QE identity wants %x", r.MRSIGNER, id.MRSIGNER)
	}
	if r.ISVProdID != id.ISVProdID {
		return newErr(ItemQEReport, ErrMismatch, "ISVPRODID %d, QE identity wants %d", r.ISVProdID, id.ISVProdID)
	}
	var misc [4]byte
	misc[0], misc[1], misc[2], misc[3] = byte(r.MiscSelect), byte(r.MiscSelect>>8), byte(r.MiscSelect>>16), byte(r.MiscSelect>>24)
	for i := range misc {
		if misc[i]&id.MiscSelectMask[i] != id.MiscSelect[i] {
			return newErr(ItemQEReport, ErrMismatch, "MISCSELECT %x under mask %x, QE identity wants %x", misc, id.MiscSelectMask, id.MiscSelect)
		}
	}
	attrs := r.Marshal()[48:64]
	for i := range attrs {
		if attrs[i]&id.AttributesMask[i] != id.Attributes[i] {
			return newErr(ItemQEReport, ErrMismatch, "ATTRIBUTES %x under mask %x, QE identity wants %x", attrs, id.AttributesMask, id.Attributes)
		}
	}
	// The highest level whose ISVSVN the QE reaches applies (levels sorted
	// by ISVSVN, highest first, whatever their order in the JSON). A QE
	// below every level is not supported at all: a hard failure, as in
	// Intel's QVL, not a status a policy could accept.
	levels := slices.Clone(id.Levels)
	slices.SortStableFunc(levels, func(a, b qeLevel) int { return cmp.Compare(b.ISVSVN, a.ISVSVN) })
	found := false
	for _, l := range levels {
		if l.ISVSVN <= r.ISVSVN {
			v.qeLevel, found = l, true
			break
		}
	}
	if !found {
		return newErr(ItemQEIdentity, ErrTCBLevelNotFound, "QE ISVSVN %d is below every TCB level of the QE identity (TCB not supported)", r.ISVSVN)
	}
	v.res.QEStatus = v.qeLevel.Status
	v.res.QEIdentityTCBEvaluationDataNumber = id.TCBEvaluationDataNumber
	v.res.QEIdentityIssueDate = id.IssueDate
	return nil
}

func (v *verifier) tcbInfo() error {
	body, err := v.checkSigned(ItemTCBInfo, ItemTCBInfoIssuerChain, v.c.TCBInfo, "tcbInfo", v.c.TCBInfoIssuerChain)
	if err != nil {
		return err
	}
	ti, err := parseTCBInfoBody(body)
	if err != nil {
		return bodyErr(ItemTCBInfo, err)
	}
	if err := v.window(ItemTCBInfo, ti.IssueDate, ti.NextUpdate, ti.TCBEvaluationDataNumber); err != nil {
		return err
	}
	if ti.FMSPC != v.ext.FMSPC {
		return newErr(ItemTCBInfo, ErrMismatch, "FMSPC %X, PCK certificate has %X", ti.FMSPC, v.ext.FMSPC)
	}
	if ti.PCEID != v.ext.PCEID {
		return newErr(ItemTCBInfo, ErrMismatch, "PCE ID %X, PCK certificate has %X", ti.PCEID, v.ext.PCEID)
	}
	sorted := sortedTCBLevels(ti.Levels)
	matched := slices.IndexFunc(sorted, func(l tcbLevel) bool { return tcbLevelApplies(l, v.ext) })
	if matched < 0 {
		return newErr(ItemTCBInfo, ErrTCBLevelNotFound, "PCK certificate TCB components %v, PCESVN %d", v.ext.CPUSVNComponents, v.ext.PCESVN)
	}
	v.platformLvl = sorted[matched]
	v.res.TCBRecoveriesBehind, v.res.LatestTCBDate = tcbRecoveries(sorted, matched)
	v.res.PlatformStatus = v.platformLvl.Status
	v.res.TCBDate = v.platformLvl.TCBDate
	v.res.TCBEvaluationDataNumber = ti.TCBEvaluationDataNumber
	v.res.TCBInfoIssueDate = ti.IssueDate
	return nil
}

// compareTCBLevels orders TCB levels as Intel's QVL does: the 16 CPUSVN
// components compared in order (the first that differs decides), then the
// PCESVN.
func compareTCBLevels(a, b tcbLevel) int {
	for i := range a.Components {
		if c := cmp.Compare(a.Components[i], b.Components[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.PCESVN, b.PCESVN)
}

// sortedTCBLevels returns the levels highest first (compareTCBLevels), the
// order in which the first applicable level is searched; the JSON order
// does not count.
func sortedTCBLevels(levels []tcbLevel) []tcbLevel {
	out := slices.Clone(levels)
	slices.SortStableFunc(out, func(a, b tcbLevel) int { return compareTCBLevels(b, a) })
	return out
}

func tcbLevelApplies(l tcbLevel, ext *PCKExtensions) bool {
	for i := range l.Components {
		if ext.CPUSVNComponents[i] < l.Components[i] {
			return false
		}
	}
	return ext.PCESVN >= l.PCESVN
}

func (v *verifier) crlWindow(item Item, crl *x509.RevocationList) error {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if v.now.Before(crl.ThisUpdate) {
		return newErr(item, ErrNotYetValid, "thisUpdate %s is after the verification time %s", f(crl.ThisUpdate), f(v.now))
	}
	if crl.NextUpdate.IsZero() {
		return newErr(item, ErrMalformed, "no nextUpdate")
	}
	if !v.now.Before(crl.NextUpdate) {
		return newErr(item, ErrExpired, "nextUpdate %s is not after the verification time %s", f(crl.NextUpdate), f(v.now))
	}
	v.issued = append(v.issued, crl.ThisUpdate)
	v.next = append(v.next, crl.NextUpdate)
	return nil
}

func checkRevoked(item Item, crl *x509.RevocationList, certs ...*x509.Certificate) error {
	for _, c := range certs {
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return newErr(item, ErrRevoked, "%q (serial %x) is revoked since %s", c.Subject.CommonName, c.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}

func (v *verifier) crls() error {
	if v.c.RootCACRL == "" || v.c.PCKCRL == "" {
		if !v.opts.AllowMissingCRLs {
			missing := ItemRootCACRL
			if v.c.RootCACRL != "" {
				missing = ItemPCKCRL
			}
			return newErr(missing, ErrMissing, "the collateral has no CRL (Options.AllowMissingCRLs is not set)")
		}
		v.res.CRLsChecked = false
	}
	if v.c.RootCACRL != "" {
		crl, err := ParseCRL(ItemRootCACRL, v.c.RootCACRL)
		if err != nil {
			return err
		}
		if !bytes.Equal(crl.RawIssuer, v.root.RawSubject) {
			return newErr(ItemRootCACRL, ErrMismatch, "issuer %q is not the root %q", crl.Issuer.CommonName, v.root.Subject.CommonName)
		}
		if err := crl.CheckSignatureFrom(v.root); err != nil {
			return newErr(ItemRootCACRL, ErrSignature, "not signed by the root: %v", err)
		}
		if err := v.crlWindow(ItemRootCACRL, crl); err != nil {
			return err
		}
		if err := checkRevoked(ItemRootCACRL, crl, v.rootIssued...); err != nil {
			return err
		}
	}
	if v.c.PCKCRL != "" {
		if v.c.PCKCRLIssuerChain != "" {
			certs, err := ParseCertChain(ItemPCKCRLIssuerChain, []byte(v.c.PCKCRLIssuerChain))
			if err != nil {
				return err
			}
			if err := v.verifyChain(ItemPCKCRLIssuerChain, []Item{ItemPCKCRLIssuerChain}, [][]string{{cnProcessorCA, cnPlatformCA}}, certs); err != nil {
				return err
			}
			if !bytes.Equal(certs[0].Raw, v.pckCA.Raw) {
				return newErr(ItemPCKCRLIssuerChain, ErrMismatch, "issuer %q is not the PCK certificate's issuer in the quote", certs[0].Subject.CommonName)
			}
		}
		crl, err := ParseCRL(ItemPCKCRL, v.c.PCKCRL)
		if err != nil {
			return err
		}
		if !bytes.Equal(crl.RawIssuer, v.pckCA.RawSubject) {
			return newErr(ItemPCKCRL, ErrMismatch, "issuer %q is not the PCK certificate's issuer %q", crl.Issuer.CommonName, v.pckCA.Subject.CommonName)
		}
		if err := crl.CheckSignatureFrom(v.pckCA); err != nil {
			return newErr(ItemPCKCRL, ErrSignature, "not signed by %q: %v", v.pckCA.Subject.CommonName, err)
		}
		if err := v.crlWindow(ItemPCKCRL, crl); err != nil {
			return err
		}
		if err := checkRevoked(ItemPCKCRL, crl, v.pck); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) finish() error {
	res := v.res
	res.Status = MergeStatus(v.platformLvl.Status, v.qeLevel.Status)
	set := map[string]bool{}
	for _, a := range append(slices.Clone(v.platformLvl.AdvisoryIDs), v.qeLevel.AdvisoryIDs...) {
		set[a] = true
	}
	res.AdvisoryIDs = make([]string, 0, len(set))
	for a := range set {
		res.AdvisoryIDs = append(res.AdvisoryIDs, a)
	}
	slices.Sort(res.AdvisoryIDs)
	for _, t := range v.issued {
		if t.After(res.CollateralIssued) {
			res.CollateralIssued = t
		}
	}
	for _, t := range v.next {
		if res.CollateralNextUpdate.IsZero() || t.Before(res.CollateralNextUpdate) {
			res.CollateralNextUpdate = t
		}
	}
	return nil
}

// String gives a one-line summary of the result.
func (r *Result) String() string {
	return fmt.Sprintf("SGX quote: status %s (platform %s, QE %s), advisories %v, FMSPC %X, TCB evaluation data number %d, collateral valid until %s",
		r.Status, r.PlatformStatus, r.QEStatus, r.AdvisoryIDs, r.FMSPC, r.TCBEvaluationDataNumber, r.CollateralNextUpdate.UTC().Format(time.RFC3339))
}
