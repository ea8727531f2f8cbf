package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/policy"
)

// ProofCVM is the evidence of a confidential VM (Intel TDX quote or AMD
// SEV-SNP report, with what its verifier needs).
const ProofCVM = "cvm-evidence"

// CVMOptions configure NewCVM.
type CVMOptions struct {
	// Issuer makes this replica's evidence (TDX or SEV-SNP, through
	// configfs-tsm).
	Issuer attest.Issuer
	// PolicyFile is the cluster policy's TOML text: its [tdx] or [snp]
	// section is what a replica of this platform must satisfy.
	PolicyFile []byte
	// Verify adjusts how evidence is verified (the time; test roots FOR
	// TESTS ONLY). Simulation is never accepted.
	Verify verifier.Options
}

// CVM is the Attestor of confidential-VM replicas (Intel TDX or AMD
// SEV-SNP). A replica accepts the other side's evidence only if it is of
// the same platform, verifies (chain to the vendor's root, collateral,
// TCB), satisfies the cluster policy's section for that platform, binds the
// join connection, names the same cluster policy file, and carries this
// replica's own measurement: TDX, MRTD and RTMR 0 to 2 (firmware, and the
// boot chain the guest measured: kernel, command line, initrd; RTMR 3 is
// left to the running guest); SEV-SNP, the launch measurement.
type CVM struct {
	iss        attest.Issuer
	typ        string
	reg        *attest.Registry
	policyHash [32]byte
	self       []byte
}

// NewCVM returns the CVM Attestor. It verifies this replica's own
// evidence against the policy first (a replica that does not satisfy its
// own cluster policy could never be joined) and learns its own measurement
// from it.
func NewCVM(ctx context.Context, o CVMOptions) (*CVM, error) {
	if o.Issuer == nil {
		return nil, errors.New("cluster: no evidence provider")
	}
	typ := o.Issuer.Type()
	if typ != attest.TypeTDX && typ != attest.TypeSNP {
		return nil, fmt.Errorf("cluster: %s evidence is not a confidential VM's", typ)
	}
	pol, err := policy.Parse(o.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: policy: %w", err)
	}
	vo := o.Verify
	vo.AllowSimulation = false
	reg, err := verifier.ForPolicy(pol, vo)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !reg.Accepts(typ) {
		return nil, fmt.Errorf("cluster: the cluster policy accepts %v, not this replica's %s evidence (give it a [tdx] or [snp] section)", reg.Types(), typ)
	}
	c := &CVM{iss: o.Issuer, typ: typ, reg: reg, policyHash: sha256.Sum256(o.PolicyFile)}
	var rd [64]byte
	copy(rd[:], "blindfold cluster self-check")
	p, err := c.Prove(ctx, rd)
	if err != nil {
		return nil, err
	}
	claims, err := c.verify(ctx, p, rd)
	if err != nil {
		return nil, fmt.Errorf("cluster: this replica's own evidence does not satisfy the cluster policy: %w", err)
	}
	if c.self, err = measurement(claims); err != nil {
		return nil, err
	}
	return c, nil
}

// Prove returns fresh evidence over reportData.
func (c *CVM) Prove(ctx context.Context, rd [64]byte) (*Proof, error) {
	ev, err := c.iss.Evidence(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("cluster: evidence: %w", err)
	}
	if ev == nil || ev.Type != c.typ || len(ev.Raw) == 0 {
		return nil, errors.New("cluster: the evidence provider returned no evidence of its platform")
	}
	return &Proof{Type: ProofCVM, Evidence: ev, PolicyHash: c.policyHash[:]}, nil
}

func (c *CVM) verify(ctx context.Context, p *Proof, rd [64]byte) (*attest.Claims, error) {
	if p == nil || p.Type != ProofCVM || p.Evidence == nil {
		return nil, fmt.Errorf("%w: it sent no confidential-VM evidence", ErrRefused)
	}
	if p.Evidence.Type != c.typ {
		return nil, fmt.Errorf("%w: it runs on %s, this replica on %s: a cluster is one platform", ErrRefused, p.Evidence.Type, c.typ)
	}
	claims, err := c.reg.VerifyReportData(ctx, p.Evidence, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return claims, nil
}

// Check verifies a peer's proof (see CVM).
func (c *CVM) Check(ctx context.Context, p *Proof, rd [64]byte) error {
	claims, err := c.verify(ctx, p, rd)
	if err != nil {
		return err
	}
	if !bytes.Equal(p.PolicyHash, c.policyHash[:]) {
		return fmt.Errorf("%w: it holds the cluster to another policy file (SHA-256 %x, this replica's is %x)", ErrRefused, p.PolicyHash, c.policyHash)
	}
	m, err := measurement(claims)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if !bytes.Equal(m, c.self) {
		return fmt.Errorf("%w: its measurement %s differs from this replica's %s", ErrRefused, hex.EncodeToString(m), hex.EncodeToString(c.self))
	}
	return nil
}

// measurement returns what two replicas of one cluster must share: TDX,
// MRTD and RTMR 0..2; SEV-SNP, the launch measurement.
func measurement(c *attest.Claims) ([]byte, error) {
	switch d := c.Details.(type) {
	case *tdx.Result:
		m := append([]byte(nil), d.MRTD[:]...)
		for i := range 3 {
			m = append(m, d.RTMR[i][:]...)
		}
		return m, nil
	case *snp.Result:
		return append([]byte(nil), d.Measurement[:]...), nil
	}
	return nil, fmt.Errorf("cluster: no measurement in %s claims", c.Type)
}
