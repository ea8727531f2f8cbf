// Package attest is the platform-neutral face of TEE attestation in
// Blindfold: the Attester a server asks for evidence, the report data that
// binds evidence to the attested TLS certificate (and, optionally, to a
// client's nonce), and the client-side verification of SGX DCAP evidence
// against a policy.
//
// # Report data
//
// Evidence carries 64 bytes of report data chosen inside the TEE:
//
//	bytes  0..31  SHA-256 of the DER of the attested port's certificate
//	bytes 32..63  SHA-256 of the client's nonce, or 32 zero bytes
//
// Bytes 0..31 are what BlindAI 0.5 clients check; bytes 32..63 are zero for
// BlindAI's GetSgxQuoteWithCollateral and carry the nonce for Blindfold's
// blindfold.v1.Evidence/GetEvidence.
package attest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// TypeSGXDCAP is the evidence type of SGX DCAP quotes (GetServerInfo's
// evidence_type).
const TypeSGXDCAP = "sgx-dcap"

// MaxNonceBytes is the largest client nonce accepted.
const MaxNonceBytes = 64

// Evidence is what an Attester produces: a hardware quote over the report
// data it was given, and the collateral that verifies it.
type Evidence struct {
	// Type is the kind of evidence (TypeSGXDCAP).
	Type string
	// Quote is the quote; its report data is the value requested.
	Quote []byte
	// Collateral verifies Quote (SGX DCAP).
	Collateral *sgx.Collateral
}

// Attester produces hardware evidence. Implementations must be safe for
// concurrent use.
type Attester interface {
	// Type returns the kind of evidence produced (TypeSGXDCAP).
	Type() string
	// Evidence returns fresh evidence over reportData. An error means no
	// evidence can be had now (device, quote or collateral); its message
	// says why and holds no secret.
	Evidence(ctx context.Context, reportData [64]byte) (*Evidence, error)
}

// ReportData returns the report data that binds evidence to the attested
// certificate certDER and to nonce (nil or empty: 32 zero bytes).
func ReportData(certDER, nonce []byte) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(certDER)
	copy(rd[:32], h[:])
	if len(nonce) > 0 {
		n := sha256.Sum256(nonce)
		copy(rd[32:], n[:])
	}
	return rd
}

// CheckNonce checks a client nonce: 1 to MaxNonceBytes bytes.
func CheckNonce(nonce []byte) error {
	if len(nonce) == 0 || len(nonce) > MaxNonceBytes {
		return fmt.Errorf("attest: a nonce must be 1 to %d bytes, got %d", MaxNonceBytes, len(nonce))
	}
	return nil
}

// ErrReportData means the report data of verified evidence does not bind
// the certificate (or nonce) it comes with.
var ErrReportData = errors.New("report data does not bind the attested certificate")

// NonceCheck says what CheckReportData demands of bytes 32..63.
type NonceCheck int

// Ways to check bytes 32..63 of the report data.
const (
	// NonceZero requires 32 zero bytes (evidence made without a nonce).
	NonceZero NonceCheck = iota
	// NonceEqual requires SHA-256 of the given nonce.
	NonceEqual
	// NonceIgnore does not look at them (an offline verifier that does not
	// know the nonce a client used).
	NonceIgnore
)

// CheckReportData checks that rd binds certDER (bytes 0..31) and, as mode
// says, the nonce (bytes 32..63). Errors wrap ErrReportData.
func CheckReportData(rd [64]byte, certDER []byte, mode NonceCheck, nonce []byte) error {
	want := ReportData(certDER, nonce)
	if subtle.ConstantTimeCompare(rd[:32], want[:32]) != 1 {
		return fmt.Errorf("%w: bytes 0..31 are %x, SHA-256 of the certificate (enclave_held_data) is %x", ErrReportData, rd[:32], want[:32])
	}
	switch mode {
	case NonceZero:
		if [32]byte(rd[32:]) != ([32]byte{}) {
			return fmt.Errorf("%w: bytes 32..63 are %x, want zeros (no nonce was sent)", ErrReportData, rd[32:])
		}
	case NonceEqual:
		if len(nonce) == 0 {
			return fmt.Errorf("%w: no nonce given to compare bytes 32..63 with", ErrReportData)
		}
		if subtle.ConstantTimeCompare(rd[32:], want[32:]) != 1 {
			return fmt.Errorf("%w: bytes 32..63 are %x, SHA-256 of the nonce sent is %x (stale or replayed evidence)", ErrReportData, rd[32:], want[32:])
		}
	case NonceIgnore:
	default:
		return fmt.Errorf("%w: unknown nonce check %d", ErrReportData, mode)
	}
	return nil
}

// CollateralToProto converts collateral to the wire message SgxCollateral.
func CollateralToProto(c *sgx.Collateral) *untrusted.SgxCollateral {
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
func CollateralFromProto(c *untrusted.SgxCollateral) *sgx.Collateral {
	if c == nil {
		return nil
	}
	return &sgx.Collateral{
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
