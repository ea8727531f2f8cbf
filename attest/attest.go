// Package attest is the platform-neutral face of TEE attestation in
// Blindfold. It knows no platform: each one (attest/sgx, attest/tdx,
// attest/snp, and attest/sim for simulation) is a package of its own that
// implements the two interfaces defined here.
//
//   - An Issuer runs on the server, inside the TEE: it produces Evidence
//     bound to the report data it is given.
//   - A Verifier runs on the client (or an offline proof checker): it checks
//     Evidence of its platform against the policy it was built with and
//     returns the Claims the evidence makes, or a typed error.
//
// A Registry holds the verifiers a client accepts (one per platform its
// policy names) and picks the one for the evidence's type; it then checks
// the report data binding and returns the attested certificate and its
// signing key (Verified).
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
)

// Evidence types (platform tags), as GetServerInfo's evidence_type and
// GetEvidence's evidence_type carry them.
const (
	// TypeSGXDCAP is an Intel SGX DCAP quote (version 3) with its PCS
	// collateral.
	TypeSGXDCAP = "sgx-dcap"
	// TypeTDX is an Intel TDX quote (version 4 or 5), with or without its
	// PCS collateral.
	TypeTDX = "tdx"
	// TypeSNP is an AMD SEV-SNP attestation report, with or without its
	// VCEK/VLEK certificate chain.
	TypeSNP = "sev-snp"
	// TypeSimulation is the evidence of a server that runs without any TEE.
	// It proves nothing; only a verifier built to accept simulation (see
	// attest/sim) accepts it.
	TypeSimulation = "simulation"
)

// MaxNonceBytes is the largest client nonce accepted.
const MaxNonceBytes = 64

// Evidence is what an Issuer produces: the platform's raw evidence over the
// report data it was given, and the collateral that verifies it.
type Evidence struct {
	// Type is the platform tag (TypeSGXDCAP, TypeTDX, TypeSNP,
	// TypeSimulation).
	Type string
	// Raw is the platform's evidence: an SGX or TDX quote, an SNP
	// attestation report, or attest/sim's simulation statement.
	Raw []byte
	// Collateral is what verifies Raw, in the platform package's encoding
	// (SGX: the SgxCollateral message; TDX: a collateral bundle; SNP: the
	// certificate table of the auxblob). It may be empty where the verifier
	// can fetch it.
	Collateral []byte
}

// Issuer produces evidence inside a TEE. Implementations must be safe for
// concurrent use.
type Issuer interface {
	// Type returns the platform tag of the evidence produced.
	Type() string
	// Evidence returns fresh evidence over reportData. An error means no
	// evidence can be had now (device, quote or collateral); its message
	// says why and holds no secret.
	Evidence(ctx context.Context, reportData [64]byte) (*Evidence, error)
}

// Attester is the former name of Issuer.
type Attester = Issuer

// Verifier checks evidence of one platform. It holds the policy for that
// platform (given when it is built) and its trust anchors. Implementations
// must be safe for concurrent use.
type Verifier interface {
	// Type returns the platform tag of the evidence it verifies.
	Type() string
	// Verify checks ev (whose Type is Type()): signatures, certificate
	// chains to the pinned roots, collateral and its dates, and the policy.
	// It does not check the report data binding (the Registry does, for
	// every platform alike). Errors wrap ErrBadEvidence, ErrStaleCollateral
	// or ErrPolicyMismatch.
	Verify(ctx context.Context, ev *Evidence) (*Claims, error)
}

// Claim is one named value that verified evidence attests, for display:
// a measurement, a TCB level, a policy-relevant attribute.
type Claim struct {
	// Name is the claim's name, e.g. "mr_enclave" or "mrtd".
	Name string
	// Value is its value as text (hex for hashes).
	Value string
}

// Claims is what verified evidence says.
type Claims struct {
	// Type is the platform tag of the evidence.
	Type string
	// ReportData is the 64 bytes of report data the evidence carries.
	ReportData [64]byte
	// List holds the claims worth showing a user, in a stable order.
	List []Claim
	// TestRoot is true when the evidence was verified against a test root
	// rather than the vendor's pinned root: it proves nothing about
	// hardware.
	TestRoot bool
	// Simulation is true for simulation evidence: it proves nothing.
	Simulation bool
	// Details is the platform package's own result (*sgx.Result,
	// *tdx.Result, *snp.Result, *sim.Result).
	Details any
}

// Get returns the value of the named claim and whether there is one.
func (c *Claims) Get(name string) (string, bool) {
	for _, cl := range c.List {
		if cl.Name == name {
			return cl.Value, true
		}
	}
	return "", false
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
