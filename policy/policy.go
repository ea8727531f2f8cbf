// Package policy holds what a client demands of a TEE before it trusts it:
// the policy.toml file. Its SGX part is BlindAI's file (MRENCLAVE,
// MISCSELECT and ATTRIBUTES under masks, debug) with Blindfold's optional
// additions (accepted TCB statuses and advisories, collateral freshness,
// and signer identity as an alternative to MRENCLAVE), at the top level as
// BlindAI 0.5 writes it or in an [sgx] section; a [tdx] section (TDX) and
// an [snp] section (SEV-SNP) hold the other platforms. A policy accepts
// evidence only of the platforms it has a section for. The package loads and writes the file, generates the SGX part from an
// enclave's SIGSTRUCT, and checks verified evidence against it.
package policy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// DefaultAcceptedTCBStatuses are the TCB statuses accepted when a policy
// does not list any: only UpToDate, as in Intel's strict default. Any other
// status must be accepted deliberately, naming the advisories accepted
// with it (accepted_advisory_ids).
var DefaultAcceptedTCBStatuses = []sgx.TCBStatus{sgx.UpToDate}

// BlindAITCBStatuses are the statuses that a policy.toml in BlindAI 0.5's
// format (see Policy.BlindAI05) accepts, with any advisory, as BlindAI 0.5
// did.
var BlindAITCBStatuses = []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}

// Policy is a parsed policy.toml, or a policy built in code. Check refuses
// a policy that Validate refuses.
type Policy struct {
	// MREnclave pins the enclave measurement (mr_enclave). At least one of
	// MREnclave and MRSigner is set; when both are, both are checked.
	MREnclave *[32]byte
	// MRSigner pins the enclave signer (mr_signer), with ISVProdID and
	// MinISVSVN, to accept signed upgrades.
	MRSigner *[32]byte
	// ISVProdID is the product ID required with MRSigner (isv_prod_id).
	ISVProdID uint16
	// MinISVSVN is the lowest security version accepted with MRSigner
	// (min_isv_svn).
	MinISVSVN uint16

	// MiscSelect must equal MISCSELECT & MiscMask (misc_select_hex, misc_mask_hex).
	MiscSelect, MiscMask uint32
	// AttributesFlags | INIT must equal the flags & AttributesMaskFlags
	// (attributes_flags_hex, attributes_mask_flags_hex).
	AttributesFlags, AttributesMaskFlags uint64
	// AttributesXFRM must equal the XFRM & AttributesMaskXFRM
	// (attributes_xfrm_hex, attributes_mask_xfrm_hex).
	AttributesXFRM, AttributesMaskXFRM uint64
	// AllowDebug accepts enclaves with the DEBUG attribute (allow_debug).
	// A debug enclave protects nothing.
	AllowDebug bool

	// AcceptedTCBStatuses lists the accepted combined TCB statuses
	// (accepted_tcb_statuses); empty means DefaultAcceptedTCBStatuses.
	// Revoked is never accepted; a status other than UpToDate needs
	// AcceptedAdvisoryIDs (unless BlindAI05).
	AcceptedTCBStatuses []sgx.TCBStatus
	// AcceptedAdvisoryIDs lists the only Intel security advisories
	// accepted (accepted_advisory_ids): every advisory of the quote's TCB
	// levels must be in it, whatever the status. Empty: none.
	AcceptedAdvisoryIDs []string
	// BlindAI05 marks a policy.toml in BlindAI 0.5's format: only BlindAI's
	// keys, none of accepted_tcb_statuses, accepted_advisory_ids or any
	// other Blindfold key. It keeps BlindAI 0.5's behaviour: the
	// AcceptedTCBStatuses (BlindAITCBStatuses) are accepted with any
	// advisory. Parse sets it; Warnings says what it accepts.
	BlindAI05 bool
	// MinTCBEvaluationDataNumber, when not zero, is the lowest
	// tcbEvaluationDataNumber accepted (min_tcb_evaluation_data_number).
	MinTCBEvaluationDataNumber uint32
	// MaxCollateralAge, when not zero, is the oldest TCB info and QE
	// identity accepted, measured from their issue date to the
	// verification time (max_collateral_age, a Go duration string).
	MaxCollateralAge time.Duration

	// TDX is the [tdx] section: nil when the policy does not accept TDX.
	TDX *TDX
	// SNP is the [snp] section: nil when the policy does not accept
	// SEV-SNP.
	SNP *SNP
}

// HasSGX reports whether the policy accepts SGX enclaves: it pins
// MRENCLAVE or MRSIGNER (top-level keys or [sgx]).
func (p *Policy) HasSGX() bool { return p != nil && (p.MREnclave != nil || p.MRSigner != nil) }

// ErrInvalid is wrapped by every error of Parse, Load and Validate.
var ErrInvalid = errors.New("invalid policy")

// ErrMismatch is matched (errors.Is) by every *MismatchError.
var ErrMismatch = errors.New("enclave does not match the policy")

// ErrStaleCollateral is matched (errors.Is) by a *MismatchError on the
// collateral's age or TCB evaluation data number (KeyMaxCollateralAge,
// KeyMinTCBEvaluationDataNumber): the evidence may pass with fresher
// collateral.
var ErrStaleCollateral = errors.New("collateral older than the policy allows")

// Key names a policy.toml key, or what a check that is not a key is about
// (KeyResult, KeyReport, KeyPolicy).
type Key string

// Policy keys, as MismatchError.Field reports them.
const (
	KeyMREnclave                  Key = "mr_enclave"
	KeyMRSigner                   Key = "mr_signer"
	KeyISVProdID                  Key = "isv_prod_id"
	KeyMinISVSVN                  Key = "min_isv_svn"
	KeyMiscSelect                 Key = "misc_select_hex"
	KeyAttributesFlags            Key = "attributes_flags_hex"
	KeyAttributesXFRM             Key = "attributes_xfrm_hex"
	KeyAllowDebug                 Key = "allow_debug"
	KeyAcceptedTCBStatuses        Key = "accepted_tcb_statuses"
	KeyAcceptedAdvisoryIDs        Key = "accepted_advisory_ids"
	KeyMinTCBEvaluationDataNumber Key = "min_tcb_evaluation_data_number"
	KeyMaxCollateralAge           Key = "max_collateral_age"
	// KeyResult: no verified quote was given.
	KeyResult Key = "result"
	// KeyReport: no report body was given.
	KeyReport Key = "report"
	// KeyPolicy: the policy itself is invalid (see Validate).
	KeyPolicy Key = "policy"
)

// MismatchError says which policy key the evidence fails, what the policy
// wants, and what the evidence has.
type MismatchError struct {
	// Field is the policy.toml key, e.g. KeyMREnclave or KeyAllowDebug.
	Field Key
	// Want is what the policy requires.
	Want string
	// Got is what the evidence has.
	Got string
	// Err is the cause, when there is one beyond the mismatch (an invalid
	// policy: an error wrapping ErrInvalid).
	Err error
}

// Error implements error.
func (e *MismatchError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("policy: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("policy: %s: want %s, got %s", e.Field, e.Want, e.Got)
}

// Is reports whether target is ErrMismatch, or ErrStaleCollateral for a
// mismatch on the collateral's age or evaluation data number.
func (e *MismatchError) Is(target error) bool {
	switch target {
	case ErrMismatch:
		return true
	case ErrStaleCollateral:
		return e.Field == KeyMaxCollateralAge || e.Field == KeyMinTCBEvaluationDataNumber
	}
	return false
}

// Unwrap returns the cause (nil for a plain mismatch).
func (e *MismatchError) Unwrap() error { return e.Err }

// StaleCollateral reports whether the mismatch is on the collateral's age
// or evaluation data number (errors.Is(e, ErrStaleCollateral)).
func (e *MismatchError) StaleCollateral() bool { return e.Is(ErrStaleCollateral) }

type sgxFile struct {
	MREnclave                  *string   `toml:"mr_enclave"`
	MRSigner                   *string   `toml:"mr_signer"`
	ISVProdID                  *int64    `toml:"isv_prod_id"`
	MinISVSVN                  *int64    `toml:"min_isv_svn"`
	MiscSelectHex              *string   `toml:"misc_select_hex"`
	MiscMaskHex                *string   `toml:"misc_mask_hex"`
	AttributesFlagsHex         *string   `toml:"attributes_flags_hex"`
	AttributesXFRMHex          *string   `toml:"attributes_xfrm_hex"`
	AttributesMaskFlagsHex     *string   `toml:"attributes_mask_flags_hex"`
	AttributesMaskXFRMHex      *string   `toml:"attributes_mask_xfrm_hex"`
	AllowDebug                 *bool     `toml:"allow_debug"`
	AcceptedTCBStatuses        *[]string `toml:"accepted_tcb_statuses"`
	AcceptedAdvisoryIDs        *[]string `toml:"accepted_advisory_ids"`
	MinTCBEvaluationDataNumber *int64    `toml:"min_tcb_evaluation_data_number"`
	MaxCollateralAge           *string   `toml:"max_collateral_age"`
}

// file is policy.toml: the SGX keys at the top level (BlindAI 0.5's format)
// or in [sgx], and one section per other platform.
type file struct {
	sgxFile
	SGX *sgxFile `toml:"sgx"`
	TDX *tdxFile `toml:"tdx"`
	SNP *snpFile `toml:"snp"`
}

// sgxKeys are the keys of an SGX policy.
var sgxKeys = []string{"mr_enclave", "mr_signer", "isv_prod_id", "min_isv_svn", "misc_select_hex", "misc_mask_hex",
	"attributes_flags_hex", "attributes_xfrm_hex", "attributes_mask_flags_hex", "attributes_mask_xfrm_hex", "allow_debug",
	"accepted_tcb_statuses", "accepted_advisory_ids", "min_tcb_evaluation_data_number", "max_collateral_age"}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Load reads and parses a policy.toml file.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func parseHexUint(key string, s *string, bits int) (uint64, error) {
	if s == nil {
		return 0, invalid("%s is required", key)
	}
	v := *s
	if !strings.HasPrefix(v, "0x") && !strings.HasPrefix(v, "0X") {
		return 0, invalid("%s = %q: want a hex string starting with 0x", key, v)
	}
	n, err := strconv.ParseUint(v[2:], 16, bits)
	if err != nil {
		return 0, invalid("%s = %q: not a %d-bit hex number", key, v, bits)
	}
	return n, nil
}

func parseHash(key, s string) (*[32]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, invalid("%s = %q: want 64 hex digits (32 bytes)", key, s)
	}
	var out [32]byte
	copy(out[:], b)
	return &out, nil
}

func intRange(key string, v *int64, max int64) (int64, error) {
	if v == nil {
		return 0, invalid("%s is required", key)
	}
	if *v < 0 || *v > max {
		return 0, invalid("%s = %d: out of range 0..%d", key, *v, max)
	}
	return *v, nil
}

// blindfoldKeys are the keys that BlindAI 0.5's policy.toml does not have.
var blindfoldKeys = []string{"mr_signer", "isv_prod_id", "min_isv_svn", "accepted_tcb_statuses", "accepted_advisory_ids", "min_tcb_evaluation_data_number", "max_collateral_age"}

// Parse parses policy.toml text. Unknown keys are an error, as is a policy
// that accepts no platform. SGX keys (top level or [sgx]) need mr_enclave or
// mr_signer (with both, both are checked) and all of BlindAI's keys
// (misc_*, attributes_*, allow_debug). A file with only BlindAI's keys at
// the top level and no other section is a BlindAI 0.5 policy
// (Policy.BlindAI05); with [sgx], [tdx] or [snp] it is a Blindfold policy,
// with Blindfold's stricter defaults. The result passes Validate.
func Parse(data []byte) (*Policy, error) { return parse(data, nil) }

// ParseForEnclave parses policy.toml text as Parse does, except that SGX
// keys (top level or [sgx]) without mr_enclave or mr_signer pin mrEnclave. It is for policies written before the enclave is
// measured, such as a cluster policy measured into the enclave itself,
// whose own MRENCLAVE it cannot contain; the caller passes the
// measurement it already trusts (its own).
func ParseForEnclave(data []byte, mrEnclave [32]byte) (*Policy, error) {
	return parse(data, &mrEnclave)
}

func parse(data []byte, mrEnclave *[32]byte) (*Policy, error) {
	var f file
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, invalid("unknown keys %s", strings.Join(keys, ", "))
	}
	p := &Policy{}
	topSGX := false
	for _, k := range sgxKeys {
		if md.IsDefined(k) {
			topSGX = true
		}
	}
	switch {
	case topSGX && f.SGX != nil:
		return nil, invalid("SGX keys are given both at the top level and in [sgx]: use one")
	case topSGX:
		blindAI := true
		for _, k := range blindfoldKeys {
			if md.IsDefined(k) {
				blindAI = false
			}
		}
		if blindAI && (f.TDX != nil || f.SNP != nil) {
			blindAI = false
		}
		if err := p.parseSGX(&f.sgxFile, blindAI, "", mrEnclave); err != nil {
			return nil, err
		}
	case f.SGX != nil:
		if err := p.parseSGX(f.SGX, false, "sgx.", mrEnclave); err != nil {
			return nil, err
		}
	}
	if f.TDX != nil {
		t, err := parseTDX(f.TDX)
		if err != nil {
			return nil, err
		}
		p.TDX = t
	}
	if f.SNP != nil {
		sp, err := parseSNP(f.SNP)
		if err != nil {
			return nil, err
		}
		p.SNP = sp
	}
	if !p.HasSGX() && p.TDX == nil && p.SNP == nil {
		return nil, invalid("the policy accepts no platform: give SGX keys (top level or [sgx]), [tdx] or [snp]")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseSGX parses the SGX keys of f into p; blindAI marks BlindAI 0.5's
// format (top-level keys only, none of Blindfold's); prefix names the
// section in errors; mrEnclave, when not nil, is pinned when f names no
// measurement.
func (p *Policy) parseSGX(f *sgxFile, blindAI bool, prefix string, mrEnclave *[32]byte) error {
	var err error
	if f.MREnclave == nil && f.MRSigner == nil {
		if mrEnclave == nil {
			return invalid("%sneither mr_enclave nor mr_signer is set: give at least one", prefix)
		}
		m := *mrEnclave
		p.MREnclave = &m
	}
	if f.MREnclave != nil {
		if p.MREnclave, err = parseHash(prefix+"mr_enclave", *f.MREnclave); err != nil {
			return err
		}
	}
	if f.MRSigner != nil {
		if p.MRSigner, err = parseHash(prefix+"mr_signer", *f.MRSigner); err != nil {
			return err
		}
		v, err := intRange(prefix+"isv_prod_id", f.ISVProdID, 65535)
		if err != nil {
			return err
		}
		p.ISVProdID = uint16(v)
		if v, err = intRange(prefix+"min_isv_svn", f.MinISVSVN, 65535); err != nil {
			return err
		}
		p.MinISVSVN = uint16(v)
	} else if f.ISVProdID != nil || f.MinISVSVN != nil {
		return invalid("%sisv_prod_id and min_isv_svn go with mr_signer, which is not set", prefix)
	}
	var v uint64
	if v, err = parseHexUint(prefix+"misc_select_hex", f.MiscSelectHex, 32); err != nil {
		return err
	}
	p.MiscSelect = uint32(v)
	if v, err = parseHexUint(prefix+"misc_mask_hex", f.MiscMaskHex, 32); err != nil {
		return err
	}
	p.MiscMask = uint32(v)
	if p.AttributesFlags, err = parseHexUint(prefix+"attributes_flags_hex", f.AttributesFlagsHex, 64); err != nil {
		return err
	}
	if p.AttributesXFRM, err = parseHexUint(prefix+"attributes_xfrm_hex", f.AttributesXFRMHex, 64); err != nil {
		return err
	}
	if p.AttributesMaskFlags, err = parseHexUint(prefix+"attributes_mask_flags_hex", f.AttributesMaskFlagsHex, 64); err != nil {
		return err
	}
	if p.AttributesMaskXFRM, err = parseHexUint(prefix+"attributes_mask_xfrm_hex", f.AttributesMaskXFRMHex, 64); err != nil {
		return err
	}
	if f.AllowDebug == nil {
		return invalid("%sallow_debug is required", prefix)
	}
	p.AllowDebug = *f.AllowDebug
	switch {
	case blindAI:
		p.BlindAI05 = true
		p.AcceptedTCBStatuses = slices.Clone(BlindAITCBStatuses)
	case f.AcceptedTCBStatuses != nil:
		if len(*f.AcceptedTCBStatuses) == 0 {
			return invalid("%saccepted_tcb_statuses is empty: no quote could pass", prefix)
		}
		for _, s := range *f.AcceptedTCBStatuses {
			st, err := sgx.ParseTCBStatus(s)
			if err != nil {
				return invalid("%saccepted_tcb_statuses: %v", prefix, err)
			}
			p.AcceptedTCBStatuses = append(p.AcceptedTCBStatuses, st)
		}
	default:
		p.AcceptedTCBStatuses = slices.Clone(DefaultAcceptedTCBStatuses)
	}
	if f.AcceptedAdvisoryIDs != nil && len(*f.AcceptedAdvisoryIDs) > 0 {
		p.AcceptedAdvisoryIDs = slices.Clone(*f.AcceptedAdvisoryIDs)
	}
	if f.MinTCBEvaluationDataNumber != nil {
		n, err := intRange(prefix+"min_tcb_evaluation_data_number", f.MinTCBEvaluationDataNumber, 1<<32-1)
		if err != nil {
			return err
		}
		p.MinTCBEvaluationDataNumber = uint32(n)
	}
	if f.MaxCollateralAge != nil {
		d, err := time.ParseDuration(*f.MaxCollateralAge)
		if err != nil || d <= 0 {
			return invalid("%smax_collateral_age = %q: want a positive duration such as \"720h\"", prefix, *f.MaxCollateralAge)
		}
		p.MaxCollateralAge = d
	}
	return nil
}

// Validate checks a policy, parsed or built in code: it pins MRENCLAVE or
// MRSIGNER; its statuses are known, listed once and never Revoked; a status
// other than UpToDate comes with the advisory IDs accepted with it
// (AcceptedAdvisoryIDs), except in a BlindAI 0.5 policy (BlindAI05), which
// lists no advisories and accepts only BlindAITCBStatuses. Errors wrap
// ErrInvalid.
func (p *Policy) Validate() error {
	if p == nil {
		return invalid("no policy")
	}
	if p.TDX != nil && len(p.TDX.MRTD) == 0 {
		return invalid("[tdx] without mrtd")
	}
	if p.SNP != nil && len(p.SNP.Measurement) == 0 {
		return invalid("[snp] without measurement")
	}
	if !p.HasSGX() {
		if p.TDX == nil && p.SNP == nil {
			return invalid("the policy accepts no platform: neither mr_enclave nor mr_signer is set, and there is no [tdx] or [snp]")
		}
		return nil
	}
	var seen []sgx.TCBStatus
	var beyond []string
	for _, st := range p.acceptedStatuses() {
		if _, err := sgx.ParseTCBStatus(string(st)); err != nil {
			return invalid("accepted_tcb_statuses: %v", err)
		}
		if st == sgx.Revoked {
			return invalid("accepted_tcb_statuses lists Revoked: a revoked platform or quoting enclave is never accepted")
		}
		if slices.Contains(seen, st) {
			return invalid("accepted_tcb_statuses lists %s twice", st)
		}
		seen = append(seen, st)
		if st != sgx.UpToDate {
			beyond = append(beyond, string(st))
		}
	}
	for i, a := range p.AcceptedAdvisoryIDs {
		if a == "" || strings.TrimSpace(a) != a {
			return invalid("accepted_advisory_ids[%d] = %q: want an advisory ID such as \"INTEL-SA-00615\"", i, a)
		}
		if slices.Contains(p.AcceptedAdvisoryIDs[:i], a) {
			return invalid("accepted_advisory_ids lists %s twice", a)
		}
	}
	if p.BlindAI05 {
		if p.MRSigner != nil || p.MinTCBEvaluationDataNumber > 0 || p.MaxCollateralAge > 0 {
			return invalid("a BlindAI 0.5 policy has only BlindAI's keys (mr_enclave, misc_*, attributes_*, allow_debug)")
		}
		if len(p.AcceptedAdvisoryIDs) > 0 {
			return invalid("a BlindAI 0.5 policy accepts any advisory and lists none; accepted_advisory_ids has %v", p.AcceptedAdvisoryIDs)
		}
		for _, st := range seen {
			if !slices.Contains(BlindAITCBStatuses, st) {
				return invalid("a BlindAI 0.5 policy accepts only %v, not %s", BlindAITCBStatuses, st)
			}
		}
		return nil
	}
	if len(beyond) > 0 && len(p.AcceptedAdvisoryIDs) == 0 {
		return invalid("accepted_tcb_statuses accepts %s, but accepted_advisory_ids does not name the advisories accepted with it: list them (blindfold policy from-sigstruct lists those the enclave build mitigates), or accept only UpToDate", strings.Join(beyond, ", "))
	}
	return nil
}

// ApplyTo copies the policy's collateral requirements
// (MinTCBEvaluationDataNumber, MaxCollateralAge) into verifier options, so
// that the verifier refuses stale collateral itself.
func (p *Policy) ApplyTo(o *sgx.Options) {
	if p.MinTCBEvaluationDataNumber > o.MinTCBEvaluationDataNumber {
		o.MinTCBEvaluationDataNumber = p.MinTCBEvaluationDataNumber
	}
	if p.MaxCollateralAge > 0 && (o.MaxCollateralAge == 0 || p.MaxCollateralAge < o.MaxCollateralAge) {
		o.MaxCollateralAge = p.MaxCollateralAge
	}
}

func h32(v uint32) string { return fmt.Sprintf("%#x", v) }
func h64(v uint64) string { return fmt.Sprintf("%#x", v) }

// CheckReport checks an enclave report body against the identity part of
// the policy, in BlindAI's order: measurement, then signer, product and
// version (each that the policy sets), debug, attribute flags, XFRM,
// MISCSELECT. It returns a *MismatchError on the first mismatch.
func (p *Policy) CheckReport(r *abi.ReportBody) error {
	if r == nil {
		return &MismatchError{Field: KeyReport, Want: "a report body", Got: "none"}
	}
	if p.MREnclave == nil && p.MRSigner == nil {
		return &MismatchError{Field: KeyMREnclave, Want: "a policy with mr_enclave or mr_signer", Got: "neither"}
	}
	if p.MREnclave != nil && r.MRENCLAVE != *p.MREnclave {
		return &MismatchError{Field: KeyMREnclave, Want: hex.EncodeToString(p.MREnclave[:]), Got: hex.EncodeToString(r.MRENCLAVE[:])}
	}
	if p.MRSigner != nil {
		if r.MRSIGNER != *p.MRSigner {
			return &MismatchError{Field: KeyMRSigner, Want: hex.EncodeToString(p.MRSigner[:]), Got: hex.EncodeToString(r.MRSIGNER[:])}
		}
		if r.ISVProdID != p.ISVProdID {
			return &MismatchError{Field: KeyISVProdID, Want: strconv.Itoa(int(p.ISVProdID)), Got: strconv.Itoa(int(r.ISVProdID))}
		}
		if r.ISVSVN < p.MinISVSVN {
			return &MismatchError{Field: KeyMinISVSVN, Want: fmt.Sprintf("ISVSVN >= %d", p.MinISVSVN), Got: strconv.Itoa(int(r.ISVSVN))}
		}
	}
	if r.AttributesFlags&abi.AttributeDebug != 0 && !p.AllowDebug {
		return &MismatchError{Field: KeyAllowDebug, Want: "a production enclave (DEBUG attribute clear)", Got: fmt.Sprintf("DEBUG set (flags %#x)", r.AttributesFlags)}
	}
	if got, want := r.AttributesFlags&p.AttributesMaskFlags, p.AttributesFlags|abi.AttributeInit; got != want {
		return &MismatchError{Field: KeyAttributesFlags, Want: fmt.Sprintf("flags & %s == %s (with INIT)", h64(p.AttributesMaskFlags), h64(want)), Got: h64(got)}
	}
	if got := r.AttributesXFRM & p.AttributesMaskXFRM; got != p.AttributesXFRM {
		return &MismatchError{Field: KeyAttributesXFRM, Want: fmt.Sprintf("xfrm & %s == %s", h64(p.AttributesMaskXFRM), h64(p.AttributesXFRM)), Got: h64(got)}
	}
	if got := r.MiscSelect & p.MiscMask; got != p.MiscSelect {
		return &MismatchError{Field: KeyMiscSelect, Want: fmt.Sprintf("misc_select & %s == %s", h32(p.MiscMask), h32(p.MiscSelect)), Got: h32(got)}
	}
	return nil
}

func (p *Policy) acceptedStatuses() []sgx.TCBStatus {
	if len(p.AcceptedTCBStatuses) == 0 {
		return DefaultAcceptedTCBStatuses
	}
	return p.AcceptedTCBStatuses
}

// CheckStatus checks a TCB status and its advisories against the policy.
// Revoked never passes; see ExplainStatus for why a status passes.
func (p *Policy) CheckStatus(status sgx.TCBStatus, advisoryIDs []string) error {
	_, err := p.ExplainStatus(status, advisoryIDs)
	return err
}

// ExplainStatus checks a TCB status and its advisories against the policy
// (as CheckStatus) and, when they pass, says why in one sentence for a
// user: which rule accepts the status and each advisory.
func (p *Policy) ExplainStatus(status sgx.TCBStatus, advisoryIDs []string) (string, error) {
	if err := p.Validate(); err != nil {
		return "", &MismatchError{Field: KeyPolicy, Err: err}
	}
	if status == sgx.Revoked {
		return "", &MismatchError{Field: KeyAcceptedTCBStatuses, Want: "a status other than Revoked (never accepted)", Got: string(status)}
	}
	acc := p.acceptedStatuses()
	if !slices.Contains(acc, status) {
		return "", &MismatchError{Field: KeyAcceptedTCBStatuses, Want: fmt.Sprintf("one of %v", acc), Got: string(status)}
	}
	if p.BlindAI05 {
		why := fmt.Sprintf("%s is accepted by a BlindAI 0.5 policy (no accepted_tcb_statuses or accepted_advisory_ids: %s with any advisory, as BlindAI 0.5 did)", status, statusList(acc))
		if len(advisoryIDs) > 0 {
			why += "; advisories " + strings.Join(advisoryIDs, ", ") + " accepted unchecked"
		}
		return why, nil
	}
	for _, a := range advisoryIDs {
		if !slices.Contains(p.AcceptedAdvisoryIDs, a) {
			want := "no advisory (accepted_advisory_ids is empty)"
			if len(p.AcceptedAdvisoryIDs) > 0 {
				want = "advisories within " + strings.Join(p.AcceptedAdvisoryIDs, ", ")
			}
			return "", &MismatchError{Field: KeyAcceptedAdvisoryIDs, Want: want, Got: a}
		}
	}
	why := fmt.Sprintf("%s is listed in accepted_tcb_statuses", status)
	if len(p.AcceptedTCBStatuses) == 0 {
		why = fmt.Sprintf("%s is accepted by default", status)
	}
	if len(advisoryIDs) == 0 {
		return why + "; no advisory is open", nil
	}
	return why + "; every open advisory (" + strings.Join(advisoryIDs, ", ") + ") is listed in accepted_advisory_ids", nil
}

func statusList(sts []sgx.TCBStatus) string {
	s := make([]string, len(sts))
	for i, st := range sts {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// Acceptance says, for a user, what the policy does with each TCB status:
// one line per status of sgx.AllTCBStatuses, naming the rule that accepts
// or refuses it.
func (p *Policy) Acceptance() []string {
	acc := p.acceptedStatuses()
	var lines []string
	for _, st := range sgx.AllTCBStatuses {
		var verdict string
		switch {
		case st == sgx.Revoked:
			verdict = "refused, always (a revoked platform or quoting enclave is never accepted)"
		case !slices.Contains(acc, st):
			verdict = "refused (not in accepted_tcb_statuses)"
		case p.BlindAI05:
			verdict = "accepted with ANY advisory (BlindAI 0.5 policy: no accepted_tcb_statuses or accepted_advisory_ids)"
		case len(p.AcceptedAdvisoryIDs) == 0:
			verdict = "accepted only with no open advisory (accepted_advisory_ids is empty)"
		default:
			verdict = "accepted only if every open advisory is one of " + strings.Join(p.AcceptedAdvisoryIDs, ", ") + " (accepted_advisory_ids)"
		}
		lines = append(lines, fmt.Sprintf("%-34s %s", st, verdict))
	}
	return lines
}

// Warnings says, for a user, what a policy accepts that they may not
// expect: a BlindAI 0.5 policy's statuses with any advisory.
func (p *Policy) Warnings() []string {
	if !p.BlindAI05 {
		return nil
	}
	return []string{fmt.Sprintf("policy in BlindAI 0.5 format (no accepted_tcb_statuses or accepted_advisory_ids): accepting TCB statuses %s with ANY security advisory, as BlindAI 0.5 did; add accepted_tcb_statuses and accepted_advisory_ids to accept only what the enclave mitigates (blindfold policy from-sigstruct writes them)", statusList(p.acceptedStatuses()))}
}

// Check checks a verified quote against the policy: the policy itself
// (Validate), the report body (CheckReport), the TCB status and advisories
// (CheckStatus), and the collateral's TCB evaluation data numbers and age.
// It returns a *MismatchError on the first mismatch.
func (p *Policy) Check(res *sgx.Result) error {
	if err := p.Validate(); err != nil {
		return &MismatchError{Field: KeyPolicy, Err: err}
	}
	if !p.HasSGX() {
		return &MismatchError{Field: KeyPolicy, Err: invalid("the policy does not accept SGX (no mr_enclave or mr_signer)")}
	}
	if res == nil || res.ReportBody == nil {
		return &MismatchError{Field: KeyResult, Want: "a verified quote", Got: "none"}
	}
	if err := p.CheckReport(res.ReportBody); err != nil {
		return err
	}
	if err := p.CheckStatus(res.Status, res.AdvisoryIDs); err != nil {
		return err
	}
	if m := p.MinTCBEvaluationDataNumber; m > 0 {
		for _, n := range []uint32{res.TCBEvaluationDataNumber, res.QEIdentityTCBEvaluationDataNumber} {
			if n < m {
				return &MismatchError{Field: KeyMinTCBEvaluationDataNumber, Want: fmt.Sprintf(">= %d", m), Got: strconv.FormatUint(uint64(n), 10)}
			}
		}
	}
	if p.MaxCollateralAge > 0 {
		for _, issued := range []time.Time{res.TCBInfoIssueDate, res.QEIdentityIssueDate} {
			if issued.IsZero() || res.VerifiedAt.Sub(issued) > p.MaxCollateralAge {
				return &MismatchError{Field: KeyMaxCollateralAge, Want: fmt.Sprintf("collateral issued at most %v before %s", p.MaxCollateralAge, res.VerifiedAt.UTC().Format(time.RFC3339)), Got: "issued " + issued.UTC().Format(time.RFC3339)}
			}
		}
	}
	return nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TOML writes the policy as policy.toml text, keys in a fixed order, with
// comments. Parse(p.TOML()) gives back the same policy.
func (p *Policy) TOML() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if !p.HasSGX() {
		w("# Blindfold TEE policy. A client trusts a TEE only if its verified evidence\n")
		w("# matches every rule of the section of its platform.\n")
		p.tomlSections(&b)
		return b.Bytes()
	}
	w("# Blindfold enclave policy (BlindAI policy.toml format).\n")
	w("# A client trusts an SGX enclave only if its verified quote matches every rule here.\n\n")
	if p.MREnclave != nil {
		w("# MRENCLAVE: the measurement of the enclave's code and data.\n")
		w("mr_enclave = %s\n\n", tomlString(hex.EncodeToString(p.MREnclave[:])))
	}
	if p.MRSigner != nil {
		w("# MRSIGNER (SHA-256 of the signing key's modulus), product ID and lowest\n")
		w("# security version: accepts any enclave version this key signs.\n")
		w("mr_signer = %s\n", tomlString(hex.EncodeToString(p.MRSigner[:])))
		w("isv_prod_id = %d\n", p.ISVProdID)
		w("min_isv_svn = %d\n\n", p.MinISVSVN)
	}
	w("# MISCSELECT & misc_mask_hex must equal misc_select_hex.\n")
	w("misc_select_hex = %s\n", tomlString(h32(p.MiscSelect)))
	w("misc_mask_hex = %s\n\n", tomlString(h32(p.MiscMask)))
	w("# ATTRIBUTES.FLAGS & attributes_mask_flags_hex must equal attributes_flags_hex | INIT (0x1);\n")
	w("# ATTRIBUTES.XFRM & attributes_mask_xfrm_hex must equal attributes_xfrm_hex.\n")
	w("attributes_flags_hex = %s\n", tomlString(h64(p.AttributesFlags)))
	w("attributes_xfrm_hex = %s\n", tomlString(h64(p.AttributesXFRM)))
	w("attributes_mask_flags_hex = %s\n", tomlString(h64(p.AttributesMaskFlags)))
	w("attributes_mask_xfrm_hex = %s\n\n", tomlString(h64(p.AttributesMaskXFRM)))
	w("# A debug enclave (DEBUG attribute 0x2) can be read by the host: it protects nothing.\n")
	w("allow_debug = %t\n\n", p.AllowDebug)
	if p.BlindAI05 {
		w("# BlindAI 0.5 format: without accepted_tcb_statuses and accepted_advisory_ids this\n")
		w("# policy accepts the TCB statuses %s with ANY security advisory, as\n", statusList(p.acceptedStatuses()))
		w("# BlindAI 0.5 did. Add both keys to accept only what the enclave mitigates.\n")
	} else {
		statuses := make([]string, 0, len(p.acceptedStatuses()))
		for _, s := range p.acceptedStatuses() {
			statuses = append(statuses, string(s))
		}
		w("# Combined TCB statuses (platform and quoting enclave) accepted. Revoked never is;\n")
		w("# a status other than UpToDate needs the advisories it is accepted with, below.\n")
		w("accepted_tcb_statuses = %s\n\n", tomlList(statuses))
		w("# Every Intel security advisory of the quote's TCB levels must be listed here,\n")
		w("# whatever the status: list only advisories the enclave build mitigates.\n")
		w("accepted_advisory_ids = %s\n", tomlList(p.AcceptedAdvisoryIDs))
	}
	if p.MinTCBEvaluationDataNumber > 0 {
		w("\n# Lowest TCB evaluation data number of the TCB info and QE identity.\n")
		w("min_tcb_evaluation_data_number = %d\n", p.MinTCBEvaluationDataNumber)
	}
	if p.MaxCollateralAge > 0 {
		w("\n# Oldest TCB info and QE identity accepted, from their issue date.\n")
		w("max_collateral_age = %s\n", tomlString(p.MaxCollateralAge.String()))
	}
	p.tomlSections(&b)
	return b.Bytes()
}
