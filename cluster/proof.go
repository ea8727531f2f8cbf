package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	sgxabi "github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/policy"
)

// Proof types.
const (
	// ProofSimulation is an HMAC under the cluster's join secret
	// (simulation only: it proves knowledge of a secret, not a TEE).
	ProofSimulation = "simulation-hmac"
	// ProofSGX is an SGX DCAP quote with its collateral.
	ProofSGX = "sgx-dcap"
)

// ErrRefused means the other side's proof does not satisfy the cluster
// policy (or there was none): no key is handed over or taken.
var ErrRefused = errors.New("cluster: the other replica does not satisfy the cluster policy")

// Proof is what one side of a join presents: evidence over report data
// that binds the connection (see reportData).
type Proof struct {
	// Type is ProofSimulation, ProofSGX or ProofCVM.
	Type string `json:"type"`
	// MAC is the simulation proof.
	MAC []byte `json:"mac,omitempty"`
	// Evidence is the TEE evidence (SGX: the quote and its collateral).
	Evidence *attest.Evidence `json:"evidence,omitempty"`
	// PolicyHash is SHA-256 of the cluster policy file the replica holds
	// others to (hardware proofs; the policies must be the same file).
	PolicyHash []byte `json:"policy_hash,omitempty"`
}

// Attestor proves this replica to another and checks the other's proof
// against the cluster policy. Implementations are safe for concurrent use.
type Attestor interface {
	// Prove returns a proof over reportData.
	Prove(ctx context.Context, reportData [64]byte) (*Proof, error)
	// Check returns nil only if p proves reportData and satisfies the
	// cluster policy; its errors wrap ErrRefused. What it fetches to
	// verify a peer's evidence (collateral, certificates) ends with ctx,
	// the join's deadline.
	Check(ctx context.Context, p *Proof, reportData [64]byte) error
}

// MinSecretBytes is the shortest join secret accepted.
const MinSecretBytes = 16

// Simulation is the Attestor of simulation mode: replicas that know the
// same join secret trust each other. It is NOT a TEE proof: whoever holds
// the secret (any host that can read it) can join and take every key.
type Simulation struct {
	secret []byte
}

// NewSimulation returns the simulation Attestor for a join secret of at
// least MinSecretBytes bytes (copied).
func NewSimulation(secret []byte) (*Simulation, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("cluster: the join secret holds %d bytes, need at least %d", len(secret), MinSecretBytes)
	}
	return &Simulation{secret: append([]byte(nil), secret...)}, nil
}

func (s *Simulation) mac(rd [64]byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("blindfold cluster simulation proof v1\x00"))
	m.Write(rd[:])
	return m.Sum(nil)
}

// Prove returns HMAC-SHA256 under the join secret of reportData.
func (s *Simulation) Prove(_ context.Context, rd [64]byte) (*Proof, error) {
	return &Proof{Type: ProofSimulation, MAC: s.mac(rd)}, nil
}

// Check checks the HMAC.
func (s *Simulation) Check(_ context.Context, p *Proof, rd [64]byte) error {
	if p == nil || p.Type != ProofSimulation {
		return fmt.Errorf("%w: it sent no simulation proof (a simulation replica joins only simulation replicas)", ErrRefused)
	}
	if subtle.ConstantTimeCompare(p.MAC, s.mac(rd)) != 1 {
		return fmt.Errorf("%w: its proof is not made with this cluster's join secret", ErrRefused)
	}
	return nil
}

// SGX is the Attestor of SGX replicas. A peer's quote must verify (chain to
// Intel's root, or TestRoot), bind the connection, satisfy the cluster
// policy file, come from an enclave with this replica's own MRENCLAVE and
// MRSIGNER, and name the same policy file (by hash).
type SGX struct {
	att        attest.Issuer
	verifier   *sgx.Verifier
	policyHash [32]byte
	self       [2][32]byte // own MRENCLAVE, MRSIGNER
}

// SGXOptions configure NewSGX.
type SGXOptions struct {
	// Attester makes this replica's evidence.
	Attester attest.Issuer
	// PolicyFile is the cluster policy's TOML text (policy.toml). SGX keys
	// without mr_enclave or mr_signer pin this replica's own MRENCLAVE.
	PolicyFile []byte
	// TestRoot replaces the Intel SGX Root CA. FOR TESTS ONLY.
	TestRoot *x509.Certificate
	// Now is the verification time (nil: time.Now).
	Now func() time.Time
}

// NewSGX returns the SGX Attestor. It verifies this replica's own evidence
// against the policy first (a replica that does not satisfy its own
// cluster policy could never be joined) and learns its own measurement
// from it.
func NewSGX(ctx context.Context, o SGXOptions) (*SGX, error) {
	if o.Attester == nil {
		return nil, errors.New("cluster: no evidence provider")
	}
	s := &SGX{att: o.Attester, policyHash: sha256.Sum256(o.PolicyFile)}
	var rd [64]byte
	copy(rd[:], "blindfold cluster self-check")
	p, err := s.Prove(ctx, rd)
	if err != nil {
		return nil, err
	}
	// A cluster policy measured into the enclave cannot hold the enclave's
	// own MRENCLAVE: one without a measurement pins this replica's, read
	// from its own quote (which the verification below then checks in
	// full against the rest of the policy).
	q, err := sgxabi.ParseQuote(p.Evidence.Raw)
	if err != nil {
		return nil, fmt.Errorf("cluster: this replica's own quote: %w", err)
	}
	pol, err := policy.ParseForEnclave(o.PolicyFile, q.ReportBody.MRENCLAVE)
	if err != nil {
		return nil, fmt.Errorf("cluster: policy: %w", err)
	}
	if !pol.HasSGX() {
		return nil, errors.New("cluster: the cluster policy accepts no SGX enclave")
	}
	if s.verifier, err = sgx.NewVerifier(pol, sgx.Options{Now: o.Now, TestRoot: o.TestRoot}); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	res, err := s.verify(ctx, p, rd)
	if err != nil {
		return nil, fmt.Errorf("cluster: this replica's own evidence does not satisfy the cluster policy: %w", err)
	}
	s.self = [2][32]byte{res.ReportBody.MRENCLAVE, res.ReportBody.MRSIGNER}
	return s, nil
}

// Prove returns fresh SGX evidence over reportData.
func (s *SGX) Prove(ctx context.Context, rd [64]byte) (*Proof, error) {
	ev, err := s.att.Evidence(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("cluster: evidence: %w", err)
	}
	if ev.Type != attest.TypeSGXDCAP || len(ev.Raw) == 0 || len(ev.Collateral) == 0 {
		return nil, errors.New("cluster: the evidence provider returned incomplete SGX evidence")
	}
	return &Proof{Type: ProofSGX, Evidence: ev, PolicyHash: s.policyHash[:]}, nil
}

func (s *SGX) verify(ctx context.Context, p *Proof, rd [64]byte) (*sgx.Result, error) {
	if p == nil || p.Type != ProofSGX || p.Evidence == nil || p.Evidence.Type != attest.TypeSGXDCAP {
		return nil, fmt.Errorf("%w: it sent no SGX evidence", ErrRefused)
	}
	claims, err := s.verifier.Verify(ctx, p.Evidence)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	res := sgx.ResultOf(claims)
	if res == nil || res.ReportBody == nil {
		return nil, fmt.Errorf("%w: the verifier returned no SGX result", ErrRefused)
	}
	if subtle.ConstantTimeCompare(claims.ReportData[:], rd[:]) != 1 {
		return nil, fmt.Errorf("%w: its evidence is not bound to this connection", ErrRefused)
	}
	return res, nil
}

// Check verifies a peer's SGX proof (see SGX).
func (s *SGX) Check(ctx context.Context, p *Proof, rd [64]byte) error {
	res, err := s.verify(ctx, p, rd)
	if err != nil {
		return err
	}
	if !bytes.Equal(p.PolicyHash, s.policyHash[:]) {
		return fmt.Errorf("%w: it holds the cluster to another policy file (SHA-256 %x, this replica's is %x)", ErrRefused, p.PolicyHash, s.policyHash)
	}
	if res.ReportBody.MRENCLAVE != s.self[0] {
		return fmt.Errorf("%w: MRENCLAVE %x differs from this replica's %x", ErrRefused, res.ReportBody.MRENCLAVE, s.self[0])
	}
	if res.ReportBody.MRSIGNER != s.self[1] {
		return fmt.Errorf("%w: MRSIGNER %x differs from this replica's %x", ErrRefused, res.ReportBody.MRSIGNER, s.self[1])
	}
	return nil
}
