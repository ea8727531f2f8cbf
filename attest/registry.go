package attest

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/blindfold-ai/blindfold/identity"
)

// Kinds of verification failure. Use errors.Is; every error of a Verifier
// or of Registry.Verify is a *Error that matches one or two of them, and
// the platform's own error stays reachable with errors.As.
var (
	// ErrBadEvidence means the evidence does not verify: malformed or badly
	// signed, a chain that does not end at the pinned root, a revoked or
	// expired certificate, report data that does not bind the attested
	// certificate or nonce, or an attested certificate without a signing
	// key.
	ErrBadEvidence = errors.New("attestation evidence does not verify")
	// ErrStaleCollateral means the collateral (TCB info, QE identity, a
	// CRL) is past its next update, not yet valid, or older than the policy
	// allows. It comes with ErrBadEvidence (the collateral's own dates) or
	// ErrPolicyMismatch (the policy's age limit).
	ErrStaleCollateral = errors.New("attestation collateral is stale")
	// ErrPolicyMismatch means the evidence verifies but the TEE, its TCB or
	// its collateral does not satisfy the policy.
	ErrPolicyMismatch = errors.New("TEE does not satisfy the policy")
	// ErrNotAccepted means the evidence is of a platform that the policy
	// does not accept (no section for it), or of an unknown type. It comes
	// with ErrPolicyMismatch.
	ErrNotAccepted = errors.New("evidence of a platform the policy does not accept")
	// ErrNoPolicy means hardware evidence was to be verified without a
	// policy to hold it to.
	ErrNoPolicy = errors.New("no policy given to verify hardware evidence against")
)

// Error is a verification failure: Kind (and Also, when set) say what kind
// it is, Msg says it for a user, and Err is the cause from the platform
// package (it may repeat Msg in more detail, and is kept apart from it).
type Error struct {
	// Type is the platform tag of the evidence.
	Type string
	// Kind is ErrBadEvidence, ErrStaleCollateral, ErrPolicyMismatch or
	// ErrNotAccepted.
	Kind error
	// Also is a second kind the error matches (ErrBadEvidence or
	// ErrPolicyMismatch with ErrStaleCollateral; ErrPolicyMismatch with
	// ErrNotAccepted), or nil.
	Also error
	// Msg is the user's message.
	Msg string
	// Err is the cause, or nil.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s evidence: %v", e.Type, e.Kind)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is Kind or Also.
func (e *Error) Is(target error) bool {
	return target != nil && (target == e.Kind || target == e.Also)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// BadEvidence returns an *Error of kind ErrBadEvidence.
func BadEvidence(typ, msg string, cause error) *Error {
	return &Error{Type: typ, Kind: ErrBadEvidence, Msg: msg, Err: cause}
}

// PolicyMismatch returns an *Error of kind ErrPolicyMismatch.
func PolicyMismatch(typ, msg string, cause error) *Error {
	return &Error{Type: typ, Kind: ErrPolicyMismatch, Msg: msg, Err: cause}
}

// Stale returns an *Error of kind ErrStaleCollateral that also matches
// also (ErrBadEvidence or ErrPolicyMismatch).
func Stale(typ string, also error, msg string, cause error) *Error {
	return &Error{Type: typ, Kind: ErrStaleCollateral, Also: also, Msg: msg, Err: cause}
}

// Verified is verified evidence tied to the attested certificate: what a
// client trusts when it connects, and what a proof's signature is checked
// with.
type Verified struct {
	// Claims is what the evidence says.
	Claims *Claims
	// CertificateDER is the attested certificate whose SHA-256 is in bytes
	// 0..31 of the report data.
	CertificateDER []byte
	// Certificate is CertificateDER parsed.
	Certificate *x509.Certificate
	// SigningKey is the Ed25519 reply-signing key of the certificate.
	SigningKey ed25519.PublicKey
	// Evidence is the evidence that was verified.
	Evidence *Evidence
}

// Registry picks the verifier for evidence by its type. It holds one
// verifier per platform that the policy accepts; evidence of any other
// type is refused (ErrNotAccepted). A Registry is safe for concurrent use.
type Registry struct {
	m map[string]Verifier
}

// NewRegistry returns a registry of the given verifiers. It refuses none
// (ErrNoPolicy: nothing would be accepted), nil ones, and two for the same
// type.
func NewRegistry(vs ...Verifier) (*Registry, error) {
	if len(vs) == 0 {
		return nil, fmt.Errorf("attest: %w: no platform is accepted", ErrNoPolicy)
	}
	r := &Registry{m: make(map[string]Verifier, len(vs))}
	for _, v := range vs {
		if v == nil {
			return nil, errors.New("attest: a nil verifier was given")
		}
		if _, dup := r.m[v.Type()]; dup {
			return nil, fmt.Errorf("attest: two verifiers for evidence type %q", v.Type())
		}
		r.m[v.Type()] = v
	}
	return r, nil
}

// Types returns the evidence types accepted, sorted.
func (r *Registry) Types() []string {
	ts := make([]string, 0, len(r.m))
	for t := range r.m {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// Accepts reports whether evidence of type typ has a verifier.
func (r *Registry) Accepts(typ string) bool {
	_, ok := r.m[typ]
	return ok
}

// Verify verifies ev with the verifier of its type, then checks that its
// report data binds certDER and (as check says) nonce, and that certDER
// holds a reply-signing key. It fails closed: every error is an *Error.
func (r *Registry) Verify(ctx context.Context, ev *Evidence, certDER []byte, check NonceCheck, nonce []byte) (*Verified, error) {
	claims, err := r.claims(ctx, ev)
	if err != nil {
		return nil, err
	}
	if len(certDER) == 0 {
		return nil, BadEvidence(ev.Type, "no attested certificate came with the evidence", nil)
	}
	if err := CheckReportData(claims.ReportData, certDER, check, nonce); err != nil {
		return nil, BadEvidence(ev.Type, "", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, BadEvidence(ev.Type, "the attested certificate does not parse", err)
	}
	key, err := identity.SigningKeyFromCertificate(cert)
	if err != nil {
		return nil, BadEvidence(ev.Type, "", err)
	}
	return &Verified{
		Claims:         claims,
		CertificateDER: append([]byte(nil), certDER...),
		Certificate:    cert,
		SigningKey:     key,
		Evidence:       ev,
	}, nil
}

// VerifyReportData verifies ev with the verifier of its type and checks
// that its report data is exactly reportData: for evidence that binds
// something other than an attested certificate, such as the connection
// of a cluster join. It fails closed: every error is an *Error.
func (r *Registry) VerifyReportData(ctx context.Context, ev *Evidence, reportData [64]byte) (*Claims, error) {
	claims, err := r.claims(ctx, ev)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(claims.ReportData[:], reportData[:]) != 1 {
		return nil, BadEvidence(ev.Type, "the report data is not the expected value", nil)
	}
	return claims, nil
}

// claims verifies ev with the verifier of its type. It fails closed:
// every error is an *Error.
func (r *Registry) claims(ctx context.Context, ev *Evidence) (*Claims, error) {
	if ev == nil {
		return nil, BadEvidence("", "no evidence", nil)
	}
	v, ok := r.m[ev.Type]
	if !ok {
		return nil, &Error{Type: ev.Type, Kind: ErrNotAccepted, Also: ErrPolicyMismatch,
			Msg: fmt.Sprintf("the policy accepts %v", r.Types())}
	}
	if len(ev.Raw) == 0 {
		return nil, BadEvidence(ev.Type, "the evidence is empty", nil)
	}
	claims, err := v.Verify(ctx, ev)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, err
		}
		// A verifier that returns an untyped error still fails closed.
		return nil, BadEvidence(ev.Type, "", err)
	}
	if claims == nil || claims.Type != ev.Type {
		return nil, BadEvidence(ev.Type, "the verifier returned no claims for this evidence", nil)
	}
	return claims, nil
}
