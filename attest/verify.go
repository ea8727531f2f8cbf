package attest

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
)

// Errors of VerifySGX. Use errors.Is; the cause stays reachable with
// errors.As (*sgx.Error, *policy.MismatchError).
var (
	// ErrBadEvidence means the evidence does not verify: a malformed or
	// badly signed quote, a chain that does not end at the pinned root, a
	// revoked or expired certificate, report data that does not bind the
	// attested certificate or nonce, or an attested certificate without a
	// signing key.
	ErrBadEvidence = errors.New("attestation evidence does not verify")
	// ErrStaleCollateral means the collateral (TCB info, QE identity or a
	// CRL) is past its nextUpdate, not yet valid, or older than the policy
	// allows. Errors that match it also match ErrBadEvidence.
	ErrStaleCollateral = errors.New("attestation collateral is stale")
	// ErrPolicyMismatch means the evidence verifies but the enclave, its
	// TCB status or its collateral does not satisfy the policy.
	ErrPolicyMismatch = errors.New("enclave does not satisfy the policy")
	// ErrNoPolicy means hardware evidence was to be verified without a
	// policy to hold it to.
	ErrNoPolicy = errors.New("no policy given to verify hardware evidence against")
)

// VerifyOptions say what VerifySGX holds evidence to.
type VerifyOptions struct {
	// Policy is what the enclave must satisfy. Required.
	Policy *policy.Policy
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
	// TestRoot replaces the pinned Intel SGX Root CA. FOR TESTS ONLY:
	// evidence that chains to a test root proves nothing about hardware.
	TestRoot *x509.Certificate
	// Nonce and NonceCheck say what bytes 32..63 of the report data must
	// hold (see CheckReportData).
	Nonce      []byte
	NonceCheck NonceCheck
}

// Verified is what verified SGX evidence says.
type Verified struct {
	// SGX is the verifier's result: report body, TCB status, advisories,
	// collateral dates.
	SGX *sgx.Result
	// CertificateDER is the attested certificate (enclave_held_data).
	CertificateDER []byte
	// Certificate is CertificateDER parsed.
	Certificate *x509.Certificate
	// SigningKey is the Ed25519 reply-signing key of the certificate.
	SigningKey ed25519.PublicKey
	// Evidence is the evidence that was verified.
	Evidence *untrusted.GetSgxQuoteWithCollateralReply
}

// isStale reports whether an sgx error is about collateral freshness.
func isStale(err error) bool {
	var se *sgx.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Item {
	case sgx.ItemTCBInfo, sgx.ItemQEIdentity, sgx.ItemRootCACRL, sgx.ItemPCKCRL:
		return errors.Is(se.Err, sgx.ErrExpired) || errors.Is(se.Err, sgx.ErrNotYetValid) || errors.Is(se.Err, sgx.ErrTooOld)
	}
	return false
}

// VerifySGX verifies SGX DCAP evidence in BlindAI's shape (quote,
// collateral, enclave_held_data = DER of the attested certificate): the
// quote and collateral with package sgx (chain to the pinned Intel root, or
// TestRoot), the report data binding of the certificate and the nonce, the
// policy (measurement, attributes, TCB status, advisories, collateral age),
// and the certificate's signing key. It fails closed; every error wraps
// ErrBadEvidence, ErrStaleCollateral (which also matches ErrBadEvidence),
// ErrPolicyMismatch or ErrNoPolicy.
func VerifySGX(ev *untrusted.GetSgxQuoteWithCollateralReply, opts VerifyOptions) (*Verified, error) {
	if opts.Policy == nil {
		return nil, ErrNoPolicy
	}
	if ev == nil || len(ev.GetQuote()) == 0 {
		return nil, fmt.Errorf("%w: no quote", ErrBadEvidence)
	}
	if ev.GetCollateral() == nil {
		return nil, fmt.Errorf("%w: no collateral came with the quote", ErrBadEvidence)
	}
	if len(ev.GetEnclaveHeldData()) == 0 {
		return nil, fmt.Errorf("%w: no attested certificate (enclave_held_data) came with the quote", ErrBadEvidence)
	}
	so := sgx.Options{Now: opts.Now, TestRoot: opts.TestRoot}
	opts.Policy.ApplyTo(&so)
	res, err := sgx.Verify(ev.GetQuote(), CollateralFromProto(ev.GetCollateral()), so)
	if err != nil {
		if isStale(err) {
			return nil, fmt.Errorf("%w (%w): %w", ErrStaleCollateral, ErrBadEvidence, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadEvidence, err)
	}
	certDER := ev.GetEnclaveHeldData()
	if err := CheckReportData(res.ReportBody.ReportData, certDER, opts.NonceCheck, opts.Nonce); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEvidence, err)
	}
	if err := opts.Policy.Check(res); err != nil {
		if errors.Is(err, policy.ErrStaleCollateral) {
			return nil, fmt.Errorf("%w (%w): %w", ErrStaleCollateral, ErrPolicyMismatch, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrPolicyMismatch, err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("%w: the attested certificate (enclave_held_data) does not parse: %v", ErrBadEvidence, err)
	}
	key, err := identity.SigningKeyFromCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvidence, err)
	}
	return &Verified{
		SGX:            res,
		CertificateDER: append([]byte(nil), certDER...),
		Certificate:    cert,
		SigningKey:     key,
		Evidence:       ev,
	}, nil
}
