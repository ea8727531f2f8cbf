package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/evidence"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/verifier"
)

// WithVerifiers verifies the server's evidence with reg instead of the
// verifiers that WithPolicy's policy selects (verifier.ForPolicy): for
// verifiers built with other options, such as a TDX or SEV-SNP test root.
// FOR TESTS, or for callers that build their own verifiers; reg decides
// which platforms are accepted.
func WithVerifiers(reg *attest.Registry) Option { return func(c *config) { c.verifiers = reg } }

// attestError marks an error of the attestation step, with the name of the
// RPC that failed when it is one.
type attestError struct {
	step string
	err  error
}

func (e *attestError) Error() string { return e.err.Error() }
func (e *attestError) Unwrap() error { return e.err }

// attestStep returns the step an attestServer error belongs to.
func attestStep(err error) string {
	var ae *attestError
	if errors.As(err, &ae) {
		return ae.step
	}
	return "attestation"
}

// attestServer fetches the server's evidence and verifies it: with the
// registry given (WithVerifiers) or the one the policy selects. The
// evidence must bind the attested certificate and, when a nonce is used,
// the nonce. SGX servers asked without a nonce answer through BlindAI's
// GetSgxQuoteWithCollateral, unchanged; other platforms always answer
// through GetEvidence, with a fresh random nonce when none was given.
func attestServer(ctx context.Context, cfg *config, conn *grpc.ClientConn, att untrusted.AttestationClient, info ServerInfo) (*attest.Verified, evidenceVerifier, error) {
	nonce := cfg.nonce
	if len(nonce) == 0 && info.EvidenceType != "" && info.EvidenceType != attest.TypeSGXDCAP && info.EvidenceType != attest.TypeSimulation && info.EvidenceType != "none" {
		nonce = make([]byte, 32)
		if _, err := rand.Read(nonce); err != nil {
			return nil, nil, err
		}
	}
	ev, certDER, step, err := fetchEvidence(ctx, conn, att, nonce)
	switch {
	case status.Code(err) == codes.FailedPrecondition:
		return nil, nil, ErrSimulationServer
	case err != nil:
		return nil, nil, &attestError{step: step, err: err}
	case ev.Type == attest.TypeSimulation:
		return nil, nil, ErrSimulationServer
	}
	verify, err := verifierFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	check := attest.NonceZero
	if len(nonce) > 0 {
		check = attest.NonceEqual
	}
	v, err := verify(ctx, ev, certDER, check, nonce)
	if err != nil {
		return nil, nil, err
	}
	return v, verify, nil
}

// evidenceVerifier verifies evidence as a client configured so does.
type evidenceVerifier func(ctx context.Context, ev *attest.Evidence, certDER []byte, check attest.NonceCheck, nonce []byte) (*attest.Verified, error)

// verifierFor returns how cfg verifies evidence: with the collateral of
// its bundle (WithCollateralBundle) for the evidence's platform when it has
// one, then with its verifiers (registryFor).
func verifierFor(cfg *config) (evidenceVerifier, error) {
	reg, err := registryFor(cfg)
	if err != nil {
		return nil, err
	}
	bundle, opts := cfg.bundle, sgx.Options{Now: cfg.now, TestRoot: cfg.testRoot}
	return func(ctx context.Context, ev *attest.Evidence, certDER []byte, check attest.NonceCheck, nonce []byte) (*attest.Verified, error) {
		if bundle != nil {
			var err error
			if ev, err = bundle.Evidence(ev, opts); err != nil {
				return nil, err
			}
		}
		return reg.Verify(ctx, ev, certDER, check, nonce)
	}, nil
}

// registryFor returns the verifiers of cfg: the ones given
// (WithVerifiers) or the ones its policy selects.
func registryFor(cfg *config) (*attest.Registry, error) {
	if cfg.verifiers != nil {
		return cfg.verifiers, nil
	}
	if cfg.policy == nil {
		return nil, ErrNoPolicy
	}
	reg, err := verifier.ForPolicy(cfg.policy, verifier.Options{Now: cfg.now, SGXTestRoot: cfg.testRoot, TDXTestRoot: cfg.testRoot})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicyMismatch, err)
	}
	return reg, nil
}

// fetchEvidence asks the untrusted port for evidence: bound to nonce
// through GetEvidence when one is given, else through BlindAI's
// GetSgxQuoteWithCollateral. It returns the evidence, the attested
// certificate, and the step's name for errors.
func fetchEvidence(ctx context.Context, conn *grpc.ClientConn, att untrusted.AttestationClient, nonce []byte) (*attest.Evidence, []byte, string, error) {
	if len(nonce) == 0 {
		const step = "GetSgxQuoteWithCollateral"
		r, err := att.GetSgxQuoteWithCollateral(ctx, &untrusted.GetSgxQuoteWithCollateralRequest{})
		if err != nil {
			return nil, nil, step, err
		}
		ev, err := sgxEvidence(r)
		return ev, r.GetEnclaveHeldData(), step, err
	}
	const step = "GetEvidence"
	if err := attest.CheckNonce(nonce); err != nil {
		return nil, nil, step, err
	}
	reply, err := evidence.NewEvidenceClient(conn).GetEvidence(ctx, &evidence.GetEvidenceRequest{Nonce: nonce})
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil, nil, step, ErrNoNonceSupport
	case err != nil:
		return nil, nil, step, err
	}
	ev, certDER, err := EvidenceFromReply(reply)
	return ev, certDER, step, err
}

// sgxEvidence converts BlindAI's SGX evidence message.
func sgxEvidence(r *untrusted.GetSgxQuoteWithCollateralReply) (*attest.Evidence, error) {
	if r.GetCollateral() == nil {
		return nil, attest.BadEvidence(attest.TypeSGXDCAP, "no collateral came with the quote", nil)
	}
	ev, err := sgx.Evidence(r.GetQuote(), sgx.CollateralFromProto(r.GetCollateral()))
	if err != nil {
		return nil, attest.BadEvidence(attest.TypeSGXDCAP, "", err)
	}
	return ev, nil
}

// EvidenceFromReply converts a GetEvidence reply to evidence and the
// attested certificate it binds.
func EvidenceFromReply(r *evidence.GetEvidenceReply) (*attest.Evidence, []byte, error) {
	typ := r.GetEvidenceType()
	if typ == attest.TypeSGXDCAP {
		if r.GetSgx() == nil {
			return nil, nil, attest.BadEvidence(typ, "the reply has no SGX evidence", nil)
		}
		ev, err := sgxEvidence(r.GetSgx())
		return ev, r.GetSgx().GetEnclaveHeldData(), err
	}
	if r.GetSgx() != nil {
		return nil, nil, attest.BadEvidence(typ, "the reply carries SGX evidence under another type", nil)
	}
	return &attest.Evidence{Type: typ, Raw: r.GetEvidence(), Collateral: r.GetCollateral()}, r.GetCertificate(), nil
}
