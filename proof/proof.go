// Package proof computes the hashes that Blindfold signs, checks signed
// replies, and reads, writes and verifies proof files.
//
// # Signed replies
//
// When a client asks for a signature, the server signs the exact bytes of a
// serialized securedexchange.Payload with an Ed25519 key made inside the
// TEE. The public key is the raw value of extension 1.3.6.1.3.2 of the
// attested port's certificate, and the TEE's evidence binds that
// certificate (its SHA-256 is in the report data). A send payload carries
// ModelHash (SHA-256 of the model bytes) and the model id; a run payload
// carries InputHash (SHA-256 over the concatenated bytes_data of every input
// TensorData, in the order sent), the model id and the outputs.
//
// # Receipts
//
// Blindfold servers add a Receipt to every signed payload (a field that
// BlindAI 0.5 clients skip). A run's receipt binds the model's SHA-256 (of
// the model bytes as uploaded), the output hash (OutputHash: SHA-256 over
// each output's name, element type, shape and bytes, in order; see its
// documentation for the exact bytes), the nonce the client sent with the
// request (gRPC metadata blindfold-nonce, hex), and the replica that
// served it; an upload's binds the nonce and the replica. Verify checks a
// receipt against the rest of its payload (the output hash must be that
// of the payload's outputs), compares the values VerifyOptions names
// (ModelHash, InputHash, OutputHash, RequestNonce, ModelID), and, for a
// hardware proof, always compares the receipt's replica id with the one
// derived from the proof's own evidence (attest/verifier.ReplicaID: SHA-256
// of the SGX or TDX PCK leaf certificate, or the SEV-SNP CHIP_ID), so that
// the receipt of one replica does not pass with the evidence of another.
// Replicas on one machine share that id; a simulation server's is random
// and proves nothing. Result.Bindings says what was checked. A proof
// without a receipt still verifies, but asking to check a value only a
// receipt carries fails with a *MismatchError naming it.
//
// # What issued_at proves
//
// The payload header's issued_at is read from the server machine's clock,
// which the host operator controls; the TEE has no trusted time. A
// verified signature proves that the TEE produced the payload, but not
// when: treat issued_at as a claim of the untrusted host, useful for
// ordering one's own records, never as evidence of time. Only a request
// nonce bounds it: a request whose receipt carries a nonce that the
// verifier chose unpredictably was served after the nonce was made. The
// collateral's dates bound nothing about the request: the evidence and its
// collateral are attached by the client, outside the signature.
//
// # Proof files
//
// A proof file is a binary protobuf proof_files.ResponseProof, the format
// of BlindAI 0.5: the attestation evidence (an untrusted
// GetSgxQuoteWithCollateralReply), the payload and the signature.
//
// BlindAI's format has no place for the attested certificate of a
// simulation-mode server, whose signing key a verifier needs. Blindfold's
// convention: a simulation proof carries an attestation with an EMPTY quote,
// no collateral, and enclave_held_data set to the DER of the attested
// certificate the client saw (see NewSimulation). A proof with no quote,
// whether its attestation is absent or holds only enclave_held_data, is a
// simulation proof. Simulation protects nothing: such a proof shows only
// that whoever held the certificate's key signed the payload, and Verify
// refuses it (ErrSimulationProof) unless VerifyOptions.AllowSimulation is
// set.
//
// A proof whose attestation carries a quote is a hardware proof (the
// format BlindAI 0.5 clients write): Verify checks, offline, the quote and
// its collateral (package attest/sgx, chain to the pinned Intel root), the
// enclave against VerifyOptions.Policy, that the report data's bytes 0..31
// are SHA-256 of enclave_held_data (the attested certificate), and the
// signature with that certificate's key. Collateral expires (its
// nextUpdate, about a month for TCB info): to check an old proof, set
// VerifyOptions.Now to a time inside its collateral's validity, such as
// when the proof was made. That shows the proof was good when made, not
// that it still is: a PCK certificate revoked, or a TCB recovery, after
// the proof was issued shows only in newer collateral. To judge a proof by
// what is known now, give VerifyOptions.Collateral (fresh collateral from
// a PCCS or Intel's PCS): the quote is then verified with it instead of
// the proof's own. Bytes 32..63 of the report data hold the nonce
// of the client that connected (or zeros); they are checked only when
// VerifyOptions.Nonce is given, since a third party does not know it.
//
// A proof from a TDX or SEV-SNP server carries its evidence (quote or
// report, and its collateral) in the ResponseProof's evidence field, which
// BlindAI 0.5 does not have, and the attested certificate in the
// attestation's enclave_held_data with an empty quote: a BlindAI 0.5 reader
// sees no hardware evidence and does not accept it as hardware evidence.
// Verify checks it with the verifier of its platform (package
// attest/verifier) against the policy's section for that platform.
package proof

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/policy"
)

// MaxFileBytes bounds the size of a proof file that ReadFile accepts. A
// proof holds the outputs of one run; the protocol's replies are at most
// 8 MiB, and evidence adds a few tens of KiB.
const MaxFileBytes = 64 << 20

// ModelHash returns the SHA-256 of the model bytes, as a send payload's
// model_hash.
func ModelHash(model []byte) []byte {
	s := sha256.Sum256(model)
	return s[:]
}

// InputHasher computes a run payload's input_hash incrementally: write the
// bytes_data of every input TensorData, in the order sent, then call Sum.
// It is not safe for concurrent use.
type InputHasher struct {
	h hash.Hash
}

// NewInputHasher returns an empty InputHasher.
func NewInputHasher() *InputHasher { return &InputHasher{h: sha256.New()} }

// Write adds the bytes_data of one TensorData (or chunk). It never fails.
func (h *InputHasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the input hash of everything written so far.
func (h *InputHasher) Sum() []byte { return h.h.Sum(nil) }

// InputHash returns SHA-256 over the concatenated bytes_data of inputs, in
// order: the input_hash a server signs for a run request made of exactly
// these TensorData messages.
func InputHash(inputs []*securedexchange.TensorData) []byte {
	h := NewInputHasher()
	for _, in := range inputs {
		h.Write(in.GetBytesData())
	}
	return h.Sum()
}

// ErrBadSignature means a signature did not verify with the signing key.
var ErrBadSignature = errors.New("proof: signature does not verify with the server's signing key")

// VerifySignature checks an Ed25519 signature over payload. It returns an
// error wrapping ErrBadSignature when the signature is wrong, missing or of
// the wrong length, and a descriptive error for a malformed key.
func VerifySignature(pub ed25519.PublicKey, payload, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("proof: signing key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if len(sig) == 0 {
		return fmt.Errorf("%w: the reply is not signed (was signing requested?)", ErrBadSignature)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, payload, sig) {
		return ErrBadSignature
	}
	return nil
}

// ErrMalformedPayload means payload bytes are not a valid serialized
// Payload with a send or run body.
var ErrMalformedPayload = errors.New("proof: malformed payload")

// DecodePayload parses a serialized securedexchange.Payload. It requires a
// send or run body. The output tensors' bytes of a run payload alias b, so
// b must not change while the payload is in use.
func DecodePayload(b []byte) (*securedexchange.Payload, error) {
	p := new(securedexchange.Payload)
	// As proto.Unmarshal, but output tensors' bytes alias b.
	if err := wire.DecodePayload(b, p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	if p.GetSendModelPayload() == nil && p.GetRunModelPayload() == nil {
		return nil, fmt.Errorf("%w: neither send_model_payload nor run_model_payload is set", ErrMalformedPayload)
	}
	return p, nil
}

// New returns a proof of a signed reply with hardware evidence.
func New(attestation *untrusted.GetSgxQuoteWithCollateralReply, payload, signature []byte) *prooffiles.ResponseProof {
	return &prooffiles.ResponseProof{Attestation: attestation, Payload: payload, Signature: signature}
}

// FromEvidence returns a proof of a signed reply with the evidence ev
// verified at connection, which binds the attested certificate certDER.
// SGX evidence takes BlindAI 0.5's shape (attestation with quote and
// collateral); other platforms go in the proof's evidence field, with the
// certificate in the attestation's enclave_held_data and no quote.
func FromEvidence(ev *attest.Evidence, certDER, payload, signature []byte) *prooffiles.ResponseProof {
	if ev.Type == attest.TypeSGXDCAP {
		c, err := sgx.DecodeCollateral(ev.Collateral)
		if err == nil {
			return New(&untrusted.GetSgxQuoteWithCollateralReply{
				Quote: ev.Raw, Collateral: sgx.CollateralToProto(c), EnclaveHeldData: certDER,
			}, payload, signature)
		}
		// Collateral that does not decode cannot have verified; keep the
		// bytes as they are, so that verification fails.
	}
	return &prooffiles.ResponseProof{
		Attestation: &untrusted.GetSgxQuoteWithCollateralReply{EnclaveHeldData: certDER},
		Evidence:    &prooffiles.Evidence{Type: ev.Type, Raw: ev.Raw, Collateral: ev.Collateral},
		Payload:     payload,
		Signature:   signature,
	}
}

// NewSimulation returns a simulation-mode proof of a signed reply: no quote,
// and the attested certificate's DER in the attestation's enclave_held_data
// (Blindfold's convention; see the package documentation).
func NewSimulation(certDER, payload, signature []byte) *prooffiles.ResponseProof {
	return &prooffiles.ResponseProof{
		Attestation: &untrusted.GetSgxQuoteWithCollateralReply{EnclaveHeldData: certDER},
		Payload:     payload,
		Signature:   signature,
	}
}

// Marshal encodes a proof as binary protobuf (the proof file format).
func Marshal(p *prooffiles.ResponseProof) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("proof: encoding: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a binary protobuf proof. It checks only the encoding;
// use Verify to check the proof.
func Unmarshal(b []byte) (*prooffiles.ResponseProof, error) {
	p := new(prooffiles.ResponseProof)
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("proof: not a proof file (binary ResponseProof): %w", err)
	}
	if len(p.GetPayload()) == 0 {
		return nil, errors.New("proof: proof file has no payload")
	}
	return p, nil
}

// WriteFile writes a proof file at path, replacing it atomically (through a
// temporary file in the same directory) with mode 0644.
func WriteFile(path string, p *prooffiles.ResponseProof) error {
	b, err := Marshal(p)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".proof-*")
	if err != nil {
		return fmt.Errorf("proof: writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("proof: writing %s: %w", path, err)
	}
	return nil
}

// ReadFile reads a proof file written by WriteFile or by a BlindAI 0.5
// client.
func ReadFile(path string) (*prooffiles.ResponseProof, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("proof: reading %s: %w", path, err)
	}
	if n > MaxFileBytes {
		return nil, fmt.Errorf("proof: %s is larger than %d bytes; not a proof file", path, MaxFileBytes)
	}
	p, err := Unmarshal(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Kind is what a payload records.
type Kind int

// The payload kinds.
const (
	// KindSendModel is a model upload (send_model_payload).
	KindSendModel Kind = iota + 1
	// KindRunModel is an inference (run_model_payload).
	KindRunModel
)

func (k Kind) String() string {
	switch k {
	case KindSendModel:
		return "send_model"
	case KindRunModel:
		return "run_model"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Errors returned by Verify. Use errors.Is; a field mismatch is a
// *MismatchError.
var (
	// ErrSimulationProof means the proof comes from a simulation-mode
	// server (no quote) and the caller did not allow simulation.
	ErrSimulationProof = errors.New("proof: simulation-mode proof (no hardware evidence; it protects nothing); refused unless simulation is explicitly allowed")
	// ErrNoPolicy means the proof carries hardware evidence (a quote) and
	// no policy was given to verify it against.
	ErrNoPolicy = fmt.Errorf("proof: the proof carries hardware evidence (an SGX, TDX or SEV-SNP quote or report): %w (give the TEE's policy.toml)", attest.ErrNoPolicy)
	// ErrBadEvidence means the proof's hardware evidence does not verify
	// (see attest.ErrBadEvidence); ErrStaleCollateral, that its
	// collateral is expired at the verification time; ErrPolicyMismatch,
	// that the enclave does not satisfy the policy.
	ErrBadEvidence     = attest.ErrBadEvidence
	ErrStaleCollateral = attest.ErrStaleCollateral
	ErrPolicyMismatch  = attest.ErrPolicyMismatch
	// ErrNoCertificate means a simulation proof cannot be checked because
	// neither the proof nor the options hold the attested certificate.
	// From Go, give it in VerifyOptions.SimulationCertificate.
	ErrNoCertificate = errors.New("proof: the simulation proof holds no attested certificate (enclave_held_data), and none was given to check it with")
	// ErrCertificateMismatch means the certificate in a simulation proof
	// differs from VerifyOptions.SimulationCertificate.
	ErrCertificateMismatch = errors.New("proof: the proof's attested certificate differs from the expected one")
)

// MismatchError reports a bound value that differs from what the caller
// expected, or that the proof does not carry.
type MismatchError struct {
	// Field names the binding: one of the Bind constants ("model_id",
	// "model_hash", "input_hash", "output_hash", "nonce", "replica_id").
	Field string
	// Want is the expected value, Got the proof's (hex for hashes).
	Want, Got string
	// Detail, when set, says more: why the proof carries no value, or
	// where the expected one comes from.
	Detail string
}

func (e *MismatchError) Error() string {
	var s string
	switch {
	case e.Got == "":
		s = fmt.Sprintf("proof: %s mismatch: expected %q, the proof carries none", e.Field, e.Want)
	case e.Want == "":
		s = fmt.Sprintf("proof: %s mismatch: the proof has %q", e.Field, e.Got)
	default:
		s = fmt.Sprintf("proof: %s mismatch: expected %q, the proof has %q", e.Field, e.Want, e.Got)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// VerifyOptions say what Verify accepts and what it compares.
type VerifyOptions struct {
	// AllowSimulation accepts simulation-mode proofs. They protect nothing:
	// anyone holding the certificate's key could have made them.
	AllowSimulation bool
	// SimulationCertificate is the DER of the attested certificate that the
	// client saw, for a simulation proof. When the proof embeds one too,
	// both must be equal. Unused for hardware proofs.
	SimulationCertificate []byte
	// ModelHash, when set, must equal a send payload's model_hash, or a
	// run payload receipt's model_hash (a run proof without a receipt
	// fails).
	ModelHash []byte
	// InputHash, when set, must equal a run payload's input_hash (a send
	// payload carries none, so setting it for a send proof fails).
	InputHash []byte
	// ModelID, when set, must equal the payload's model_id.
	ModelID string
	// OutputHash, when set, must equal OutputHash of a run payload's
	// outputs (an upload proof fails).
	OutputHash []byte
	// RequestNonce, when set, must equal the nonce the client sent with
	// the request, as the payload's receipt records it (a proof without a
	// receipt fails). It is not Nonce, the nonce of the evidence.
	RequestNonce []byte
	// RequireReplica refuses a hardware proof whose receipt names another
	// replica than the one whose evidence it carries. Without it such a
	// proof (a cluster's: evidence from one replica, the request served by
	// another holding the same key) verifies, and Result.Bindings says the
	// replica was not checked.
	RequireReplica bool

	// Policy is what the TEE of a hardware proof must satisfy; required
	// for hardware proofs unless Verifiers is given. Its sections say which
	// platforms are accepted.
	Policy *policy.Policy
	// Verifiers, when set, verifies a hardware proof's evidence instead of
	// the verifiers Policy selects (verifier.ForPolicy): for verifiers
	// built with other options, such as a TDX or SEV-SNP test root.
	Verifiers *attest.Registry
	// Now returns the time at which a hardware proof's evidence is
	// verified (certificate and collateral validity); nil means now.
	Now func() time.Time
	// TestRoot replaces the pinned Intel SGX Root CA, for SGX and TDX
	// evidence. FOR TESTS ONLY: a proof whose evidence chains to a test
	// root proves nothing.
	TestRoot *x509.Certificate
	// Collateral, when set, verifies a hardware proof's quote (SGX or
	// TDX) instead of the collateral inside the proof: collateral the
	// verifier trusts to be current (fetched from a PCCS or Intel's PCS,
	// or an offline bundle's: attest/collateral's Bundle.ForQuote), so
	// that a PCK certificate revoked or a TCB level downgraded after the
	// proof was issued makes it fail. It is verified at Now like any
	// collateral.
	Collateral *sgx.Collateral
	// Nonce, when set, must be the nonce whose SHA-256 is in bytes 32..63
	// of a hardware proof's report data; when nil those bytes are not
	// checked.
	Nonce []byte
}

// Result is what a verified proof says.
type Result struct {
	// Payload is the decoded, verified payload.
	Payload *securedexchange.Payload
	// Kind is KindSendModel or KindRunModel.
	Kind Kind
	// ModelID is the payload's model_id.
	ModelID string
	// ModelHash is a send payload's model_hash (nil for a run).
	ModelHash []byte
	// InputHash is a run payload's input_hash (nil for a send).
	InputHash []byte
	// IssuedAt is the payload's timestamp (zero when absent). It comes from
	// the untrusted host's clock: see the package documentation.
	IssuedAt time.Time
	// Simulation is true for a simulation-mode proof.
	Simulation bool
	// Certificate is the DER of the attested certificate whose key signed.
	Certificate []byte
	// SigningKey is the Ed25519 key that verified the signature.
	SigningKey ed25519.PublicKey
	// Evidence is what the hardware evidence says (nil for simulation).
	// Evidence.SGX has the dates of the collateral that verified it.
	Evidence *attest.Verified
	// SuppliedCollateral is true when the evidence was verified with
	// VerifyOptions.Collateral rather than the proof's own collateral.
	SuppliedCollateral bool
	// Receipt is the payload's receipt; nil when it has none (a BlindAI
	// 0.5 or older Blindfold reply).
	Receipt *securedexchange.Receipt
	// Bindings lists, in a fixed order, each value a proof can bind and
	// whether it was checked (see Binding).
	Bindings []Binding
}

// IsSimulation reports whether p is a simulation-mode proof: it has no
// attestation, or an attestation with an empty quote, and no evidence of
// another platform.
func IsSimulation(p *prooffiles.ResponseProof) bool {
	return len(p.GetAttestation().GetQuote()) == 0 && p.GetEvidence() == nil
}

// Evidence returns a hardware proof's evidence and the attested
// certificate it binds.
func Evidence(p *prooffiles.ResponseProof) (*attest.Evidence, []byte, error) {
	certDER := p.GetAttestation().GetEnclaveHeldData()
	if e := p.GetEvidence(); e != nil {
		if len(p.GetAttestation().GetQuote()) != 0 || p.GetAttestation().GetCollateral() != nil {
			return nil, nil, attest.BadEvidence(e.GetType(), "the proof carries both an SGX quote and other evidence", nil)
		}
		if e.GetType() == attest.TypeSGXDCAP || e.GetType() == attest.TypeSimulation {
			return nil, nil, attest.BadEvidence(e.GetType(), "this evidence type does not go in the proof's evidence field", nil)
		}
		return &attest.Evidence{Type: e.GetType(), Raw: e.GetRaw(), Collateral: e.GetCollateral()}, certDER, nil
	}
	a := p.GetAttestation()
	if a.GetCollateral() == nil {
		return nil, nil, attest.BadEvidence(attest.TypeSGXDCAP, "no collateral came with the quote", nil)
	}
	ev, err := sgx.Evidence(a.GetQuote(), sgx.CollateralFromProto(a.GetCollateral()))
	if err != nil {
		return nil, nil, attest.BadEvidence(attest.TypeSGXDCAP, "", err)
	}
	return ev, certDER, nil
}

// Verify checks a proof: its evidence (hardware: quote, collateral,
// policy and report data binding; simulation: only if allowed), the
// signature over the payload with the key of the attested certificate,
// and the payload fields the options name. It returns the decoded payload
// on success.
func Verify(p *prooffiles.ResponseProof, opts VerifyOptions) (*Result, error) {
	if p == nil {
		return nil, errors.New("proof: nil proof")
	}
	if !IsSimulation(p) {
		if opts.Policy == nil && opts.Verifiers == nil {
			return nil, ErrNoPolicy
		}
		check := attest.NonceIgnore
		if len(opts.Nonce) > 0 {
			check = attest.NonceEqual
		}
		ev, certDER, err := Evidence(p)
		if err != nil {
			return nil, fmt.Errorf("proof: hardware evidence: %w", err)
		}
		if opts.Collateral != nil {
			if ev.Type != attest.TypeSGXDCAP && ev.Type != attest.TypeTDX {
				return nil, fmt.Errorf("proof: hardware evidence: %w", attest.BadEvidence(ev.Type, "Intel DCAP collateral was supplied for evidence of another platform", nil))
			}
			// SGX and TDX evidence carry their collateral alike.
			enc, err := sgx.EncodeCollateral(opts.Collateral)
			if err != nil {
				return nil, fmt.Errorf("proof: supplied collateral: %w", err)
			}
			ev = &attest.Evidence{Type: ev.Type, Raw: ev.Raw, Collateral: enc}
		}
		reg := opts.Verifiers
		if reg == nil {
			if reg, err = verifier.ForPolicy(opts.Policy, verifier.Options{Now: opts.Now, SGXTestRoot: opts.TestRoot, TDXTestRoot: opts.TestRoot}); err != nil {
				return nil, fmt.Errorf("proof: %w: %w", ErrPolicyMismatch, err)
			}
		}
		v, err := reg.Verify(context.Background(), ev, certDER, check, opts.Nonce)
		if err != nil {
			return nil, fmt.Errorf("proof: hardware evidence: %w", err)
		}
		res, err := VerifySigned(v.SigningKey, p.GetPayload(), p.GetSignature(), opts)
		if err != nil {
			return nil, err
		}
		if err := res.checkReplica(ev, opts.RequireReplica); err != nil {
			return nil, err
		}
		res.Certificate = v.CertificateDER
		res.Evidence = v
		res.SuppliedCollateral = opts.Collateral != nil
		return res, nil
	}
	if !opts.AllowSimulation {
		return nil, ErrSimulationProof
	}
	certDER := p.GetAttestation().GetEnclaveHeldData()
	switch {
	case len(certDER) == 0 && len(opts.SimulationCertificate) == 0:
		return nil, ErrNoCertificate
	case len(certDER) == 0:
		certDER = opts.SimulationCertificate
	case len(opts.SimulationCertificate) != 0 && !bytes.Equal(certDER, opts.SimulationCertificate):
		return nil, fmt.Errorf("%w: proof has %s, expected %s", ErrCertificateMismatch,
			identity.Fingerprint(certDER), identity.Fingerprint(opts.SimulationCertificate))
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("proof: parsing the attested certificate: %w", err)
	}
	pub, err := identity.SigningKeyFromCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	res, err := VerifySigned(pub, p.GetPayload(), p.GetSignature(), opts)
	if err != nil {
		return nil, err
	}
	res.Simulation = true
	if rc := res.Receipt; rc != nil {
		res.setBinding(BindReplica, false, fmt.Sprintf("simulation: replica id %x is a random value the server chose; nothing binds it", rc.GetReplicaId()))
	}
	res.Certificate = append([]byte(nil), certDER...)
	return res, nil
}

// VerifySigned checks a signed payload with a signing key the caller has
// already tied to verified evidence (a connected client's key), and the
// payload fields the options name. It does not look at evidence.
func VerifySigned(pub ed25519.PublicKey, payloadBytes, signature []byte, opts VerifyOptions) (*Result, error) {
	if err := VerifySignature(pub, payloadBytes, signature); err != nil {
		return nil, err
	}
	payload, err := DecodePayload(payloadBytes)
	if err != nil {
		return nil, err
	}
	res := &Result{Payload: payload, SigningKey: append(ed25519.PublicKey(nil), pub...)}
	if ts := payload.GetHeader().GetIssuedAt(); ts != nil {
		res.IssuedAt = ts.AsTime()
	}
	if s := payload.GetSendModelPayload(); s != nil {
		res.Kind, res.ModelID, res.ModelHash, res.Receipt = KindSendModel, s.GetModelId(), s.GetModelHash(), s.GetReceipt()
	} else {
		r := payload.GetRunModelPayload()
		res.Kind, res.ModelID, res.InputHash, res.Receipt = KindRunModel, r.GetModelId(), r.GetInputHash(), r.GetReceipt()
	}
	if err := res.checkReceipt(); err != nil {
		return nil, err
	}
	if err := res.checkBindings(opts); err != nil {
		return nil, err
	}
	return res, nil
}
