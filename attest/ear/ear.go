// Package ear writes what a Blindfold verifier concluded as an EAT
// Attestation Result (EAR, IETF RATS draft-ietf-rats-ear): a JSON claims
// set in the profile "tag:github.com,2023:veraison/ear", unsigned or as a
// JWT signed with ES256.
//
// An EAR holds one appraisal per component (EAR "submods"): the TEE
// hardware ("platform"), the workload it isolates ("enclave" for SGX, "vm"
// for TDX and SEV-SNP) and, for a proof, the signed reply ("model"). Each
// appraisal has a status (none, affirming, warning, contraindicated) and
// an AR4SI trustworthiness vector; what Blindfold verified is carried
// beside them in the extension claim "ear.blindfold.annotated-evidence",
// and what a relying party must not miss in "ear.blindfold.warnings".
// docs/ear.md gives the mapping from verdicts to statuses and claims.
//
// The package knows no engine and builds without cgo: it reads verified
// claims (package attest), the policy that judged them (package policy)
// and verified proofs (package proof). It never raises a status above
// what the policy verdict allows: claims are checked against the policy
// again, and a refusal always gives contraindicated.
package ear

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Profile is the EAT profile of the results this package writes and
// reads (eat_profile).
const Profile = "tag:github.com,2023:veraison/ear"

// MaxSize is the largest EAR (JSON claims set or JWT) that Parse,
// Validate and VerifyJWT read.
const MaxSize = 1 << 20

// Names of the appraisals (submods) Blindfold writes.
const (
	// SubmodPlatform appraises the TEE hardware: genuineness, TCB level,
	// collateral.
	SubmodPlatform = "platform"
	// SubmodEnclave appraises an SGX enclave: its identity and attributes
	// against the policy.
	SubmodEnclave = "enclave"
	// SubmodVM appraises a TDX trust domain or an SEV-SNP guest against
	// the policy.
	SubmodVM = "vm"
	// SubmodModel appraises the signed reply of a proof: the model and
	// the request it binds.
	SubmodModel = "model"
)

// Status is an AR4SI trustworthiness tier, the value of ear.status.
type Status string

// The trustworthiness tiers, from no conclusion to the worst.
const (
	// StatusNone means no conclusion can be drawn: nothing was verified
	// that a relying party could rely on (simulation, a test root).
	StatusNone Status = "none"
	// StatusAffirming means the component is as the policy wants it, with
	// no known issue.
	StatusAffirming Status = "affirming"
	// StatusWarning means the policy accepts the component, but it has
	// known issues (open security advisories, a TCB below the latest).
	StatusWarning Status = "warning"
	// StatusContraindicated means the component must not be relied on:
	// the evidence does not verify or the policy refuses it.
	StatusContraindicated Status = "contraindicated"
)

// rank orders the tiers from no conclusion (0) to contraindicated (3); -1
// is not a tier.
func (s Status) rank() int {
	switch s {
	case StatusNone:
		return 0
	case StatusAffirming:
		return 1
	case StatusWarning:
		return 2
	case StatusContraindicated:
		return 3
	}
	return -1
}

// Claim is an AR4SI trustworthiness claim: a value from -128 to 127 whose
// range gives its tier.
type Claim int8

// Tier returns the tier of the claim: none (-1 to 1), affirming (2 to 31,
// -32 to -2), warning (32 to 95, -96 to -33), contraindicated (96 to 127,
// -128 to -97).
func (c Claim) Tier() Status {
	switch {
	case c >= -1 && c <= 1:
		return StatusNone
	case (c >= 2 && c <= 31) || (c >= -32 && c <= -2):
		return StatusAffirming
	case (c >= 32 && c <= 95) || (c >= -96 && c <= -33):
		return StatusWarning
	}
	return StatusContraindicated
}

// The AR4SI claim values Blindfold uses; docs/ear.md says when.
const (
	noClaim                Claim = 0
	cryptoValidationFailed Claim = 99

	trustworthyInstance Claim = 2 // instance-identity

	approvedConfig      Claim = 2 // configuration
	unsafeConfig        Claim = 32
	unsupportableConfig Claim = 96

	approvedRuntime     Claim = 2 // executables
	unrecognizedRuntime Claim = 33

	genuineHardware         Claim = 2 // hardware
	unsafeHardware          Claim = 32
	contraindicatedHardware Claim = 96
	unrecognizedHardware    Claim = 97

	encryptedMemory Claim = 2 // runtime-opaque
	visibleMemory   Claim = 96
)

// TrustVector is an AR4SI trustworthiness vector. A zero claim is no claim
// and is not written.
type TrustVector struct {
	// InstanceIdentity: the attesting key is recognized and not revoked.
	InstanceIdentity Claim `json:"instance-identity,omitempty"`
	// Configuration: the configuration is approved, or has known issues.
	Configuration Claim `json:"configuration,omitempty"`
	// Executables: the code loaded is the code the policy approves.
	Executables Claim `json:"executables,omitempty"`
	// FileSystem: files of the attester (Blindfold makes no claim).
	FileSystem Claim `json:"file-system,omitempty"`
	// Hardware: the hardware is genuine, and its known vulnerabilities.
	Hardware Claim `json:"hardware,omitempty"`
	// RuntimeOpaque: memory is encrypted or visible to the host.
	RuntimeOpaque Claim `json:"runtime-opaque,omitempty"`
	// StorageOpaque: persistent secrets are encrypted (Blindfold makes no
	// claim).
	StorageOpaque Claim `json:"storage-opaque,omitempty"`
	// SourcedData: data from other attesters (Blindfold makes no claim).
	SourcedData Claim `json:"sourced-data,omitempty"`
}

func (v *TrustVector) claims() []Claim {
	return []Claim{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem, v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData}
}

// worst returns the worst tier of the claims made (none if none is made).
func (v *TrustVector) worst() Status {
	w := StatusNone
	if v == nil {
		return w
	}
	for _, c := range v.claims() {
		if t := c.Tier(); t.rank() > w.rank() {
			w = t
		}
	}
	return w
}

// VerifierID names the verifier that wrote a result (ear.verifier-id).
type VerifierID struct {
	// Developer names who makes the verifier.
	Developer string `json:"developer"`
	// Build names the verifier's build.
	Build string `json:"build"`
}

// Appraisal is the appraisal of one component (one submod).
type Appraisal struct {
	// Status is the component's tier (ear.status).
	Status Status `json:"ear.status"`
	// TrustVector holds the claims made of the component, or is nil when
	// none is made (ear.trustworthiness-vector).
	TrustVector *TrustVector `json:"ear.trustworthiness-vector,omitempty"`
	// PolicyID names the policy the component was appraised against
	// (ear.appraisal-policy-id).
	PolicyID string `json:"ear.appraisal-policy-id,omitempty"`
	// Evidence holds what was verified of the component, by name
	// (ear.blindfold.annotated-evidence). Values are strings, booleans or
	// lists of strings.
	Evidence map[string]any `json:"ear.blindfold.annotated-evidence,omitempty"`
	// Warnings says what a relying party must not miss: simulation, a
	// test root, revocation not checked, why the component was refused
	// (ear.blindfold.warnings).
	Warnings []string `json:"ear.blindfold.warnings,omitempty"`
}

// Result is an EAR claims set.
type Result struct {
	// Profile is Profile (eat_profile).
	Profile string
	// IssuedAt is when the result was written, in Unix seconds (iat).
	IssuedAt int64
	// VerifierID names the verifier (ear.verifier-id).
	VerifierID VerifierID
	// Nonce is the client's nonce that the evidence binds, base64url
	// without padding (eat_nonce), or empty.
	Nonce string
	// RawEvidence is the evidence that was appraised (ear.raw-evidence),
	// or nil.
	RawEvidence []byte
	// Submods holds the appraisals by component name (submods).
	Submods map[string]*Appraisal
}

// wireResult is Result as JSON spells it.
type wireResult struct {
	Profile     string                `json:"eat_profile"`
	IssuedAt    int64                 `json:"iat"`
	VerifierID  VerifierID            `json:"ear.verifier-id"`
	Nonce       string                `json:"eat_nonce,omitempty"`
	RawEvidence string                `json:"ear.raw-evidence,omitempty"`
	Submods     map[string]*Appraisal `json:"submods"`
}

// MarshalJSON encodes the claims set, after checking it with Validate.
func (r Result) MarshalJSON() ([]byte, error) {
	w := wireResult{
		Profile: r.Profile, IssuedAt: r.IssuedAt, VerifierID: r.VerifierID, Nonce: r.Nonce,
		RawEvidence: base64.RawURLEncoding.EncodeToString(r.RawEvidence), Submods: r.Submods,
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("ear: encoding: %w", err)
	}
	if err := Validate(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Status returns the least trustworthy status of the submods:
// contraindicated if any is, else none if any is, else warning if any is,
// else affirming. A result without submods is none.
func (r *Result) Status() Status {
	if len(r.Submods) == 0 {
		return StatusNone
	}
	has := map[Status]bool{}
	for _, a := range r.Submods {
		has[a.Status] = true
	}
	for _, s := range []Status{StatusContraindicated, StatusNone, StatusWarning} {
		if has[s] {
			return s
		}
	}
	return StatusAffirming
}

// Parse decodes and checks an EAR claims set (JSON): it must pass
// Validate. Unknown extension claims are ignored.
func Parse(b []byte) (*Result, error) {
	if err := Validate(b); err != nil {
		return nil, err
	}
	var w wireResult
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("ear: decoding: %w", err)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(w.RawEvidence)
	if err != nil {
		return nil, fmt.Errorf("ear: ear.raw-evidence is not base64url without padding: %w", err)
	}
	if len(raw) == 0 {
		raw = nil
	}
	r := &Result{Profile: w.Profile, IssuedAt: w.IssuedAt, VerifierID: w.VerifierID, Nonce: w.Nonce, RawEvidence: raw, Submods: w.Submods}
	for name, a := range r.Submods {
		if a == nil {
			return nil, fmt.Errorf("ear: submod %q is null", name)
		}
		for k, v := range a.Evidence {
			nv, err := evidenceValue(v)
			if err != nil {
				return nil, fmt.Errorf("ear: submod %q: annotated evidence %q: %w", name, k, err)
			}
			a.Evidence[k] = nv
		}
	}
	return r, nil
}

// evidenceValue turns a decoded annotated-evidence value into the type
// this package writes: string, bool or []string.
func evidenceValue(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("item %d is %T, want a string", i, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T, want a string, a boolean or a list of strings", v)
}

// Equal reports whether r and o hold the same claims.
func (r *Result) Equal(o *Result) bool {
	if r.Profile != o.Profile || r.IssuedAt != o.IssuedAt || r.VerifierID != o.VerifierID || r.Nonce != o.Nonce ||
		!bytes.Equal(r.RawEvidence, o.RawEvidence) || len(r.Submods) != len(o.Submods) {
		return false
	}
	for name, a := range r.Submods {
		b, ok := o.Submods[name]
		if !ok || !a.equal(b) {
			return false
		}
	}
	return true
}

func (a *Appraisal) equal(b *Appraisal) bool {
	if a.Status != b.Status || a.PolicyID != b.PolicyID || (a.TrustVector == nil) != (b.TrustVector == nil) ||
		(a.TrustVector != nil && *a.TrustVector != *b.TrustVector) || !slices.Equal(a.Warnings, b.Warnings) {
		return false
	}
	return maps.EqualFunc(a.Evidence, b.Evidence, func(x, y any) bool {
		xs, xok := x.([]string)
		ys, yok := y.([]string)
		if xok || yok {
			return xok && yok && slices.Equal(xs, ys)
		}
		return x == y
	})
}

// ErrInvalid means a claims set does not follow the EAR schema or this
// profile.
var ErrInvalid = errors.New("ear: not a valid EAR claims set")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// nowUnix returns the issue time for opts.
func nowUnix(now func() time.Time) int64 {
	if now == nil {
		return time.Now().Unix()
	}
	return now().Unix()
}
