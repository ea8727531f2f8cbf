package tdx

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// Common names the certificates of the chains must carry.
const (
	cnPCK         = "Intel SGX PCK Certificate"
	cnProcessorCA = "Intel SGX PCK Processor CA"
	cnPlatformCA  = "Intel SGX PCK Platform CA"
	cnTCBSigning  = "Intel SGX TCB Signing"
)

// Names of the collateral items, as errors name them.
const (
	itemTCBInfo    = "TCB info"
	itemQEIdentity = "QE identity"
	itemPCKCRL     = "PCK CRL"
	itemRootCRL    = "root CA CRL"
)

// statusUpToDate is the only TCB status a quote is accepted at: the
// platform's TCB level, the TDX module's and the QE's.
const statusUpToDate = pcs.TcbComponentStatusUpToDate

func sgxPCKExtensions(pck *x509.Certificate) (*sgx.PCKExtensions, error) {
	ext, err := sgx.ParsePCKExtensions(pck)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate extensions: %v", ErrMalformed, err)
	}
	return ext, nil
}

// verifierV5 verifies one version 5 quote with its collateral.
type verifierV5 struct {
	q    *rawQuote
	c    *sgx.Collateral
	now  time.Time
	root *x509.Certificate

	pck, pckCA *x509.Certificate
	ext        *sgx.PCKExtensions
	// rootIssued are the certificates issued by the root that are in
	// use: the root CA CRL must revoke none of them.
	rootIssued []*x509.Certificate
	// windows are the validity windows of the collateral items, checked
	// after every other check.
	windows []validity
	tcb     *tcbVerdict
	// qeSVN and qeStatus are the QE's ISVSVN and the status of its TCB
	// level in the QE identity.
	qeSVN    uint16
	qeStatus pcs.TcbComponentStatus
}

// validity is the validity window of one collateral item.
type validity struct {
	item         string
	issued, next time.Time
}

// verifyQuoteV5 verifies a version 5 quote with its collateral at now.
// It checks, in order: the PCK certificate chain up to the pinned root (or
// testRoot) with every certificate's dates; the collateral's copies of the
// PCK certificate and signing chain, if any, against it; the QE report's signature by
// the PCK key and its report data binding to the attestation key and the
// QE authentication data; the quote's signature over header, body
// descriptor and body; the TCB info (signing chain, signature, id TDX
// version 3, FMSPC and PCE ID of the PCK certificate, the TDX module's
// MRSIGNERSEAM and SEAM attributes, the platform's TCB level and, for TDX
// 1.5, the TDX module identity's level); the TD QE identity (signing chain,
// signature, MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES under their
// masks, the QE's TCB level); the root CA CRL and the PCK CRL (issuer,
// signature, revocation of every certificate in use); that every TCB level
// found is UpToDate; and last the validity windows of the four collateral
// items, so that a stale-collateral error names every stale item and means
// that every other check passed.
func verifyQuoteV5(q *rawQuote, c *sgx.Collateral, now time.Time, testRoot *x509.Certificate) (*Result, error) {
	v := &verifierV5{q: q, c: c, now: now, root: sgx.IntelRootCA()}
	if testRoot != nil {
		v.root = testRoot
	}
	if err := requireCollateral(c); err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		v.pckChain,
		func() error { return collateralPCK(v.q.pckChain, c) },
		v.qeReport,
		v.quoteSignature,
		v.tcbInfo,
		v.qeIdentity,
		v.crls,
		v.upToDate,
		v.dates,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	p, err := platformOf(v.pck)
	if err != nil {
		return nil, err
	}
	return resultOfV5(q, p, now), nil
}

func requireCollateral(c *sgx.Collateral) error {
	if c == nil {
		return fmt.Errorf("%w: none", ErrCollateral)
	}
	for _, x := range []struct{ name, v string }{
		{"TCB info", c.TCBInfo}, {"TCB info issuer chain", c.TCBInfoIssuerChain},
		{"QE identity", c.QEIdentity}, {"QE identity issuer chain", c.QEIdentityIssuerChain},
		{"PCK CRL", c.PCKCRL}, {"PCK CRL issuer chain", c.PCKCRLIssuerChain}, {"root CA CRL", c.RootCACRL},
	} {
		if strings.TrimSpace(x.v) == "" {
			return fmt.Errorf("%w: the %s is required", ErrCollateral, x.name)
		}
	}
	return nil
}

func verifyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerify, fmt.Sprintf(format, args...))
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkChain checks a chain, leaf first, that must end at the pinned root:
// each certificate signed by the next, issuer names chained, common names
// as listed (one set per certificate below the root), every certificate
// valid at now and without unhandled critical extensions.
func (v *verifierV5) checkChain(what string, certs []*x509.Certificate, names [][]string) error {
	if len(certs) != len(names)+1 {
		return fmt.Errorf("%w: %s of %d certificates, want %d", ErrCollateral, what, len(certs), len(names)+1)
	}
	last := certs[len(certs)-1]
	if !bytes.Equal(last.Raw, v.root.Raw) {
		got, want := sha256.Sum256(last.Raw), sha256.Sum256(v.root.Raw)
		return verifyErr("%s ends at %q (SHA-256 %x), not at the pinned root %q (SHA-256 %x)", what, last.Subject.CommonName, got, v.root.Subject.CommonName, want)
	}
	for i := len(certs) - 2; i >= 0; i-- {
		c, parent := certs[i], certs[i+1]
		if !slices.Contains(names[i], c.Subject.CommonName) {
			return verifyErr("%s: certificate %d has common name %q, want one of %q", what, i, c.Subject.CommonName, names[i])
		}
		if !bytes.Equal(c.RawIssuer, parent.RawSubject) {
			return verifyErr("%s: the issuer of %q is not the subject of %q", what, c.Subject.CommonName, parent.Subject.CommonName)
		}
		if err := c.CheckSignatureFrom(parent); err != nil {
			return verifyErr("%s: %q is not signed by %q: %v", what, c.Subject.CommonName, parent.Subject.CommonName, err)
		}
	}
	for _, c := range certs {
		if v.now.Before(c.NotBefore) {
			return verifyErr("%s: %q is valid from %s, verification time %s", what, c.Subject.CommonName, rfc3339(c.NotBefore), rfc3339(v.now))
		}
		if v.now.After(c.NotAfter) {
			return verifyErr("%s: %q expired at %s, verification time %s", what, c.Subject.CommonName, rfc3339(c.NotAfter), rfc3339(v.now))
		}
		if len(c.UnhandledCriticalExtensions) != 0 {
			return verifyErr("%s: %q has unhandled critical extensions %v", what, c.Subject.CommonName, c.UnhandledCriticalExtensions)
		}
	}
	return nil
}

// pemCerts parses a PEM chain of certificates (collateral issuer chains)
// with the strict parser of SGX collateral (sgx.ParseCertChain).
func pemCerts(what, text string) ([]*x509.Certificate, error) {
	certs, err := sgx.ParseCertChain(sgx.Item(what), []byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCollateral, err)
	}
	return certs, nil
}

func (v *verifierV5) pckChain() error {
	certs, err := pckChainCerts(v.q.pckChain)
	if err != nil {
		return err
	}
	if err := v.checkChain("PCK certificate chain", certs, [][]string{{cnPCK}, {cnProcessorCA, cnPlatformCA}}); err != nil {
		return err
	}
	v.pck, v.pckCA = certs[0], certs[1]
	v.rootIssued = append(v.rootIssued, v.pckCA)
	v.ext, err = sgxPCKExtensions(v.pck)
	return err
}

// collateralPCK checks the collateral's copies of the PCK certificate and
// its signing chain against the quote's PCK chain, as for SGX
// (sgx.CheckCollateralPCK).
func collateralPCK(pckChain []byte, c *sgx.Collateral) error {
	if strings.TrimSpace(c.PCKCertificate) == "" && strings.TrimSpace(c.PCKSigningChain) == "" {
		return nil
	}
	quote, err := pckChainCerts(pckChain)
	if err != nil {
		return err
	}
	if err := sgx.CheckCollateralPCK(quote, c); err != nil {
		return fmt.Errorf("%w: %v", ErrCollateral, err)
	}
	return nil
}

// verifyRaw verifies a raw ECDSA P-256 signature (r || s) over SHA-256 of
// msg.
func verifyRaw(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != sigSize {
		return false
	}
	h := sha256.Sum256(msg)
	return ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

func p256Key(c *x509.Certificate) (*ecdsa.PublicKey, error) {
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, verifyErr("the key of %q is not ECDSA P-256", c.Subject.CommonName)
	}
	return k, nil
}

func (v *verifierV5) qeReport() error {
	key, err := p256Key(v.pck)
	if err != nil {
		return err
	}
	if !verifyRaw(key, v.q.qeReport, v.q.qeReportSignature) {
		return verifyErr("the QE report is not signed by the PCK certificate's key")
	}
	h := sha256.New()
	h.Write(v.q.attestationKey)
	h.Write(v.q.qeAuthData)
	want := h.Sum(nil)
	rd := v.q.qeReport[320:384]
	if !bytes.Equal(rd[:32], want) {
		return verifyErr("QE report data[0:32] = %x, want SHA-256(attestation key || QE authentication data) = %x", rd[:32], want)
	}
	if !bytes.Equal(rd[32:], make([]byte, 32)) {
		return verifyErr("QE report data[32:64] = %x, want all zeros", rd[32:])
	}
	return nil
}

func (v *verifierV5) quoteSignature() error {
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, v.q.attestationKey...))
	if err != nil {
		return verifyErr("the attestation key is not a P-256 point: %v", err)
	}
	if !verifyRaw(key, v.q.signed, v.q.signature) {
		return verifyErr("the header, body descriptor and TD report body are not signed by the attestation key")
	}
	return nil
}

// signedBody verifies a PCS response {"<key>": body, "signature": hex}:
// its signing chain (Intel SGX TCB Signing, root) and the signature over
// the exact bytes of the body, which it returns.
func (v *verifierV5) signedBody(item, text, key, chain string) ([]byte, error) {
	body, sigJSON, err := pcsResponse(text, key)
	if err != nil {
		return nil, err
	}
	var sigHex string
	if err := json.Unmarshal(sigJSON, &sigHex); err != nil {
		return nil, fmt.Errorf("%w: %s signature is not a string", ErrCollateral, item)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != sigSize {
		return nil, fmt.Errorf("%w: %s signature is not %d bytes of hex", ErrCollateral, item, sigSize)
	}
	certs, err := pemCerts(item+" issuer chain", chain)
	if err != nil {
		return nil, err
	}
	if err := v.checkChain(item+" issuer chain", certs, [][]string{{cnTCBSigning}}); err != nil {
		return nil, err
	}
	v.rootIssued = append(v.rootIssued, certs[0])
	k, err := p256Key(certs[0])
	if err != nil {
		return nil, err
	}
	if !verifyRaw(k, body, sig) {
		return nil, verifyErr("the %s is not signed by %q", item, certs[0].Subject.CommonName)
	}
	return body, nil
}

// tcbVerdict is what the TCB info says of a quote's TCB.
type tcbVerdict struct {
	// level is the index in tcbLevels of the platform's level.
	level  int
	status pcs.TcbComponentStatus
	// module is the TDX module identity's id ("TDX_03"), empty when the
	// TDX module's minor version (TEE_TCB_SVN[1]) is 0 and the module is
	// judged by the TDX components of the platform's level.
	module       string
	moduleLevel  int
	moduleStatus pcs.TcbComponentStatus
}

func hexLen(what string, h pcs.HexBytes, n int) ([]byte, error) {
	if len(h.Bytes) != n {
		return nil, fmt.Errorf("%w: TCB info: %s is %d bytes, want %d", ErrCollateral, what, len(h.Bytes), n)
	}
	return h.Bytes, nil
}

// checkSEAM checks the TD report's MRSIGNERSEAM and SEAM attributes
// against a TDX module entry of the TCB info (mrsigner, attributes under
// attributesMask).
func checkSEAM(what string, mrsigner, attrs, mask pcs.HexBytes, body []byte) error {
	signer, err := hexLen(what+" mrsigner", mrsigner, 48)
	if err != nil {
		return err
	}
	a, err := hexLen(what+" attributes", attrs, 8)
	if err != nil {
		return err
	}
	m, err := hexLen(what+" attributesMask", mask, 8)
	if err != nil {
		return err
	}
	if got := body[64:112]; !bytes.Equal(got, signer) {
		return verifyErr("MRSIGNERSEAM %x, the TCB info's %s wants %x", got, what, signer)
	}
	seam := body[112:120]
	for i := range seam {
		if seam[i]&m[i] != a[i] {
			return verifyErr("SEAM attributes %x under mask %x, the TCB info's %s wants %x", seam, m, what, a)
		}
	}
	return nil
}

// evaluateTCB finds the TCB levels of a TD report body (its TEE_TCB_SVN,
// MRSIGNERSEAM, SEAM attributes) and PCK certificate in a TDX TCB info.
// Levels are searched in the order of the TCB info, highest first; a level
// applies when each of the PCK certificate's 16 SGX TCB components and its
// PCESVN are at least the level's, and so is each TDX TCB component of
// TEE_TCB_SVN. When TEE_TCB_SVN[1] (the TDX module's minor version) is not
// 0, the first two TDX components are left to the TDX module identity
// "TDX_" + hex(TEE_TCB_SVN[1]): its MRSIGNER and attributes must match the
// TD report's, and the first of its levels (highest ISVSVN first) whose
// ISVSVN TEE_TCB_SVN[0] reaches is the module's level.
func evaluateTCB(ti *pcs.TcbInfo, body []byte, ext *sgx.PCKExtensions) (*tcbVerdict, error) {
	if err := checkSEAM("tdxModule", ti.TdxModule.Mrsigner, ti.TdxModule.Attributes, ti.TdxModule.AttributesMask, body); err != nil {
		return nil, err
	}
	svn := body[0:16]
	out := &tcbVerdict{level: -1, moduleLevel: -1}
	for i, l := range ti.TcbLevels {
		sgxc, tdxc := l.Tcb.SgxTcbcomponents, l.Tcb.TdxTcbcomponents
		if len(sgxc) != 16 || len(tdxc) != 16 {
			return nil, fmt.Errorf("%w: TCB info: tcbLevels[%d] has %d SGX and %d TDX TCB components, want 16 and 16", ErrCollateral, i, len(sgxc), len(tdxc))
		}
		if out.level >= 0 {
			continue
		}
		applies := ext.PCESVN >= l.Tcb.Pcesvn
		for j := range 16 {
			applies = applies && ext.CPUSVNComponents[j] >= sgxc[j].Svn
		}
		start := 0
		if svn[1] > 0 {
			start = 2
		}
		for j := start; j < 16; j++ {
			applies = applies && svn[j] >= tdxc[j].Svn
		}
		if applies {
			out.level, out.status = i, l.TcbStatus
		}
	}
	if out.level < 0 {
		return nil, verifyErr("no TCB level of the TCB info applies: PCK certificate TCB components %v, PCESVN %d, TEE_TCB_SVN %x", ext.CPUSVNComponents, ext.PCESVN, svn)
	}
	if svn[1] == 0 {
		return out, nil
	}
	want := fmt.Sprintf("TDX_%02X", svn[1])
	var id *pcs.TdxModuleIdentity
	for i := range ti.TdxModuleIdentities {
		m := &ti.TdxModuleIdentities[i]
		if !strings.EqualFold(m.ID, want) {
			continue
		}
		if id != nil {
			return nil, fmt.Errorf("%w: TCB info: two TDX module identities %q", ErrCollateral, want)
		}
		id = m
	}
	if id == nil {
		return nil, verifyErr("the TCB info has no TDX module identity %s for the TDX module of TEE_TCB_SVN %x", want, svn)
	}
	if err := checkSEAM("TDX module identity "+id.ID, id.Mrsigner, id.Attributes, id.AttributesMask, body); err != nil {
		return nil, err
	}
	order := make([]int, len(id.TcbLevels))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(id.TcbLevels[b].Tcb.Isvsvn, id.TcbLevels[a].Tcb.Isvsvn) })
	for _, i := range order {
		if id.TcbLevels[i].Tcb.Isvsvn <= uint32(svn[0]) {
			out.module, out.moduleLevel, out.moduleStatus = id.ID, i, id.TcbLevels[i].TcbStatus
			return out, nil
		}
	}
	return nil, verifyErr("the TDX module's SVN %d (TEE_TCB_SVN[0]) is below every TCB level of TDX module identity %s", svn[0], id.ID)
}

func (v *verifierV5) tcbInfo() error {
	body, err := v.signedBody(itemTCBInfo, v.c.TCBInfo, "tcbInfo", v.c.TCBInfoIssuerChain)
	if err != nil {
		return err
	}
	var ti pcs.TcbInfo
	if err := json.Unmarshal(body, &ti); err != nil {
		return fmt.Errorf("%w: TCB info body: %v", ErrCollateral, err)
	}
	if ti.ID != "TDX" || ti.Version != 3 || ti.TcbType != 0 {
		return fmt.Errorf("%w: TCB info id %q version %d tcbType %d, want TDX, 3, 0", ErrCollateral, ti.ID, ti.Version, ti.TcbType)
	}
	if ti.IssueDate.IsZero() || ti.NextUpdate.IsZero() {
		return fmt.Errorf("%w: TCB info without issueDate or nextUpdate", ErrCollateral)
	}
	v.windows = append(v.windows, validity{itemTCBInfo, ti.IssueDate, ti.NextUpdate})
	if f, err := hex.DecodeString(ti.Fmspc); err != nil || !bytes.Equal(f, v.ext.FMSPC[:]) {
		return fmt.Errorf("%w: the TCB info is for FMSPC %q, the PCK certificate's is %X", ErrCollateral, ti.Fmspc, v.ext.FMSPC)
	}
	if p, err := hex.DecodeString(ti.PceID); err != nil || !bytes.Equal(p, v.ext.PCEID[:]) {
		return fmt.Errorf("%w: the TCB info is for PCE ID %q, the PCK certificate's is %X", ErrCollateral, ti.PceID, v.ext.PCEID)
	}
	v.tcb, err = evaluateTCB(&ti, v.q.body, v.ext)
	return err
}

func (v *verifierV5) qeIdentity() error {
	body, err := v.signedBody(itemQEIdentity, v.c.QEIdentity, "enclaveIdentity", v.c.QEIdentityIssuerChain)
	if err != nil {
		return err
	}
	var id pcs.EnclaveIdentity
	if err := json.Unmarshal(body, &id); err != nil {
		return fmt.Errorf("%w: QE identity body: %v", ErrCollateral, err)
	}
	if id.ID != "TD_QE" || id.Version != 2 {
		return fmt.Errorf("%w: QE identity id %q version %d, want TD_QE, 2", ErrCollateral, id.ID, id.Version)
	}
	if id.IssueDate.IsZero() || id.NextUpdate.IsZero() {
		return fmt.Errorf("%w: QE identity without issueDate or nextUpdate", ErrCollateral)
	}
	v.windows = append(v.windows, validity{itemQEIdentity, id.IssueDate, id.NextUpdate})
	for _, f := range []struct {
		name string
		h    pcs.HexBytes
		n    int
	}{{"miscselect", id.Miscselect, 4}, {"miscselectMask", id.MiscselectMask, 4}, {"attributes", id.Attributes, 16}, {"attributesMask", id.AttributesMask, 16}, {"mrsigner", id.Mrsigner, 32}} {
		if len(f.h.Bytes) != f.n {
			return fmt.Errorf("%w: QE identity %s is %d bytes, want %d", ErrCollateral, f.name, len(f.h.Bytes), f.n)
		}
	}
	r, err := abi.ParseReportBody(v.q.qeReport)
	if err != nil {
		return fmt.Errorf("%w: QE report: %v", ErrMalformed, err)
	}
	if !bytes.Equal(r.MRSIGNER[:], id.Mrsigner.Bytes) {
		return verifyErr("QE MRSIGNER %x, the QE identity wants %x", r.MRSIGNER, id.Mrsigner.Bytes)
	}
	if r.ISVProdID != id.IsvProdID {
		return verifyErr("QE ISVPRODID %d, the QE identity wants %d", r.ISVProdID, id.IsvProdID)
	}
	misc := v.q.qeReport[16:20]
	for i := range misc {
		if misc[i]&id.MiscselectMask.Bytes[i] != id.Miscselect.Bytes[i] {
			return verifyErr("QE MISCSELECT %x under mask %x, the QE identity wants %x", misc, id.MiscselectMask.Bytes, id.Miscselect.Bytes)
		}
	}
	attrs := v.q.qeReport[48:64]
	for i := range attrs {
		if attrs[i]&id.AttributesMask.Bytes[i] != id.Attributes.Bytes[i] {
			return verifyErr("QE ATTRIBUTES %x under mask %x, the QE identity wants %x", attrs, id.AttributesMask.Bytes, id.Attributes.Bytes)
		}
	}
	levels := slices.Clone(id.TcbLevels)
	slices.SortStableFunc(levels, func(a, b pcs.TcbLevel) int { return cmp.Compare(b.Tcb.Isvsvn, a.Tcb.Isvsvn) })
	for _, l := range levels {
		if l.Tcb.Isvsvn <= uint32(r.ISVSVN) {
			v.qeSVN, v.qeStatus = r.ISVSVN, l.TcbStatus
			return nil
		}
	}
	return verifyErr("QE ISVSVN %d is below every TCB level of the QE identity", r.ISVSVN)
}

func parseCRL(item, text string) (*x509.RevocationList, error) {
	der, err := crlDER(sgx.Item(item), text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCollateral, item, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCollateral, item, err)
	}
	if crl.NextUpdate.IsZero() {
		return nil, fmt.Errorf("%w: %s has no nextUpdate", ErrCollateral, item)
	}
	return crl, nil
}

// checkCRL checks a CRL's issuer and signature and that it revokes none of
// certs.
func (v *verifierV5) checkCRL(item, text string, issuer *x509.Certificate, certs ...*x509.Certificate) error {
	crl, err := parseCRL(item, text)
	if err != nil {
		return err
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return verifyErr("the %s is issued by %q, not by %q", item, crl.Issuer.CommonName, issuer.Subject.CommonName)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return verifyErr("the %s is not signed by %q: %v", item, issuer.Subject.CommonName, err)
	}
	v.windows = append(v.windows, validity{item, crl.ThisUpdate, crl.NextUpdate})
	for _, c := range certs {
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return verifyErr("%q (serial %x) is revoked by the %s since %s", c.Subject.CommonName, c.SerialNumber, item, rfc3339(e.RevocationTime))
			}
		}
	}
	return nil
}

func (v *verifierV5) crls() error {
	certs, err := pemCerts("PCK CRL issuer chain", v.c.PCKCRLIssuerChain)
	if err != nil {
		return err
	}
	if err := v.checkChain("PCK CRL issuer chain", certs, [][]string{{cnProcessorCA, cnPlatformCA}}); err != nil {
		return err
	}
	if !bytes.Equal(certs[0].Raw, v.pckCA.Raw) {
		return verifyErr("the PCK CRL issuer chain's CA %q is not the quote's PCK CA", certs[0].Subject.CommonName)
	}
	if err := v.checkCRL(itemRootCRL, v.c.RootCACRL, v.root, v.rootIssued...); err != nil {
		return err
	}
	return v.checkCRL(itemPCKCRL, v.c.PCKCRL, v.pckCA, v.pck)
}

// upToDate requires the platform's, the TDX module's and the QE's TCB
// levels to be UpToDate.
func (v *verifierV5) upToDate() error {
	if v.tcb.status != statusUpToDate {
		return verifyErr("the platform's TCB level (tcbLevels[%d] of the TCB info) is %s, not UpToDate", v.tcb.level, v.tcb.status)
	}
	if v.tcb.module != "" && v.tcb.moduleStatus != statusUpToDate {
		return verifyErr("the TDX module's TCB level (identity %s, tcbLevels[%d]) is %s, not UpToDate", v.tcb.module, v.tcb.moduleLevel, v.tcb.moduleStatus)
	}
	if v.qeStatus != statusUpToDate {
		return verifyErr("the QE's TCB level (ISVSVN %d) is %s, not UpToDate", v.qeSVN, v.qeStatus)
	}
	return nil
}

// dates checks every collateral item's validity window at the verification
// time, and names all those outside theirs.
func (v *verifierV5) dates() error {
	var stale []string
	for _, w := range v.windows {
		if err := dates(w.item, w.issued, w.next, v.now); err != nil {
			var se *staleError
			if errors.As(err, &se) {
				stale = append(stale, se.msg)
				continue
			}
			return err
		}
	}
	if len(stale) > 0 {
		return &staleError{strings.Join(stale, "; ")}
	}
	return nil
}

func resultOfV5(q *rawQuote, p pccs.Platform, now time.Time) *Result {
	b := q.body
	r := &Result{Version: 5, BodyType: q.bodyType, FMSPC: strings.ToUpper(hex.EncodeToString(p.FMSPC[:])), VerifiedAt: now}
	copy(r.TEETCBSVN[:], b[0:16])
	copy(r.MRSEAM[:], b[16:64])
	copy(r.MRSignerSEAM[:], b[64:112])
	r.SEAMAttributes = binary.LittleEndian.Uint64(b[112:])
	r.TDAttributes = binary.LittleEndian.Uint64(b[120:])
	r.XFAM = binary.LittleEndian.Uint64(b[128:])
	copy(r.MRTD[:], b[136:184])
	copy(r.MRConfigID[:], b[184:232])
	copy(r.MROwner[:], b[232:280])
	copy(r.MROwnerConfig[:], b[280:328])
	for i := range r.RTMR {
		copy(r.RTMR[i][:], b[328+48*i:])
	}
	copy(r.ReportData[:], b[520:584])
	if q.bodyType == BodyTD15 {
		copy(r.TEETCBSVN2[:], b[584:600])
		copy(r.MRServiceTD[:], b[600:648])
	}
	return r
}
