// Package webverify checks a proof file against a policy file and says,
// step by step, what was checked and what was found: the report that the
// browser verifier (cmd/blindfold-verify-wasm, docs/verify/) shows.
//
// The verdict is that of proof.Verify, the function the command line uses
// ("blindfold proof verify"). The list of checks is derived by running the
// same steps with the building blocks proof.Verify is made of (proof.Evidence,
// sgx.Verify, the policy's checks, attest.CheckReportData,
// proof.VerifySigned) and reading their typed errors (sgx.Error's Item,
// policy.MismatchError's Field, the attest and proof sentinels) to name the
// step that failed. A proof is VERIFIED only when both agree: a step that
// fails, or a proof.Verify that refuses, refuses it.
//
// Nothing here reaches the network: evidence that lacks what verifies it
// (an SEV-SNP VCEK, TDX collateral) is refused rather than completed by a
// fetch.
package webverify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Size limits of the inputs, checked before anything is decoded.
const (
	// MaxProofBytes is the largest proof file accepted: proof.ReadFile's.
	MaxProofBytes = proof.MaxFileBytes
	// MaxPolicyBytes is the largest policy file accepted.
	MaxPolicyBytes = 1 << 20
)

// Status is the outcome of one check.
type Status string

// Outcomes of a check.
const (
	// Pass: the check was made and passed.
	Pass Status = "pass"
	// Fail: the check was made and failed; the proof is refused.
	Fail Status = "fail"
	// NotChecked: an earlier check failed, so this one was not made.
	NotChecked Status = "not-checked"
	// Info: a fact shown, not a check (e.g. issued_at, which proves
	// nothing).
	Info Status = "info"
	// Warn: passed, but what it accepts protects less than it may seem
	// (a simulation proof, a test root, a BlindAI 0.5 policy).
	Warn Status = "warn"
)

// Check is one step of the verification.
type Check struct {
	// ID names the step, stable across versions (e.g. "quote-signature").
	ID string `json:"id"`
	// Title says what the step checks.
	Title string `json:"title"`
	// Status is its outcome.
	Status Status `json:"status"`
	// Detail says what was found, or why it failed.
	Detail string `json:"detail,omitempty"`
}

// Verdicts of a report.
const (
	// Verified: every check passed against hardware evidence.
	Verified = "VERIFIED"
	// VerifiedSimulation: the signature of a simulation-mode proof
	// verified, with simulation explicitly allowed. It protects nothing.
	VerifiedSimulation = "SIMULATION"
	// Refused: a check failed.
	Refused = "REFUSED"
)

// Report is the outcome of Verify.
type Report struct {
	// Verdict is Verified, VerifiedSimulation or Refused.
	Verdict string `json:"verdict"`
	// Summary says the verdict in one sentence.
	Summary string `json:"summary"`
	// Error is the verifier's error when the proof is refused.
	Error string `json:"error,omitempty"`
	// Warnings are what a user must know even when the proof verifies.
	Warnings []string `json:"warnings,omitempty"`
	// Checks are the steps, in the order they are made.
	Checks []Check `json:"checks"`
	// VerifiedAt is the verification time (RFC 3339).
	VerifiedAt string `json:"verifiedAt"`
	// Platform is the evidence type (attest.TypeSGXDCAP, ...), or
	// attest.TypeSimulation.
	Platform string `json:"platform,omitempty"`
	// TestRoot is true when evidence was checked against a test root CA.
	TestRoot bool `json:"testRoot,omitempty"`
}

// Options adjust Verify.
type Options struct {
	// Now is the verification time (certificate and collateral validity);
	// the zero time means the current time.
	Now time.Time
	// AllowSimulation accepts a simulation-mode proof. It protects nothing.
	AllowSimulation bool
	// TestRoot replaces the pinned Intel SGX Root CA for SGX and TDX
	// evidence. FOR TESTS ONLY: evidence that chains to it proves nothing.
	TestRoot *x509.Certificate
	// ModelID, ModelHash and InputHash, when set, must equal the signed
	// payload's (as proof.VerifyOptions's fields of the same names).
	ModelID              string
	ModelHash, InputHash []byte
}

// expectations returns the payload fields opts expects, as proof's
// options.
func (o Options) expectations() proof.VerifyOptions {
	return proof.VerifyOptions{ModelID: o.ModelID, ModelHash: o.ModelHash, InputHash: o.InputHash}
}

// Step identifiers, in the order the steps run.
const (
	StepProofFile        = "proof-file"
	StepPolicyFile       = "policy-file"
	StepPlatform         = "platform"
	StepQuote            = "quote"
	StepPCKChain         = "pck-chain"
	StepQuoteSignature   = "quote-signature"
	StepQEIdentity       = "qe-identity"
	StepTCBInfo          = "tcb-info"
	StepCRLs             = "crls"
	StepCollateralDates  = "collateral-dates"
	StepEnclave          = "enclave"
	StepTCBStatus        = "tcb-status"
	StepCollateralPolicy = "collateral-policy"
	StepEvidence         = "evidence"
	StepBinding          = "binding"
	StepSigningKey       = "signing-key"
	StepSignature        = "signature"
	StepPayload          = "payload"
	StepExpected         = "expected"
	StepIssuedAt         = "issued-at"
	// StepReceipt lists what a Blindfold server's receipt binds and which
	// of its bindings the verification checked.
	StepReceipt = "receipt"
	// StepVerdict is listed only when proof.Verify refuses a proof whose
	// steps all passed: it shows proof.Verify's reason.
	StepVerdict = "verdict"
)

var titles = map[string]string{
	StepProofFile:        "Proof file decodes",
	StepPolicyFile:       "Policy file decodes",
	StepPlatform:         "Evidence platform",
	StepQuote:            "SGX quote format",
	StepPCKChain:         "PCK certificate chain ends at the pinned Intel SGX Root CA",
	StepQuoteSignature:   "Quote signature (QE report signed by the PCK key, quote signed by the attestation key)",
	StepQEIdentity:       "QE identity (Intel-signed, valid at the verification time, matches the quoting enclave)",
	StepTCBInfo:          "TCB info (Intel-signed, valid at the verification time, platform TCB level)",
	StepCRLs:             "Revocation lists (root CA and PCK CA CRLs, valid; no certificate revoked)",
	StepCollateralDates:  "Collateral dates (verification time inside every validity window)",
	StepEnclave:          "Enclave identity matches the policy (measurement, signer, attributes, debug)",
	StepTCBStatus:        "TCB status and advisories accepted by the policy",
	StepCollateralPolicy: "Collateral freshness the policy demands",
	StepEvidence:         "Hardware evidence verifies (signatures, chain to the vendor root, collateral, policy)",
	StepBinding:          "Report data binds the attested certificate",
	StepSigningKey:       "Attested certificate holds the reply-signing key",
	StepSignature:        "Payload signature",
	StepPayload:          "Signed payload",
	StepExpected:         "Payload matches what was expected (model id, model hash, input hash)",
	StepIssuedAt:         "issued_at (server host clock)",
	StepReceipt:          "Receipt bindings (model, inputs, outputs, request nonce, replica)",
	StepVerdict:          "The verifier's verdict (proof.Verify)",
}

// sgxSteps are the steps of SGX evidence, in order.
var sgxSteps = []string{StepQuote, StepPCKChain, StepQuoteSignature, StepQEIdentity, StepTCBInfo, StepCRLs, StepCollateralDates, StepEnclave, StepTCBStatus, StepCollateralPolicy}

// run collects the checks of one verification.
type run struct {
	r      *Report
	failed bool
}

func (u *run) add(id string, st Status, format string, args ...any) {
	if u.failed && st != Info {
		st = NotChecked
	}
	if st == Fail {
		u.failed = true
	}
	u.r.Checks = append(u.r.Checks, Check{ID: id, Title: titles[id], Status: st, Detail: fmt.Sprintf(format, args...)})
}

// alsoFail records a second failed step with the same cause as the one
// just recorded (a date failure fails its item and the dates step).
func (u *run) alsoFail(id string, format string, args ...any) {
	u.failed = false
	u.add(id, Fail, format, args...)
}

// skip lists steps that an earlier failure kept from running.
func (u *run) skip(ids ...string) {
	for _, id := range ids {
		u.r.Checks = append(u.r.Checks, Check{ID: id, Title: titles[id], Status: NotChecked})
	}
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Verify checks proofFile (a binary ResponseProof, as Blindfold and
// BlindAI 0.5 clients write it) against policyFile (policy.toml; it may be
// empty for a simulation proof) and returns the report. It never panics on
// hostile input and fails closed: any doubt refuses the proof.
func Verify(proofFile, policyFile []byte, opts Options) *Report {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	u := &run{r: &Report{VerifiedAt: rfc(now), TestRoot: opts.TestRoot != nil}}
	err := u.verify(proofFile, policyFile, now, opts)
	r := u.r
	switch {
	case err == nil && !u.failed && r.Platform == attest.TypeSimulation:
		r.Verdict = VerifiedSimulation
		r.Summary = "The signature verifies, but this is a SIMULATION-MODE proof: no TEE vouches for it, and anyone holding the certificate's key could have made it. It protects nothing."
	case err == nil && !u.failed:
		r.Verdict = Verified
		r.Summary = fmt.Sprintf("The proof verifies: a TEE (%s evidence) that satisfies the policy signed this payload (evidence checked at %s).", r.Platform, r.VerifiedAt)
	default:
		r.Verdict = Refused
		if err == nil {
			err = errors.New("a check failed")
		}
		if !u.failed {
			u.add(StepVerdict, Fail, "every step passed, but proof.Verify refuses the proof: %v", err)
		}
		r.Error = err.Error()
		r.Summary = "The proof is refused: " + firstFailure(r.Checks) + "."
	}
	if r.TestRoot {
		r.Warnings = append(r.Warnings, "TEST BUILD: evidence was checked against a TEST root CA, not Intel's. This proves nothing about hardware.")
	}
	return r
}

func firstFailure(cs []Check) string {
	for _, c := range cs {
		if c.Status == Fail {
			return "check failed: " + c.Title
		}
	}
	return "the verifier refused it"
}

// verify runs the steps and returns proof.Verify's error (or the first
// failure when it stopped before calling it).
func (u *run) verify(proofFile, policyFile []byte, now time.Time, opts Options) error {
	if len(proofFile) > MaxProofBytes {
		err := fmt.Errorf("the proof file is %d bytes, more than the %d a proof file may have", len(proofFile), MaxProofBytes)
		u.add(StepProofFile, Fail, "%v", err)
		return err
	}
	p, err := proof.Unmarshal(proofFile)
	if err != nil {
		u.add(StepProofFile, Fail, "%v", err)
		return err
	}
	sim := proof.IsSimulation(p)
	u.add(StepProofFile, Pass, "%d bytes: a ResponseProof with a %d-byte payload, a %d-byte signature and %s", len(proofFile), len(p.GetPayload()), len(p.GetSignature()), describeEvidence(p))

	pol, err := u.policy(policyFile, sim)
	if err != nil {
		return err
	}
	if sim {
		return u.simulation(p, pol, opts)
	}
	return u.hardware(p, pol, now, opts)
}

func describeEvidence(p *prooffiles.ResponseProof) string {
	switch {
	case p.GetEvidence() != nil:
		return fmt.Sprintf("%q evidence (%d bytes, %d bytes of collateral)", p.GetEvidence().GetType(), len(p.GetEvidence().GetRaw()), len(p.GetEvidence().GetCollateral()))
	case len(p.GetAttestation().GetQuote()) > 0:
		return fmt.Sprintf("an SGX quote (%d bytes) with its collateral (BlindAI 0.5 format)", len(p.GetAttestation().GetQuote()))
	}
	return "no hardware evidence (simulation mode)"
}

// policy decodes the policy file; a simulation proof needs none.
func (u *run) policy(policyFile []byte, sim bool) (*policy.Policy, error) {
	if len(bytes.TrimSpace(policyFile)) == 0 {
		if sim {
			u.add(StepPolicyFile, Info, "no policy given: a simulation proof has no evidence to hold to one")
			return nil, nil
		}
		u.add(StepPolicyFile, Fail, "%v", proof.ErrNoPolicy)
		return nil, proof.ErrNoPolicy
	}
	if len(policyFile) > MaxPolicyBytes {
		err := fmt.Errorf("the policy file is %d bytes, more than the %d a policy may have", len(policyFile), MaxPolicyBytes)
		u.add(StepPolicyFile, Fail, "%v", err)
		return nil, err
	}
	pol, err := policy.Parse(policyFile)
	if err == nil {
		err = pol.Validate()
	}
	if err != nil {
		u.add(StepPolicyFile, Fail, "%v", err)
		return nil, err
	}
	var accepts []string
	if pol.HasSGX() {
		accepts = append(accepts, "SGX")
	}
	if pol.TDX != nil {
		accepts = append(accepts, "TDX")
	}
	if pol.SNP != nil {
		accepts = append(accepts, "SEV-SNP")
	}
	if w := pol.Warnings(); len(w) > 0 {
		u.r.Warnings = append(u.r.Warnings, w...)
		u.add(StepPolicyFile, Warn, "accepts %s; %s", strings.Join(accepts, ", "), strings.Join(w, "; "))
	} else {
		u.add(StepPolicyFile, Pass, "accepts %s", strings.Join(accepts, ", "))
	}
	return pol, nil
}

// simulation checks a simulation-mode proof.
func (u *run) simulation(p *prooffiles.ResponseProof, pol *policy.Policy, opts Options) error {
	u.r.Platform = attest.TypeSimulation
	if !opts.AllowSimulation {
		u.add(StepPlatform, Fail, "simulation mode: the proof carries no hardware evidence, so nothing shows that a TEE computed it; refused unless simulation is explicitly allowed")
		u.skip(StepSigningKey, StepSignature, StepPayload)
		return proof.ErrSimulationProof
	}
	u.r.Warnings = append(u.r.Warnings, "SIMULATION MODE: this proof carries no hardware evidence. It shows only that whoever holds the certificate's key signed the payload. It protects nothing.")
	u.add(StepPlatform, Warn, "simulation mode, explicitly allowed: no hardware evidence; it protects nothing")
	certDER := p.GetAttestation().GetEnclaveHeldData()
	key, ok := u.signingKey(certDER, "the proof's attested certificate (enclave_held_data)")
	if !ok {
		u.skip(StepSignature, StepPayload)
		return errors.New("the simulation proof's certificate holds no signing key")
	}
	u.signed(key, p, opts)
	vo := opts.expectations()
	vo.AllowSimulation, vo.Policy = true, pol
	res, err := proof.Verify(p, vo)
	if err == nil {
		u.receipt(res)
	}
	return err
}

// receipt lists the bindings of a verified proof: what its receipt (a
// Blindfold server's) binds, and which bindings were compared.
func (u *run) receipt(res *proof.Result) {
	if res.Receipt == nil {
		u.add(StepReceipt, Info, "no receipt (a BlindAI 0.5 server's reply, or an older Blindfold's): the payload binds the model id and the input hash only")
		return
	}
	var parts []string
	for _, b := range res.Bindings {
		state := "not checked"
		if b.Checked {
			state = "checked"
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", b.Name, state, b.Note))
	}
	u.add(StepReceipt, Info, "%s", strings.Join(parts, "; "))
}

// signingKey parses the attested certificate and its reply-signing key.
func (u *run) signingKey(certDER []byte, what string) ([]byte, bool) {
	if len(certDER) == 0 {
		u.add(StepSigningKey, Fail, "%v", proof.ErrNoCertificate)
		return nil, false
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		u.add(StepSigningKey, Fail, "%s does not parse: %v", what, err)
		return nil, false
	}
	key, err := identity.SigningKeyFromCertificate(cert)
	if err != nil {
		u.add(StepSigningKey, Fail, "%v", err)
		return nil, false
	}
	u.add(StepSigningKey, Pass, "%s %s holds Ed25519 key %x", what, identity.Fingerprint(certDER), []byte(key))
	return key, true
}

// signed checks the signature, shows the payload and compares it with
// what opts expects.
func (u *run) signed(key []byte, p *prooffiles.ResponseProof, opts Options) {
	res, err := proof.VerifySigned(key, p.GetPayload(), p.GetSignature(), proof.VerifyOptions{})
	switch {
	case err != nil && errors.Is(err, proof.ErrMalformedPayload):
		u.add(StepSignature, Pass, "Ed25519 signature over the %d payload bytes verifies", len(p.GetPayload()))
		u.add(StepPayload, Fail, "%v", err)
		return
	case err != nil:
		u.add(StepSignature, Fail, "%v", err)
		u.skip(StepPayload)
		return
	}
	u.add(StepSignature, Pass, "Ed25519 signature over the %d payload bytes verifies", len(p.GetPayload()))
	u.add(StepPayload, Pass, "%s", describePayload(res))
	if want := opts.expectations(); want.ModelID != "" || len(want.ModelHash) > 0 || len(want.InputHash) > 0 {
		if _, err := proof.VerifySigned(key, p.GetPayload(), p.GetSignature(), want); err != nil {
			u.add(StepExpected, Fail, "%v", err)
			return
		}
		u.add(StepExpected, Pass, "%s", describeExpected(want))
	}
	if res.IssuedAt.IsZero() {
		u.add(StepIssuedAt, Info, "absent")
	} else {
		u.add(StepIssuedAt, Info, "%s, read from the server machine's clock, which the host operator controls: a claim, not evidence of when the result was produced", res.IssuedAt.UTC().Format(time.RFC3339Nano))
	}
}

func describeExpected(o proof.VerifyOptions) string {
	var parts []string
	if o.ModelID != "" {
		parts = append(parts, fmt.Sprintf("model_id %q", o.ModelID))
	}
	if len(o.ModelHash) > 0 {
		parts = append(parts, fmt.Sprintf("model_hash %x", o.ModelHash))
	}
	if len(o.InputHash) > 0 {
		parts = append(parts, fmt.Sprintf("input_hash %x", o.InputHash))
	}
	return "the payload carries the expected " + strings.Join(parts, ", ")
}

func describePayload(res *proof.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, model_id %q", res.Kind, res.ModelID)
	if res.Kind == proof.KindSendModel {
		fmt.Fprintf(&b, ", model_hash %x (SHA-256 of the model bytes)", res.ModelHash)
		return b.String()
	}
	fmt.Fprintf(&b, ", input_hash %x (SHA-256 of the inputs' bytes, in order)", res.InputHash)
	for i, o := range res.Payload.GetRunModelPayload().GetOutputTensors() {
		fmt.Fprintf(&b, "; output %d: %s %s%v", i, o.GetInfo().GetIndexName(), tensor.DType(o.GetInfo().GetDatumType()), o.GetInfo().GetDims())
	}
	return b.String()
}

// offline is the SEV-SNP getter of the browser: it fetches nothing.
type offline struct{}

func (offline) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("this verifier fetches nothing: the proof must carry the VCEK certificate and the ARK's CRL")
}

// hardware checks a proof with hardware evidence.
func (u *run) hardware(p *prooffiles.ResponseProof, pol *policy.Policy, now time.Time, opts Options) error {
	ev, certDER, err := proof.Evidence(p)
	if err != nil {
		u.add(StepPlatform, Fail, "%v", err)
		return err
	}
	u.r.Platform = ev.Type
	at := func() time.Time { return now }
	reg, err := verifier.ForPolicy(pol, verifier.Options{Now: at, SGXTestRoot: opts.TestRoot, TDXTestRoot: opts.TestRoot, SNP: snp.Options{Getter: offline{}}})
	if err != nil {
		u.add(StepPlatform, Fail, "%v", err)
		return err
	}
	if !reg.Accepts(ev.Type) {
		err := fmt.Errorf("%s evidence, but the policy accepts only %v", ev.Type, reg.Types())
		u.add(StepPlatform, Fail, "%v", err)
		return err
	}
	u.add(StepPlatform, Pass, "%s evidence, accepted by the policy", ev.Type)

	var key []byte
	if ev.Type == attest.TypeSGXDCAP {
		key = u.sgx(ev, certDER, pol, now, opts)
	} else {
		key = u.otherPlatform(reg, ev, certDER)
	}
	if key == nil {
		u.skip(StepSigningKey, StepSignature, StepPayload)
	} else {
		u.signed(key, p, opts)
	}
	vo := opts.expectations()
	vo.Policy, vo.Verifiers, vo.Now = pol, reg, at
	res, err := proof.Verify(p, vo)
	if err == nil {
		u.receipt(res)
	}
	return err
}

// stepOfItem maps the evidence item of an sgx.Error to the step that
// checks it. The QE report is checked twice: its report data in the quote
// signature step, its identity in the QE identity step; qeReportBound
// tells them apart.
func stepOfItem(item sgx.Item, qeReportBound bool) string {
	switch item {
	case sgx.ItemQuote, sgx.ItemOptions:
		return StepQuote
	case sgx.ItemCertificationData, sgx.ItemPCKCertificate, sgx.ItemPCKCACertificate, sgx.ItemRootCertificate:
		return StepPCKChain
	case sgx.ItemQEReportSignature, sgx.ItemQuoteSignature:
		return StepQuoteSignature
	case sgx.ItemQEReport:
		if qeReportBound {
			return StepQEIdentity
		}
		return StepQuoteSignature
	case sgx.ItemQEIdentity, sgx.ItemQEIdentityIssuerChain:
		return StepQEIdentity
	case sgx.ItemTCBInfo, sgx.ItemTCBInfoIssuerChain:
		return StepTCBInfo
	case sgx.ItemRootCACRL, sgx.ItemPCKCRL, sgx.ItemPCKCRLIssuerChain:
		return StepCRLs
	}
	return StepQuote
}

// isDateError reports whether an sgx error is about the collateral's
// validity dates.
func isDateError(e *sgx.Error) bool {
	switch e.Item {
	case sgx.ItemTCBInfo, sgx.ItemQEIdentity, sgx.ItemRootCACRL, sgx.ItemPCKCRL:
		return errors.Is(e.Err, sgx.ErrExpired) || errors.Is(e.Err, sgx.ErrNotYetValid) || errors.Is(e.Err, sgx.ErrTooOld)
	}
	return false
}

// qeReportBound reports whether the QE report's data binds the
// attestation key and QE authentication data, as the quote signature step
// requires: then a QE report error came from the QE identity step.
func qeReportBound(q *abi.Quote) bool {
	sd := &q.SignatureData
	h := sha256.New()
	h.Write(sd.AttestationKey[:])
	h.Write(sd.QEAuthData)
	rd := sd.QEReport.ReportData
	return bytes.Equal(rd[:32], h.Sum(nil)) && bytes.Equal(rd[32:], make([]byte, 32))
}

// sgx runs the SGX steps and returns the signing key when they all pass.
func (u *run) sgx(ev *attest.Evidence, certDER []byte, pol *policy.Policy, now time.Time, opts Options) []byte {
	col, err := sgx.DecodeCollateral(ev.Collateral)
	if err != nil {
		u.add(StepQuote, Fail, "%v", err)
		u.skip(sgxSteps[1:]...)
		u.skip(StepBinding)
		return nil
	}
	so := sgx.Options{Now: func() time.Time { return now }, TestRoot: opts.TestRoot}
	pol.ApplyTo(&so)
	res, err := sgx.Verify(ev.Raw, col, so)
	if err != nil {
		var se *sgx.Error
		if !errors.As(err, &se) {
			u.add(StepQuote, Fail, "%v", err)
			u.skip(sgxSteps[1:]...)
			u.skip(StepBinding)
			return nil
		}
		bound := false
		q, perr := abi.ParseQuote(ev.Raw)
		if perr == nil {
			bound = qeReportBound(q)
		}
		failed := stepOfItem(se.Item, bound)
		datesShown := false
		for _, id := range sgxSteps {
			switch {
			case id == StepCollateralDates && datesShown:
			case u.failed:
				u.skip(id)
			case id == failed:
				u.add(id, Fail, "%v", err)
				if isDateError(se) {
					// The item failed on its dates: say so in the dates
					// step too, which the failure would otherwise skip.
					datesShown = true
					if errors.Is(se.Err, sgx.ErrTooOld) {
						u.alsoFail(StepCollateralDates, "the collateral is older than the policy allows (max_collateral_age, min_tcb_evaluation_data_number) at the verification time %s", rfc(now))
					} else {
						u.alsoFail(StepCollateralDates, "the collateral is not valid at the verification time %s: verify at a time inside its validity (such as when the proof was made) to see whether it was good then", rfc(now))
					}
				}
			default:
				u.add(id, Pass, "%s", passDetail(id, &sgx.Result{Quote: q}, opts))
			}
		}
		u.skip(StepBinding)
		return nil
	}
	for _, id := range sgxSteps[:6] {
		u.add(id, Pass, "%s", passDetail(id, res, opts))
	}
	crls := "both present and checked"
	if !res.CRLsChecked {
		crls = "NOT all present: revocation unknown"
	}
	u.r.Checks[len(u.r.Checks)-1].Detail += "; CRLs " + crls
	u.add(StepCollateralDates, Pass, "collateral issued by %s (latest issue date), next update %s (earliest); verification time %s is inside", rfc(res.CollateralIssued), rfc(res.CollateralNextUpdate), rfc(res.VerifiedAt))

	rb := res.ReportBody
	switch err := pol.Check(res); {
	case err == nil:
		why, _ := pol.ExplainStatus(res.Status, res.AdvisoryIDs)
		u.add(StepEnclave, Pass, "%s", enclaveDetail(rb, pol))
		st := Pass
		if pol.BlindAI05 {
			st = Warn
		}
		u.add(StepTCBStatus, st, "%s (platform %s, QE %s), advisories %s: %s", res.Status, res.PlatformStatus, res.QEStatus, listOrNone(res.AdvisoryIDs), why)
		u.add(StepCollateralPolicy, Pass, "%s", freshnessDetail(pol, res))
	default:
		var me *policy.MismatchError
		failed := StepEnclave
		if errors.As(err, &me) {
			switch me.Field {
			case policy.KeyAcceptedTCBStatuses, policy.KeyAcceptedAdvisoryIDs:
				failed = StepTCBStatus
			case policy.KeyMinTCBEvaluationDataNumber, policy.KeyMaxCollateralAge:
				failed = StepCollateralPolicy
			}
		}
		for _, id := range []string{StepEnclave, StepTCBStatus, StepCollateralPolicy} {
			switch {
			case u.failed:
				u.skip(id)
			case id == failed && id == StepTCBStatus:
				u.add(id, Fail, "%s (platform %s, QE %s), advisories %s: %v", res.Status, res.PlatformStatus, res.QEStatus, listOrNone(res.AdvisoryIDs), err)
			case id == failed:
				u.add(id, Fail, "%v", err)
			case id == StepEnclave:
				u.add(id, Pass, "%s", enclaveDetail(rb, pol))
			default:
				why, _ := pol.ExplainStatus(res.Status, res.AdvisoryIDs)
				u.add(id, Pass, "%s, advisories %s: %s", res.Status, listOrNone(res.AdvisoryIDs), why)
			}
		}
		u.skip(StepBinding)
		return nil
	}

	if err := attest.CheckReportData(rb.ReportData, certDER, attest.NonceIgnore, nil); err != nil {
		u.add(StepBinding, Fail, "%v", err)
		return nil
	}
	u.add(StepBinding, Pass, "bytes 0..31 of the report data are SHA-256 of the attested certificate (enclave_held_data); bytes 32..63 (the client's nonce, %x) are not checked: a third party does not know the nonce", rb.ReportData[32:])
	key, ok := u.signingKey(certDER, "the attested certificate")
	if !ok {
		return nil
	}
	return key
}

// passDetail says what a passed SGX step found. When a later step failed,
// res holds only the parsed quote, and the details of the collateral are
// not known.
func passDetail(id string, res *sgx.Result, opts Options) string {
	root := "the pinned Intel SGX Root CA (SHA-256 " + sgx.IntelRootCAFingerprint + ")"
	if opts.TestRoot != nil {
		s := sha256.Sum256(opts.TestRoot.Raw)
		root = "a TEST root CA (SHA-256 " + hex.EncodeToString(s[:]) + "), NOT Intel's"
	}
	if res.PCKCertificate == nil {
		switch {
		case id == StepQuote && res.Quote != nil:
		case id == StepPCKChain:
			return "the chain ends at " + root
		default:
			return "passed"
		}
	}
	switch id {
	case StepQuote:
		h := res.Quote.Header
		return fmt.Sprintf("version %d, attestation key type %d (ECDSA P-256), QE SVN %d, PCE SVN %d, Intel quoting enclave", h.Version, h.AttestationKeyType, h.QESVN, h.PCESVN)
	case StepPCKChain:
		return fmt.Sprintf("PCK certificate %q (FMSPC %X, PCE ID %X), valid %s to %s, chain ends at %s", res.PCKCertificate.Subject.CommonName, res.FMSPC, res.PCEID, rfc(res.PCKCertificate.NotBefore), rfc(res.PCKCertificate.NotAfter), root)
	case StepQuoteSignature:
		return "the QE report is signed by the PCK key and binds the attestation key; the header and report body are signed by the attestation key"
	case StepQEIdentity:
		return fmt.Sprintf("issued %s, TCB evaluation data number %d; QE TCB status %s", rfc(res.QEIdentityIssueDate), res.QEIdentityTCBEvaluationDataNumber, res.QEStatus)
	case StepTCBInfo:
		return fmt.Sprintf("issued %s, TCB evaluation data number %d; platform TCB status %s", rfc(res.TCBInfoIssueDate), res.TCBEvaluationDataNumber, res.PlatformStatus)
	case StepCRLs:
		return "no certificate of the chain is revoked"
	}
	return "passed"
}

func enclaveDetail(rb *abi.ReportBody, pol *policy.Policy) string {
	var pinned []string
	if pol.MREnclave != nil {
		pinned = append(pinned, "mr_enclave")
	}
	if pol.MRSigner != nil {
		pinned = append(pinned, "mr_signer, isv_prod_id, min_isv_svn")
	}
	return fmt.Sprintf("MRENCLAVE %x, MRSIGNER %x, ISVPRODID %d, ISVSVN %d, attributes %#x/%#x, MISCSELECT %#x; the policy pins %s", rb.MRENCLAVE, rb.MRSIGNER, rb.ISVProdID, rb.ISVSVN, rb.AttributesFlags, rb.AttributesXFRM, rb.MiscSelect, strings.Join(pinned, " and "))
}

func freshnessDetail(pol *policy.Policy, res *sgx.Result) string {
	var parts []string
	if pol.MinTCBEvaluationDataNumber > 0 {
		parts = append(parts, fmt.Sprintf("TCB evaluation data numbers %d and %d are at least %d", res.TCBEvaluationDataNumber, res.QEIdentityTCBEvaluationDataNumber, pol.MinTCBEvaluationDataNumber))
	}
	if pol.MaxCollateralAge > 0 {
		parts = append(parts, fmt.Sprintf("TCB info and QE identity issued at most %v before the verification time", pol.MaxCollateralAge))
	}
	if len(parts) == 0 {
		return "the policy sets no minimum TCB evaluation data number and no maximum collateral age"
	}
	return strings.Join(parts, "; ")
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// otherPlatform verifies TDX or SEV-SNP evidence with the platform's
// verifier and returns the signing key when it passes.
func (u *run) otherPlatform(reg *attest.Registry, ev *attest.Evidence, certDER []byte) []byte {
	v, err := reg.Verify(context.Background(), ev, certDER, attest.NonceIgnore, nil)
	if err != nil {
		switch {
		case errors.Is(err, attest.ErrReportData):
			u.add(StepEvidence, Pass, "the evidence verifies")
			u.add(StepBinding, Fail, "%v", err)
		case errors.Is(err, attest.ErrStaleCollateral):
			u.add(StepEvidence, Fail, "%v", err)
			u.alsoFail(StepCollateralDates, "the collateral is not valid at the verification time: verify at a time inside its validity")
			u.skip(StepBinding)
		default:
			u.add(StepEvidence, Fail, "%v", err)
			u.skip(StepBinding)
		}
		return nil
	}
	var claims []string
	for _, c := range v.Claims.List {
		claims = append(claims, c.Name+" "+c.Value)
	}
	u.add(StepEvidence, Pass, "%s", strings.Join(claims, "; "))
	u.add(StepBinding, Pass, "bytes 0..31 of the report data are SHA-256 of the attested certificate (enclave_held_data); the nonce bytes are not checked")
	u.add(StepSigningKey, Pass, "the attested certificate %s holds Ed25519 key %x", identity.Fingerprint(v.CertificateDER), []byte(v.SigningKey))
	return v.SigningKey
}

// CollateralWindow returns the validity window of an SGX proof's own
// collateral, as the collateral states it (unverified: Verify checks it):
// the latest issue date of its TCB info, QE identity and CRLs, and the
// earliest next update. Verifying at from shows whether the proof was good
// when its collateral was issued.
func CollateralWindow(proofFile []byte) (from, until time.Time, err error) {
	if len(proofFile) > MaxProofBytes {
		return from, until, fmt.Errorf("the proof file is %d bytes, more than %d", len(proofFile), MaxProofBytes)
	}
	p, err := proof.Unmarshal(proofFile)
	if err != nil {
		return from, until, err
	}
	c := p.GetAttestation().GetCollateral()
	if len(p.GetAttestation().GetQuote()) == 0 || c == nil {
		return from, until, errors.New("only an SGX proof in BlindAI 0.5's format names its collateral's dates")
	}
	var issued, next []time.Time
	for _, body := range []struct{ key, text string }{{"tcbInfo", c.GetTcbInfo()}, {"enclaveIdentity", c.GetQeIdentity()}} {
		i, n, err := signedDates(body.key, body.text)
		if err != nil {
			return from, until, err
		}
		issued, next = append(issued, i), append(next, n)
	}
	for _, crl := range []string{c.GetRootCaCrl(), c.GetPckCrl()} {
		if crl == "" {
			continue
		}
		l, err := sgx.ParseCRL(sgx.ItemPCKCRL, crl)
		if err != nil {
			return from, until, fmt.Errorf("a CRL of the collateral does not decode: %w", err)
		}
		issued, next = append(issued, l.ThisUpdate), append(next, l.NextUpdate)
	}
	return slices.MaxFunc(issued, time.Time.Compare), slices.MinFunc(next, time.Time.Compare), nil
}
