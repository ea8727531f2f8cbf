package sgx

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
)

// Policy is what a Verifier holds SGX evidence to: package policy's Policy
// (the [sgx] section, or BlindAI 0.5's top-level keys) implements it.
type Policy interface {
	// ApplyTo sets the verification options the policy decides
	// (collateral age, minimum TCB evaluation data number).
	ApplyTo(o *Options)
	// Check checks a verified quote against the policy. An error whose
	// StaleCollateral method returns true means the collateral is older
	// than the policy allows.
	Check(res *Result) error
}

// Verifier verifies SGX DCAP evidence (attest.TypeSGXDCAP) against a policy:
// it implements attest.Verifier.
type Verifier struct {
	policy Policy
	opts   Options
}

// NewVerifier returns a verifier that holds evidence to p, verifying quotes
// with opts (time, test root).
func NewVerifier(p Policy, opts Options) (*Verifier, error) {
	if p == nil {
		return nil, fmt.Errorf("sgx: %w", attest.ErrNoPolicy)
	}
	return &Verifier{policy: p, opts: opts}, nil
}

// Type returns attest.TypeSGXDCAP.
func (v *Verifier) Type() string { return attest.TypeSGXDCAP }

// isStale reports whether a verification error is about collateral
// freshness.
func isStale(err error) bool {
	var se *Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Item {
	case ItemTCBInfo, ItemQEIdentity, ItemRootCACRL, ItemPCKCRL:
		return errors.Is(se.Err, ErrExpired) || errors.Is(se.Err, ErrNotYetValid) || errors.Is(se.Err, ErrTooOld)
	}
	return false
}

// Verify verifies the quote and its collateral (chain to the pinned Intel
// root, CRLs, TCB info, QE identity), then the policy. It does not check
// the report data binding (attest.Registry does).
func (v *Verifier) Verify(_ context.Context, ev *attest.Evidence) (*attest.Claims, error) {
	const typ = attest.TypeSGXDCAP
	if ev == nil || ev.Type != typ {
		return nil, attest.BadEvidence(typ, "evidence of another type", nil)
	}
	if len(ev.Raw) == 0 {
		return nil, attest.BadEvidence(typ, "no quote", nil)
	}
	if len(ev.Collateral) == 0 {
		return nil, attest.BadEvidence(typ, "no collateral came with the quote", nil)
	}
	col, err := DecodeCollateral(ev.Collateral)
	if err != nil {
		return nil, attest.BadEvidence(typ, "the collateral does not decode", err)
	}
	so := v.opts
	v.policy.ApplyTo(&so)
	res, err := Verify(ev.Raw, col, so)
	if err != nil {
		if isStale(err) {
			return nil, attest.Stale(typ, attest.ErrBadEvidence, "", err)
		}
		return nil, attest.BadEvidence(typ, "", err)
	}
	if err := v.policy.Check(res); err != nil {
		var st interface{ StaleCollateral() bool }
		if errors.As(err, &st) && st.StaleCollateral() {
			return nil, attest.Stale(typ, attest.ErrPolicyMismatch, "", err)
		}
		return nil, attest.PolicyMismatch(typ, "", err)
	}
	return Claims(res, v.opts.TestRoot != nil), nil
}

// Claims returns the claims of a verified quote.
func Claims(res *Result, testRoot bool) *attest.Claims {
	rb := res.ReportBody
	return &attest.Claims{
		Type:       attest.TypeSGXDCAP,
		ReportData: rb.ReportData,
		TestRoot:   testRoot,
		Details:    res,
		List: []attest.Claim{
			{Name: "mr_enclave", Value: hex.EncodeToString(rb.MRENCLAVE[:])},
			{Name: "mr_signer", Value: hex.EncodeToString(rb.MRSIGNER[:])},
			{Name: "isv_prod_id", Value: fmt.Sprint(rb.ISVProdID)},
			{Name: "isv_svn", Value: fmt.Sprint(rb.ISVSVN)},
			{Name: "tcb_status", Value: string(res.Status)},
			{Name: "advisory_ids", Value: fmt.Sprint(res.AdvisoryIDs)},
			{Name: "fmspc", Value: hex.EncodeToString(res.FMSPC[:])},
		},
	}
}

// ResultOf returns the SGX result of verified claims, or nil when they are
// not SGX claims.
func ResultOf(c *attest.Claims) *Result {
	if c == nil {
		return nil
	}
	r, _ := c.Details.(*Result)
	return r
}

// CollateralToProto converts collateral to the wire message SgxCollateral.
func CollateralToProto(c *Collateral) *untrusted.SgxCollateral {
	if c == nil {
		return nil
	}
	return &untrusted.SgxCollateral{
		Version:               c.Version,
		PckCrlIssuerChain:     c.PCKCRLIssuerChain,
		RootCaCrl:             c.RootCACRL,
		PckCrl:                c.PCKCRL,
		TcbInfoIssuerChain:    c.TCBInfoIssuerChain,
		TcbInfo:               c.TCBInfo,
		QeIdentityIssuerChain: c.QEIdentityIssuerChain,
		QeIdentity:            c.QEIdentity,
		PckCertificate:        c.PCKCertificate,
		PckSigningChain:       c.PCKSigningChain,
	}
}

// CollateralFromProto converts the wire message SgxCollateral to
// collateral (nil for nil).
func CollateralFromProto(c *untrusted.SgxCollateral) *Collateral {
	if c == nil {
		return nil
	}
	return &Collateral{
		Version:               c.GetVersion(),
		PCKCRLIssuerChain:     c.GetPckCrlIssuerChain(),
		RootCACRL:             c.GetRootCaCrl(),
		PCKCRL:                c.GetPckCrl(),
		TCBInfoIssuerChain:    c.GetTcbInfoIssuerChain(),
		TCBInfo:               c.GetTcbInfo(),
		QEIdentityIssuerChain: c.GetQeIdentityIssuerChain(),
		QEIdentity:            c.GetQeIdentity(),
		PCKCertificate:        c.GetPckCertificate(),
		PCKSigningChain:       c.GetPckSigningChain(),
	}
}

// EncodeCollateral encodes collateral as attest.Evidence.Collateral holds it
// for SGX: the SgxCollateral wire message.
func EncodeCollateral(c *Collateral) ([]byte, error) {
	if c == nil {
		return nil, errors.New("sgx: no collateral to encode")
	}
	return proto.Marshal(CollateralToProto(c))
}

// DecodeCollateral decodes what EncodeCollateral encodes.
func DecodeCollateral(b []byte) (*Collateral, error) {
	var m untrusted.SgxCollateral
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("sgx: collateral: %w", err)
	}
	return CollateralFromProto(&m), nil
}

// Evidence returns the platform-neutral form of a quote and its
// collateral.
func Evidence(quote []byte, c *Collateral) (*attest.Evidence, error) {
	b, err := EncodeCollateral(c)
	if err != nil {
		return nil, err
	}
	return &attest.Evidence{Type: attest.TypeSGXDCAP, Raw: quote, Collateral: b}, nil
}
