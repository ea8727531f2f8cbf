package ear

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Claim names of the EAR claims set, as the draft's JSON serialization
// names them.
const (
	keyProfile     = "eat_profile"
	keyIAT         = "iat"
	keyVerifierID  = "ear.verifier-id"
	keyRawEvidence = "ear.raw-evidence"
	keyNonce       = "eat_nonce"
	keySubmods     = "submods"

	keyStatus      = "ear.status"
	keyVector      = "ear.trustworthiness-vector"
	keyPolicyID    = "ear.appraisal-policy-id"
	keyAnnotated   = "ear.blindfold.annotated-evidence"
	keyWarnings    = "ear.blindfold.warnings"
	keyDeveloper   = "developer"
	keyBuild       = "build"
	maxJSONDepth   = 16
	minNonceChars  = 8
	maxNonceChars  = 88
	maxNonceValues = 16
)

// vectorKeys are the claims of an AR4SI trustworthiness vector.
var vectorKeys = []string{"instance-identity", "configuration", "executables", "file-system", "hardware", "runtime-opaque", "storage-opaque", "sourced-data"}

// Validate checks that b is one EAR claims set in JSON, as
// draft-ietf-rats-ear describes it, in this package's profile:
//
//   - one JSON object, no duplicate member names at any depth, at most
//     MaxSize bytes;
//   - eat_profile: the string Profile;
//   - iat: an integer (NumericDate);
//   - ear.verifier-id: an object of exactly "developer" and "build",
//     non-empty strings;
//   - submods: an object of at least one appraisal, each named by a
//     non-empty string;
//   - eat_nonce, when present: a string of 8 to 88 characters, or a
//     non-empty array of such strings;
//   - ear.raw-evidence, when present: base64url without padding;
//   - each appraisal: ear.status, one of "none", "affirming", "warning",
//     "contraindicated"; ear.trustworthiness-vector, when present, a
//     non-empty object of the AR4SI claims (instance-identity,
//     configuration, executables, file-system, hardware, runtime-opaque,
//     storage-opaque, sourced-data), each an integer from -128 to 127, and
//     a status no more trustworthy than the worst claim of its vector;
//     ear.appraisal-policy-id, when present, a string;
//   - this profile's extensions, when present:
//     ear.blindfold.annotated-evidence, an object whose values are strings,
//     booleans or arrays of strings; ear.blindfold.warnings, an array of
//     strings.
//
// Other claims are extensions and are allowed. Errors wrap ErrInvalid.
func Validate(b []byte) error {
	if len(b) > MaxSize {
		return invalidf("%d bytes, more than %d", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return invalidf("not UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return invalidf("%v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return invalidf("data after the claims set")
	}
	top, ok := v.(map[string]any)
	if !ok {
		return invalidf("the claims set is %s, want an object", kind(v))
	}
	if s, err := str(top, keyProfile, true); err != nil {
		return err
	} else if s != Profile {
		return invalidf("%s is %q, want %q", keyProfile, s, Profile)
	}
	if err := integer(top, keyIAT, math.MinInt64, math.MaxInt64, true); err != nil {
		return err
	}
	vid, err := object(top, keyVerifierID, true)
	if err != nil {
		return err
	}
	for _, k := range []string{keyDeveloper, keyBuild} {
		if s, err := str(vid, k, true); err != nil {
			return invalidf("%s: %s", keyVerifierID, detail(err))
		} else if s == "" {
			return invalidf("%s: %s is empty", keyVerifierID, k)
		}
	}
	if len(vid) != 2 {
		return invalidf("%s has members other than %s and %s", keyVerifierID, keyDeveloper, keyBuild)
	}
	if err := checkNonce(top); err != nil {
		return err
	}
	if s, err := str(top, keyRawEvidence, false); err != nil {
		return err
	} else if _, err := base64.RawURLEncoding.Strict().DecodeString(s); err != nil {
		return invalidf("%s is not base64url without padding: %v", keyRawEvidence, err)
	}
	subs, err := object(top, keySubmods, true)
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		return invalidf("%s is empty, want at least one appraisal", keySubmods)
	}
	for name, a := range subs {
		if name == "" {
			return invalidf("%s has an appraisal with an empty name", keySubmods)
		}
		obj, ok := a.(map[string]any)
		if !ok {
			return invalidf("submod %q is %s, want an object", name, kind(a))
		}
		if err := checkAppraisal(obj); err != nil {
			return invalidf("submod %q: %s", name, detail(err))
		}
	}
	return nil
}

func checkNonce(top map[string]any) error {
	v, ok := top[keyNonce]
	if !ok {
		return nil
	}
	one := func(x any) error {
		s, ok := x.(string)
		if !ok {
			return invalidf("%s is %s, want a string", keyNonce, kind(x))
		}
		if n := utf8.RuneCountInString(s); n < minNonceChars || n > maxNonceChars {
			return invalidf("%s has %d characters, want %d to %d", keyNonce, n, minNonceChars, maxNonceChars)
		}
		return nil
	}
	if l, ok := v.([]any); ok {
		if len(l) == 0 || len(l) > maxNonceValues {
			return invalidf("%s is an array of %d nonces, want 1 to %d", keyNonce, len(l), maxNonceValues)
		}
		for _, x := range l {
			if err := one(x); err != nil {
				return err
			}
		}
		return nil
	}
	return one(v)
}

func checkAppraisal(a map[string]any) error {
	s, err := str(a, keyStatus, true)
	if err != nil {
		return err
	}
	status := Status(s)
	if status.rank() < 0 {
		return invalidf("%s is %q, want none, affirming, warning or contraindicated", keyStatus, s)
	}
	tv, err := object(a, keyVector, false)
	if err != nil {
		return err
	}
	if tv != nil {
		if len(tv) == 0 {
			return invalidf("%s is empty", keyVector)
		}
		worst := StatusNone
		for k := range tv {
			if !slices.Contains(vectorKeys, k) {
				return invalidf("%s has the unknown claim %q", keyVector, k)
			}
			if err := integer(tv, k, -128, 127, true); err != nil {
				return invalidf("%s: %s", keyVector, detail(err))
			}
			n, _ := strconv.Atoi(string(tv[k].(json.Number)))
			if t := Claim(n).Tier(); t.rank() > worst.rank() {
				worst = t
			}
		}
		if status.rank() < worst.rank() {
			return invalidf("%s is %s, more trustworthy than the worst claim of its vector (%s)", keyStatus, status, worst)
		}
	}
	if _, err := str(a, keyPolicyID, false); err != nil {
		return err
	}
	ev, err := object(a, keyAnnotated, false)
	if err != nil {
		return err
	}
	for k, v := range ev {
		switch x := v.(type) {
		case string, bool:
		case []any:
			for _, e := range x {
				if _, ok := e.(string); !ok {
					return invalidf("%s: %q holds %s, want strings", keyAnnotated, k, kind(e))
				}
			}
		default:
			return invalidf("%s: %q is %s, want a string, a boolean or an array of strings", keyAnnotated, k, kind(v))
		}
	}
	if w, ok := a[keyWarnings]; ok {
		l, ok := w.([]any)
		if !ok {
			return invalidf("%s is %s, want an array of strings", keyWarnings, kind(w))
		}
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return invalidf("%s holds %s, want strings", keyWarnings, kind(e))
			}
		}
	}
	return nil
}

// detail returns the message of an ErrInvalid error without its prefix,
// to nest it in another.
func detail(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}

// str returns the string member k of m ("" when absent and not required).
func str(m map[string]any, k string, required bool) (string, error) {
	v, ok := m[k]
	if !ok {
		if required {
			return "", invalidf("%s is missing", k)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalidf("%s is %s, want a string", k, kind(v))
	}
	return s, nil
}

// object returns the object member k of m (nil when absent and not
// required).
func object(m map[string]any, k string, required bool) (map[string]any, error) {
	v, ok := m[k]
	if !ok {
		if required {
			return nil, invalidf("%s is missing", k)
		}
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf("%s is %s, want an object", k, kind(v))
	}
	return o, nil
}

// integer checks that member k of m is an integer in [lo, hi].
func integer(m map[string]any, k string, lo, hi int64, required bool) error {
	v, ok := m[k]
	if !ok {
		if required {
			return invalidf("%s is missing", k)
		}
		return nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return invalidf("%s is %s, want an integer", k, kind(v))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return invalidf("%s is %s, want an integer", k, n)
	}
	if i < lo || i > hi {
		return invalidf("%s is %d, want %d to %d", k, i, lo, hi)
	}
	return nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "unknown"
}

// decodeValue reads one JSON value, refusing duplicate member names and
// nesting deeper than maxJSONDepth.
func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested more than " + strconv.Itoa(maxJSONDepth) + " deep")
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string) // the decoder only yields strings as member names
				if _, dup := m[k]; dup {
					return nil, errors.New("member " + strconv.Quote(k) + " appears twice")
				}
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := d.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			l := []any{}
			for d.More() {
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := d.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, errors.New("unexpected " + t.String())
	default:
		return t, nil
	}
}
