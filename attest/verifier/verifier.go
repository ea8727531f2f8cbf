// Package verifier builds the attest.Registry a client verifies evidence
// with from a policy: one verifier per platform section the policy has
// (SGX, TDX, SEV-SNP), and the simulation verifier only when simulation is
// explicitly allowed. It is the one place that knows every platform; client
// and proof see only attest's interfaces.
package verifier

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sim"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/policy"
)

// Options say how the verifiers check evidence, beyond the policy.
type Options struct {
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
	// SGXTestRoot replaces the pinned Intel SGX Root CA for SGX evidence.
	// FOR TESTS ONLY: evidence that chains to it proves nothing.
	SGXTestRoot *x509.Certificate
	// TDXTestRoot replaces the pinned Intel SGX Root CA for TDX quotes.
	// FOR TESTS ONLY.
	TDXTestRoot *x509.Certificate
	// TDXFetcher fetches TDX collateral for quotes that come without it
	// (an attest/pccs Cache); nil: such quotes are refused.
	TDXFetcher tdx.Fetcher
	// SNP adjusts SEV-SNP verification: test roots, the KDS getter, a CRL.
	// Its Now is replaced by Now. When it has no Getter and no CRL, AMD's
	// KDS is asked (through one cache per process) for missing VCEKs and
	// the ARK's CRL.
	SNP snp.Options
	// AllowSimulation accepts simulation evidence. It protects nothing.
	AllowSimulation bool
}

// kds is the process's cache of AMD KDS answers.
var kds = &snp.KDS{}

// ForPolicy returns the registry of the verifiers that p accepts. p may be
// nil only with AllowSimulation (then only simulation is accepted).
func ForPolicy(p *policy.Policy, o Options) (*attest.Registry, error) {
	var vs []attest.Verifier
	if p != nil {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("verifier: %w", err)
		}
		if p.HasSGX() {
			v, err := sgx.NewVerifier(p, sgx.Options{Now: o.Now, TestRoot: o.SGXTestRoot})
			if err != nil {
				return nil, err
			}
			vs = append(vs, v)
		}
		if err := addCVM(&vs, p, o); err != nil {
			return nil, err
		}
	}
	if o.AllowSimulation {
		v, err := sim.NewVerifier(sim.IUnderstandThisProtectsNothing)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return attest.NewRegistry(vs...)
}

func addCVM(vs *[]attest.Verifier, p *policy.Policy, o Options) error {
	if p.TDX != nil {
		v, err := tdx.NewVerifier(p.TDX, tdx.Options{Now: o.Now, TestRoot: o.TDXTestRoot, Fetcher: o.TDXFetcher})
		if err != nil {
			return err
		}
		*vs = append(*vs, v)
	}
	if p.SNP != nil {
		so := o.SNP
		so.Now = o.Now
		if so.Getter == nil && len(so.CRL) == 0 {
			so.Getter = kds
		}
		v, err := snp.NewVerifier(p.SNP, so)
		if err != nil {
			return err
		}
		*vs = append(*vs, v)
	}
	return nil
}
