package sgx

import (
	"errors"
	"fmt"
)

// Item names the part of the evidence that a check failed on.
type Item string

// Items of the evidence.
const (
	ItemQuote                 Item = "quote"
	ItemQuoteSignature        Item = "quote signature"
	ItemQEReport              Item = "QE report"
	ItemQEReportSignature     Item = "QE report signature"
	ItemCertificationData     Item = "certification data"
	ItemPCKCertificate        Item = "PCK certificate"
	ItemPCKCACertificate      Item = "PCK CA certificate"
	ItemRootCertificate       Item = "root CA certificate"
	ItemRootCACRL             Item = "root CA CRL"
	ItemPCKCRL                Item = "PCK CRL"
	ItemPCKCRLIssuerChain     Item = "PCK CRL issuer chain"
	ItemTCBInfo               Item = "TCB info"
	ItemTCBInfoIssuerChain    Item = "TCB info issuer chain"
	ItemQEIdentity            Item = "QE identity"
	ItemQEIdentityIssuerChain Item = "QE identity issuer chain"
	ItemOptions               Item = "verification options"
	// The collateral's copies of the quote's PCK chain (pck_certificate and
	// pck_signing_chain), which must match the quote when present.
	ItemCollateralPCKCertificate  Item = "collateral PCK certificate"
	ItemCollateralPCKSigningChain Item = "collateral PCK signing chain"
)

// Sentinel errors. Every error that Verify returns is an *Error that wraps
// exactly one of them; test with errors.Is, and read Error.Item to learn
// which part of the evidence failed.
var (
	// ErrMalformed: an item cannot be decoded or lacks a required field.
	ErrMalformed = errors.New("malformed")
	// ErrMissing: a required item is absent.
	ErrMissing = errors.New("missing")
	// ErrUnsupported: an item has a type or version this verifier refuses.
	ErrUnsupported = errors.New("unsupported")
	// ErrSignature: a signature does not verify.
	ErrSignature = errors.New("signature does not verify")
	// ErrUntrustedRoot: a chain does not end at the pinned root certificate.
	ErrUntrustedRoot = errors.New("chain does not end at the pinned root")
	// ErrExpired: the verification time is at or after the end of the
	// item's validity (notAfter, nextUpdate).
	ErrExpired = errors.New("expired")
	// ErrNotYetValid: the verification time is before the start of the
	// item's validity (notBefore, thisUpdate, issueDate).
	ErrNotYetValid = errors.New("not yet valid")
	// ErrRevoked: a certificate is listed in its issuer's CRL.
	ErrRevoked = errors.New("certificate revoked")
	// ErrMismatch: an item does not match the value it is bound to.
	ErrMismatch = errors.New("mismatch")
	// ErrTCBLevelNotFound: no TCB level of the TCB info applies to the
	// platform (Intel: TCB not supported).
	ErrTCBLevelNotFound = errors.New("no TCB level matches the platform")
	// ErrTooOld: collateral is older than the caller allows (TCB
	// evaluation data number or collateral age).
	ErrTooOld = errors.New("collateral too old")
)

// Error says which check failed on which item of the evidence.
type Error struct {
	// Item is the part of the evidence that failed.
	Item Item
	// Err is one of the sentinel errors of this package.
	Err error
	// Detail says what was found and what was expected.
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("sgx: %s: %v", e.Item, e.Err)
	}
	return fmt.Sprintf("sgx: %s: %v: %s", e.Item, e.Err, e.Detail)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func newErr(item Item, err error, format string, args ...any) *Error {
	return &Error{Item: item, Err: err, Detail: fmt.Sprintf(format, args...)}
}
