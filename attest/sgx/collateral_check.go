package sgx

import (
	"bytes"
	"encoding/json"
	"time"
)

// SignedCollateral describes a TCB info or enclave identity whose signature
// and signing chain VerifyCollateral checked.
type SignedCollateral struct {
	// ID is the body's id ("SGX", "TDX"; "QE", "TD_QE"); "SGX" for a
	// version 2 TCB info, which has none.
	ID string
	// Version is the body's version.
	Version int
	// FMSPC is the TCB info's FMSPC as served (hex); empty for an identity.
	FMSPC string
	// IssueDate and NextUpdate bound its validity.
	IssueDate, NextUpdate time.Time
	// TCBEvaluationDataNumber is its tcbEvaluationDataNumber.
	TCBEvaluationDataNumber uint32
	// Signer is the common name of the certificate that signed it.
	Signer string
}

// CheckedCRL describes a CRL whose issuer and signature VerifyCollateral
// checked.
type CheckedCRL struct {
	// Issuer is the common name of the CRL's issuer.
	Issuer string
	// ThisUpdate and NextUpdate bound its validity.
	ThisUpdate, NextUpdate time.Time
	// Revoked is the number of certificates it revokes.
	Revoked int
}

// CollateralCheck is what VerifyCollateral found.
type CollateralCheck struct {
	// TCBInfo and QEIdentity are the signed bodies.
	TCBInfo, QEIdentity SignedCollateral
	// PCKCRL and RootCACRL are the CRLs.
	PCKCRL, RootCACRL CheckedCRL
	// NextUpdate is the earliest nextUpdate of all four items.
	NextUpdate time.Time
}

// VerifyCollateral checks collateral on its own, without a quote: the TCB
// info's and the QE identity's signing chains up to the pinned root (or
// Options.TestRoot) and their signatures over the exact body bytes; the
// PCK CRL's issuer chain up to the root and the PCK CRL's signature by that
// issuer; the root CA CRL's signature by the root; that no certificate of
// those chains is revoked by the root CA CRL; and every item's validity
// window at the verification time (with Options.MinTCBEvaluationDataNumber
// and Options.MaxCollateralAge). Both CRLs are required
// (Options.AllowMissingCRLs is ignored).
//
// The bodies are read only for their id, version, dates, FMSPC and TCB
// evaluation data number, so SGX and TDX collateral (TCB info id "TDX",
// identity "TD_QE") are checked alike. It says nothing about a platform's
// TCB status: that takes a quote and Verify. Every error is an *Error.
func VerifyCollateral(c *Collateral, opts Options) (*CollateralCheck, error) {
	if c == nil {
		return nil, newErr(ItemOptions, ErrMissing, "nil collateral")
	}
	v := &verifier{c: c, opts: opts, now: time.Now(), root: opts.TestRoot}
	if opts.Now != nil {
		v.now = opts.Now()
	}
	if v.root == nil {
		root, err := intelRoot()
		if err != nil {
			return nil, err
		}
		v.root = root
	}
	out := &CollateralCheck{}
	var err error
	if out.TCBInfo, err = v.signedCollateral(ItemTCBInfo, ItemTCBInfoIssuerChain, c.TCBInfo, "tcbInfo", c.TCBInfoIssuerChain); err != nil {
		return nil, err
	}
	if out.QEIdentity, err = v.signedCollateral(ItemQEIdentity, ItemQEIdentityIssuerChain, c.QEIdentity, "enclaveIdentity", c.QEIdentityIssuerChain); err != nil {
		return nil, err
	}
	if c.PCKCRLIssuerChain == "" || c.PCKCRL == "" || c.RootCACRL == "" {
		item := ItemRootCACRL
		switch {
		case c.PCKCRLIssuerChain == "":
			item = ItemPCKCRLIssuerChain
		case c.PCKCRL == "":
			item = ItemPCKCRL
		}
		return nil, newErr(item, ErrMissing, "empty")
	}
	certs, err := ParseCertChain(ItemPCKCRLIssuerChain, []byte(c.PCKCRLIssuerChain))
	if err != nil {
		return nil, err
	}
	if err := v.verifyChain(ItemPCKCRLIssuerChain, []Item{ItemPCKCRLIssuerChain}, [][]string{{cnProcessorCA, cnPlatformCA}}, certs); err != nil {
		return nil, err
	}
	pckCA := certs[0]
	v.rootIssued = append(v.rootIssued, pckCA)

	rootCRL, err := ParseCRL(ItemRootCACRL, c.RootCACRL)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(rootCRL.RawIssuer, v.root.RawSubject) {
		return nil, newErr(ItemRootCACRL, ErrMismatch, "issuer %q is not the root %q", rootCRL.Issuer.CommonName, v.root.Subject.CommonName)
	}
	if err := rootCRL.CheckSignatureFrom(v.root); err != nil {
		return nil, newErr(ItemRootCACRL, ErrSignature, "not signed by the root: %v", err)
	}
	if err := v.crlWindow(ItemRootCACRL, rootCRL); err != nil {
		return nil, err
	}
	if err := checkRevoked(ItemRootCACRL, rootCRL, v.rootIssued...); err != nil {
		return nil, err
	}
	pckCRL, err := ParseCRL(ItemPCKCRL, c.PCKCRL)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pckCRL.RawIssuer, pckCA.RawSubject) {
		return nil, newErr(ItemPCKCRL, ErrMismatch, "issuer %q is not the issuer chain's %q", pckCRL.Issuer.CommonName, pckCA.Subject.CommonName)
	}
	if err := pckCRL.CheckSignatureFrom(pckCA); err != nil {
		return nil, newErr(ItemPCKCRL, ErrSignature, "not signed by %q: %v", pckCA.Subject.CommonName, err)
	}
	if err := v.crlWindow(ItemPCKCRL, pckCRL); err != nil {
		return nil, err
	}
	out.RootCACRL = CheckedCRL{Issuer: rootCRL.Issuer.CommonName, ThisUpdate: rootCRL.ThisUpdate, NextUpdate: rootCRL.NextUpdate, Revoked: len(rootCRL.RevokedCertificateEntries)}
	out.PCKCRL = CheckedCRL{Issuer: pckCRL.Issuer.CommonName, ThisUpdate: pckCRL.ThisUpdate, NextUpdate: pckCRL.NextUpdate, Revoked: len(pckCRL.RevokedCertificateEntries)}
	for _, t := range v.next {
		if out.NextUpdate.IsZero() || t.Before(out.NextUpdate) {
			out.NextUpdate = t
		}
	}
	return out, nil
}

// signedCollateral verifies a signed PCS response (see checkSigned) and
// reads the fields common to TCB info and enclave identity bodies.
func (v *verifier) signedCollateral(item, chainItem Item, response, bodyKey, pemChain string) (SignedCollateral, error) {
	body, err := v.checkSigned(item, chainItem, response, bodyKey, pemChain)
	if err != nil {
		return SignedCollateral{}, err
	}
	var in struct {
		ID                      *string `json:"id"`
		Version                 *int    `json:"version"`
		IssueDate               string  `json:"issueDate"`
		NextUpdate              string  `json:"nextUpdate"`
		FMSPC                   string  `json:"fmspc"`
		TCBEvaluationDataNumber *int    `json:"tcbEvaluationDataNumber"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return SignedCollateral{}, newErr(item, ErrMalformed, "%v", err)
	}
	out := SignedCollateral{FMSPC: in.FMSPC}
	if out.Version, err = intField("version", in.Version, 1<<16); err != nil {
		return SignedCollateral{}, newErr(item, ErrMalformed, "%v", err)
	}
	switch {
	case in.ID != nil:
		out.ID = *in.ID
	case bodyKey == "tcbInfo" && out.Version == 2:
		out.ID = "SGX"
	default:
		return SignedCollateral{}, newErr(item, ErrMalformed, "no id")
	}
	if out.IssueDate, err = parseTime("issueDate", in.IssueDate); err != nil {
		return SignedCollateral{}, newErr(item, ErrMalformed, "%v", err)
	}
	if out.NextUpdate, err = parseTime("nextUpdate", in.NextUpdate); err != nil {
		return SignedCollateral{}, newErr(item, ErrMalformed, "%v", err)
	}
	n, err := intField("tcbEvaluationDataNumber", in.TCBEvaluationDataNumber, 1<<31-1)
	if err != nil {
		return SignedCollateral{}, newErr(item, ErrMalformed, "%v", err)
	}
	out.TCBEvaluationDataNumber = uint32(n)
	if err := v.window(item, out.IssueDate, out.NextUpdate, out.TCBEvaluationDataNumber); err != nil {
		return SignedCollateral{}, err
	}
	// checkSigned recorded the signing certificate last.
	out.Signer = v.rootIssued[len(v.rootIssued)-1].Subject.CommonName
	return out, nil
}
