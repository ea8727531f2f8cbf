// Package sim is the evidence of a Blindfold server that runs WITHOUT a
// TEE (simulation mode). It is an evidence type of its own
// (attest.TypeSimulation) so that simulation is never confused with missing
// or broken hardware evidence: a server in simulation says so, and only a
// verifier built with NewVerifier(IUnderstandThisProtectsNothing) accepts
// it. Simulation evidence proves nothing: anyone can make it.
package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/blindfold-ai/blindfold/attest"
)

// Banner starts every piece of simulation evidence.
const Banner = "BLINDFOLD SIMULATION EVIDENCE: NO TEE, NO ATTESTATION, PROTECTS NOTHING\n"

// Issuer produces simulation evidence. It is what a simulation-mode server
// uses in place of a hardware issuer.
type Issuer struct{}

// Type returns attest.TypeSimulation.
func (Issuer) Type() string { return attest.TypeSimulation }

// Evidence returns the banner followed by reportData.
func (Issuer) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw := append([]byte(Banner), reportData[:]...)
	return &attest.Evidence{Type: attest.TypeSimulation, Raw: raw}, nil
}

// Consent is the explicit opt-in that NewVerifier requires.
type Consent bool

// IUnderstandThisProtectsNothing is the only Consent that NewVerifier
// accepts.
const IUnderstandThisProtectsNothing Consent = true

// ErrNoConsent is returned by NewVerifier without the opt-in.
var ErrNoConsent = errors.New("sim: simulation evidence is accepted only with sim.IUnderstandThisProtectsNothing")

// Result is what simulation evidence says: nothing but the report data.
type Result struct {
	// ReportData is the report data the server claims.
	ReportData [64]byte
}

// Verifier accepts simulation evidence. It checks the shape only: there is
// nothing to verify.
type Verifier struct{}

// NewVerifier returns a verifier of simulation evidence, given consent.
func NewVerifier(c Consent) (*Verifier, error) {
	if c != IUnderstandThisProtectsNothing {
		return nil, ErrNoConsent
	}
	return &Verifier{}, nil
}

// Type returns attest.TypeSimulation.
func (*Verifier) Type() string { return attest.TypeSimulation }

// Verify parses simulation evidence. The claims have Simulation set.
func (*Verifier) Verify(_ context.Context, ev *attest.Evidence) (*attest.Claims, error) {
	const typ = attest.TypeSimulation
	if ev == nil || ev.Type != typ {
		return nil, attest.BadEvidence(typ, "evidence of another type", nil)
	}
	if len(ev.Raw) != len(Banner)+64 || !bytes.HasPrefix(ev.Raw, []byte(Banner)) {
		return nil, attest.BadEvidence(typ, fmt.Sprintf("malformed simulation evidence (%d bytes)", len(ev.Raw)), nil)
	}
	if len(ev.Collateral) != 0 {
		return nil, attest.BadEvidence(typ, "simulation evidence carries collateral", nil)
	}
	res := &Result{ReportData: [64]byte(ev.Raw[len(Banner):])}
	return &attest.Claims{
		Type:       typ,
		ReportData: res.ReportData,
		Simulation: true,
		Details:    res,
		List:       []attest.Claim{{Name: "simulation", Value: "true (no TEE: this protects nothing)"}},
	}, nil
}
