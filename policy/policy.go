// Package policy holds what a client demands of an SGX enclave before it
// trusts it: the policy.toml file of BlindAI (MRENCLAVE, MISCSELECT and
// ATTRIBUTES under masks, debug), with Blindfold's optional additions
// (accepted TCB statuses and advisories, collateral freshness, and signer
// identity as an alternative to MRENCLAVE). It loads and writes the file,
// generates it from an enclave's SIGSTRUCT, and checks verified quotes
// against it.
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

// DefaultAcceptedTCBStatuses are the TCB statuses accepted when the policy
// does not list any: those BlindAI accepted.
var DefaultAcceptedTCBStatuses = []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}

// Policy is a parsed policy.toml.
type Policy struct {
	// MREnclave pins the enclave measurement (mr_enclave). Exactly one of
	// MREnclave and MRSigner is set.
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
	AcceptedTCBStatuses []sgx.TCBStatus
	// AcceptedAdvisoryIDs, when not nil, lists the only advisories accepted
	// (accepted_advisory_ids): every advisory of the result must be in it.
	AcceptedAdvisoryIDs []string
	// MinTCBEvaluationDataNumber, when not zero, is the lowest
	// tcbEvaluationDataNumber accepted (min_tcb_evaluation_data_number).
	MinTCBEvaluationDataNumber uint32
	// MaxCollateralAge, when not zero, is the oldest TCB info and QE
	// identity accepted, measured from their issue date to the
	// verification time (max_collateral_age, a Go duration string).
	MaxCollateralAge time.Duration
}

// ErrInvalid is wrapped by every error of Parse and Load.
var ErrInvalid = errors.New("invalid policy")

// ErrMismatch is matched (errors.Is) by every *MismatchError.
var ErrMismatch = errors.New("enclave does not match the policy")

// MismatchError says which policy key the evidence fails, what the policy
// wants, and what the evidence has.
type MismatchError struct {
	// Field is the policy.toml key, e.g. "mr_enclave" or "allow_debug".
	Field string
	// Want is what the policy requires.
	Want string
	// Got is what the evidence has.
	Got string
}

// Error implements error.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("policy: %s: want %s, got %s", e.Field, e.Want, e.Got)
}

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

type file struct {
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

// Parse parses policy.toml text. Unknown keys are an error, as is a policy
// with both or neither of mr_enclave and mr_signer. The BlindAI keys
// (misc_*, attributes_*, allow_debug) are all required.
func Parse(data []byte) (*Policy, error) {
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
	switch {
	case f.MREnclave != nil && f.MRSigner != nil:
		return nil, invalid("mr_enclave and mr_signer are both set: give exactly one")
	case f.MREnclave != nil:
		if f.ISVProdID != nil || f.MinISVSVN != nil {
			return nil, invalid("isv_prod_id and min_isv_svn go with mr_signer, not mr_enclave")
		}
		if p.MREnclave, err = parseHash("mr_enclave", *f.MREnclave); err != nil {
			return nil, err
		}
	case f.MRSigner != nil:
		if p.MRSigner, err = parseHash("mr_signer", *f.MRSigner); err != nil {
			return nil, err
		}
		v, err := intRange("isv_prod_id", f.ISVProdID, 65535)
		if err != nil {
			return nil, err
		}
		p.ISVProdID = uint16(v)
		if v, err = intRange("min_isv_svn", f.MinISVSVN, 65535); err != nil {
			return nil, err
		}
		p.MinISVSVN = uint16(v)
	default:
		return nil, invalid("neither mr_enclave nor mr_signer is set: give exactly one")
	}
	var v uint64
	if v, err = parseHexUint("misc_select_hex", f.MiscSelectHex, 32); err != nil {
		return nil, err
	}
	p.MiscSelect = uint32(v)
	if v, err = parseHexUint("misc_mask_hex", f.MiscMaskHex, 32); err != nil {
		return nil, err
	}
	p.MiscMask = uint32(v)
	if p.AttributesFlags, err = parseHexUint("attributes_flags_hex", f.AttributesFlagsHex, 64); err != nil {
		return nil, err
	}
	if p.AttributesXFRM, err = parseHexUint("attributes_xfrm_hex", f.AttributesXFRMHex, 64); err != nil {
		return nil, err
	}
	if p.AttributesMaskFlags, err = parseHexUint("attributes_mask_flags_hex", f.AttributesMaskFlagsHex, 64); err != nil {
		return nil, err
	}
	if p.AttributesMaskXFRM, err = parseHexUint("attributes_mask_xfrm_hex", f.AttributesMaskXFRMHex, 64); err != nil {
		return nil, err
	}
	if f.AllowDebug == nil {
		return nil, invalid("allow_debug is required")
	}
	p.AllowDebug = *f.AllowDebug
	if f.AcceptedTCBStatuses != nil {
		if len(*f.AcceptedTCBStatuses) == 0 {
			return nil, invalid("accepted_tcb_statuses is empty: no quote could pass")
		}
		for _, s := range *f.AcceptedTCBStatuses {
			st, err := sgx.ParseTCBStatus(s)
			if err != nil {
				return nil, invalid("accepted_tcb_statuses: %v", err)
			}
			if slices.Contains(p.AcceptedTCBStatuses, st) {
				return nil, invalid("accepted_tcb_statuses lists %s twice", st)
			}
			p.AcceptedTCBStatuses = append(p.AcceptedTCBStatuses, st)
		}
	} else {
		p.AcceptedTCBStatuses = slices.Clone(DefaultAcceptedTCBStatuses)
	}
	if f.AcceptedAdvisoryIDs != nil {
		p.AcceptedAdvisoryIDs = append([]string{}, *f.AcceptedAdvisoryIDs...)
		for _, a := range p.AcceptedAdvisoryIDs {
			if a == "" {
				return nil, invalid("accepted_advisory_ids has an empty ID")
			}
		}
	}
	if f.MinTCBEvaluationDataNumber != nil {
		n, err := intRange("min_tcb_evaluation_data_number", f.MinTCBEvaluationDataNumber, 1<<32-1)
		if err != nil {
			return nil, err
		}
		p.MinTCBEvaluationDataNumber = uint32(n)
	}
	if f.MaxCollateralAge != nil {
		d, err := time.ParseDuration(*f.MaxCollateralAge)
		if err != nil || d <= 0 {
			return nil, invalid("max_collateral_age = %q: want a positive duration such as \"720h\"", *f.MaxCollateralAge)
		}
		p.MaxCollateralAge = d
	}
	return p, nil
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
// the policy, in BlindAI's order: measurement (or signer, product and
// version), debug, attribute flags, XFRM, MISCSELECT. It returns a
// *MismatchError on the first mismatch.
func (p *Policy) CheckReport(r *abi.ReportBody) error {
	if r == nil {
		return &MismatchError{Field: "report", Want: "a report body", Got: "none"}
	}
	switch {
	case p.MREnclave != nil:
		if r.MRENCLAVE != *p.MREnclave {
			return &MismatchError{Field: "mr_enclave", Want: hex.EncodeToString(p.MREnclave[:]), Got: hex.EncodeToString(r.MRENCLAVE[:])}
		}
	case p.MRSigner != nil:
		if r.MRSIGNER != *p.MRSigner {
			return &MismatchError{Field: "mr_signer", Want: hex.EncodeToString(p.MRSigner[:]), Got: hex.EncodeToString(r.MRSIGNER[:])}
		}
		if r.ISVProdID != p.ISVProdID {
			return &MismatchError{Field: "isv_prod_id", Want: strconv.Itoa(int(p.ISVProdID)), Got: strconv.Itoa(int(r.ISVProdID))}
		}
		if r.ISVSVN < p.MinISVSVN {
			return &MismatchError{Field: "min_isv_svn", Want: fmt.Sprintf("ISVSVN >= %d", p.MinISVSVN), Got: strconv.Itoa(int(r.ISVSVN))}
		}
	default:
		return &MismatchError{Field: "mr_enclave", Want: "a policy with mr_enclave or mr_signer", Got: "neither"}
	}
	if r.AttributesFlags&abi.AttributeDebug != 0 && !p.AllowDebug {
		return &MismatchError{Field: "allow_debug", Want: "a production enclave (DEBUG attribute clear)", Got: fmt.Sprintf("DEBUG set (flags %#x)", r.AttributesFlags)}
	}
	if got, want := r.AttributesFlags&p.AttributesMaskFlags, p.AttributesFlags|abi.AttributeInit; got != want {
		return &MismatchError{Field: "attributes_flags_hex", Want: fmt.Sprintf("flags & %s == %s (with INIT)", h64(p.AttributesMaskFlags), h64(want)), Got: h64(got)}
	}
	if got := r.AttributesXFRM & p.AttributesMaskXFRM; got != p.AttributesXFRM {
		return &MismatchError{Field: "attributes_xfrm_hex", Want: fmt.Sprintf("xfrm & %s == %s", h64(p.AttributesMaskXFRM), h64(p.AttributesXFRM)), Got: h64(got)}
	}
	if got := r.MiscSelect & p.MiscMask; got != p.MiscSelect {
		return &MismatchError{Field: "misc_select_hex", Want: fmt.Sprintf("misc_select & %s == %s", h32(p.MiscMask), h32(p.MiscSelect)), Got: h32(got)}
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
func (p *Policy) CheckStatus(status sgx.TCBStatus, advisoryIDs []string) error {
	acc := p.acceptedStatuses()
	if !slices.Contains(acc, status) {
		return &MismatchError{Field: "accepted_tcb_statuses", Want: fmt.Sprintf("one of %v", acc), Got: string(status)}
	}
	if p.AcceptedAdvisoryIDs != nil {
		for _, a := range advisoryIDs {
			if !slices.Contains(p.AcceptedAdvisoryIDs, a) {
				return &MismatchError{Field: "accepted_advisory_ids", Want: fmt.Sprintf("advisories within %v", p.AcceptedAdvisoryIDs), Got: a}
			}
		}
	}
	return nil
}

// Check checks a verified quote against the policy: the report body
// (CheckReport), the TCB status and advisories (CheckStatus), and the
// collateral's TCB evaluation data numbers and age. It returns a
// *MismatchError on the first mismatch.
func (p *Policy) Check(res *sgx.Result) error {
	if res == nil || res.ReportBody == nil {
		return &MismatchError{Field: "result", Want: "a verified quote", Got: "none"}
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
				return &MismatchError{Field: "min_tcb_evaluation_data_number", Want: fmt.Sprintf(">= %d", m), Got: strconv.FormatUint(uint64(n), 10)}
			}
		}
	}
	if p.MaxCollateralAge > 0 {
		for _, issued := range []time.Time{res.TCBInfoIssueDate, res.QEIdentityIssueDate} {
			if issued.IsZero() || res.VerifiedAt.Sub(issued) > p.MaxCollateralAge {
				return &MismatchError{Field: "max_collateral_age", Want: fmt.Sprintf("collateral issued at most %v before %s", p.MaxCollateralAge, res.VerifiedAt.UTC().Format(time.RFC3339)), Got: "issued " + issued.UTC().Format(time.RFC3339)}
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
	statuses := make([]string, 0, len(p.acceptedStatuses()))
	for _, s := range p.acceptedStatuses() {
		statuses = append(statuses, string(s))
	}
	w("# Combined TCB statuses (platform and quoting enclave) accepted.\n")
	w("accepted_tcb_statuses = %s\n", tomlList(statuses))
	if p.AcceptedAdvisoryIDs != nil {
		ids := p.AcceptedAdvisoryIDs
		w("\n# Every Intel security advisory of the quote's TCB levels must be listed here.\n")
		w("accepted_advisory_ids = %s\n", tomlList(ids))
	}
	if p.MinTCBEvaluationDataNumber > 0 {
		w("\n# Lowest TCB evaluation data number of the TCB info and QE identity.\n")
		w("min_tcb_evaluation_data_number = %d\n", p.MinTCBEvaluationDataNumber)
	}
	if p.MaxCollateralAge > 0 {
		w("\n# Oldest TCB info and QE identity accepted, from their issue date.\n")
		w("max_collateral_age = %s\n", tomlString(p.MaxCollateralAge.String()))
	}
	return b.Bytes()
}
