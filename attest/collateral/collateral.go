// Package collateral reads, writes and verifies offline bundles of Intel
// DCAP collateral: for one or several platforms (FMSPC, PCK CA type, SGX or
// TDX), the PCK CRL with its issuer chain, the root CA CRL, the TCB info
// and the QE identity with their issuer chains and signatures, as Intel's
// PCS or a PCCS served them. A verifier that holds a bundle needs no
// network, and does not take a server's word for its collateral.
//
// A bundle is a JSON document (docs/collateral.md describes it). Nothing in
// it is trusted: Verify checks every item of every platform against the
// pinned Intel SGX Root CA at the verification time, and the bundle's
// validity window (the latest issueDate or thisUpdate to the earliest
// nextUpdate of all its items) is computed from the signed contents. The
// window, fetch time and source written in the file are informational.
package collateral

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

// Format is the value of a bundle's "format" key.
const Format = "blindfold-collateral-bundle"

// Version is the bundle format version this package reads and writes.
const Version = 1

// MaxBundleBytes bounds a bundle: each platform's collateral is a few tens
// of KiB.
const MaxBundleBytes = 16 << 20

// MaxSourceBytes is the longest source (where the collateral came from)
// a bundle may name.
const MaxSourceBytes = 512

// MaxPlatforms bounds the number of platforms of a bundle.
const MaxPlatforms = 256

// Bundle is collateral for one or several platforms.
type Bundle struct {
	// FetchedAt is when the collateral was fetched (informational).
	FetchedAt time.Time
	// Source is where it was fetched from (informational).
	Source string
	// ValidFrom and ValidUntil are the validity window as the writer
	// computed it (informational: Verify computes it again from the
	// signed contents and ignores these).
	ValidFrom, ValidUntil time.Time
	// Entries are the platforms' collateral, one per platform.
	Entries []Entry
}

// Entry is the collateral of one platform.
type Entry struct {
	// Platform is the FMSPC, PCK CA type and TEE the collateral is for;
	// Verify checks that the signed items say the same.
	Platform pccs.Platform
	// Collateral is the collateral as served.
	Collateral *sgx.Collateral
}

// ErrNoEntry means a bundle has no collateral for the platform asked for.
var ErrNoEntry = errors.New("collateral bundle: no collateral for the platform")

// Add adds the collateral of a platform. A platform may be added once.
func (b *Bundle) Add(p pccs.Platform, c *sgx.Collateral) error {
	if c == nil {
		return errors.New("collateral bundle: nil collateral")
	}
	p = normal(p)
	if _, err := pccs.ParsePlatform(hex.EncodeToString(p.FMSPC[:]), p.CA, p.TEE); err != nil {
		return fmt.Errorf("collateral bundle: %w", err)
	}
	if len(b.Entries) >= MaxPlatforms {
		return fmt.Errorf("collateral bundle: more than %d platforms", MaxPlatforms)
	}
	for _, e := range b.Entries {
		if e.Platform == p {
			return fmt.Errorf("collateral bundle: %s is in it twice", p)
		}
	}
	cc := *c
	// CRLs are kept as PEM, whatever the encoding they came in: JSON text
	// cannot hold DER, and the signature covers the DER only.
	for _, s := range []*string{&cc.PCKCRL, &cc.RootCACRL} {
		if crl, err := sgx.ParseCRL(sgx.ItemPCKCRL, *s); err == nil {
			*s = string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw}))
		}
	}
	for name, s := range map[string]string{
		"TCB info": cc.TCBInfo, "TCB info issuer chain": cc.TCBInfoIssuerChain,
		"QE identity": cc.QEIdentity, "QE identity issuer chain": cc.QEIdentityIssuerChain,
		"PCK CRL": cc.PCKCRL, "PCK CRL issuer chain": cc.PCKCRLIssuerChain, "root CA CRL": cc.RootCACRL,
	} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("collateral bundle: %s: the %s is not text", p, name)
		}
	}
	b.Entries = append(b.Entries, Entry{Platform: p, Collateral: &cc})
	return nil
}

// normal spells a platform's TEE out (empty means SGX).
func normal(p pccs.Platform) pccs.Platform {
	if p.TEE == "" {
		p.TEE = pccs.TEESGX
	}
	return p
}

// Platforms lists the bundle's platforms.
func (b *Bundle) Platforms() []pccs.Platform {
	out := make([]pccs.Platform, len(b.Entries))
	for i, e := range b.Entries {
		out[i] = e.Platform
	}
	return out
}

// The JSON shape of a bundle (see docs/collateral.md).
type fileJSON struct {
	Format     string      `json:"format"`
	Version    int         `json:"version"`
	FetchedAt  string      `json:"fetched_at,omitempty"`
	Source     string      `json:"source,omitempty"`
	ValidFrom  string      `json:"valid_from,omitempty"`
	ValidUntil string      `json:"valid_until,omitempty"`
	Platforms  []entryJSON `json:"platforms"`
}

type entryJSON struct {
	TEE                   string `json:"tee"`
	FMSPC                 string `json:"fmspc"`
	CA                    string `json:"ca"`
	TCBInfo               string `json:"tcb_info"`
	TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
	QEIdentity            string `json:"qe_identity"`
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	PCKCRL                string `json:"pck_crl"`
	PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
	RootCACRL             string `json:"root_ca_crl"`
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Marshal encodes the bundle as JSON. The TCB info and QE identity are
// kept byte for byte, as the signatures cover them.
func (b *Bundle) Marshal() ([]byte, error) {
	if len(b.Entries) == 0 {
		return nil, errors.New("collateral bundle: no platform")
	}
	f := fileJSON{
		Format: Format, Version: Version,
		FetchedAt: timeString(b.FetchedAt), Source: b.Source,
		ValidFrom: timeString(b.ValidFrom), ValidUntil: timeString(b.ValidUntil),
	}
	for _, e := range b.Entries {
		c := e.Collateral
		f.Platforms = append(f.Platforms, entryJSON{
			TEE: string(normal(e.Platform).TEE), FMSPC: strings.ToUpper(hex.EncodeToString(e.Platform.FMSPC[:])), CA: e.Platform.CA,
			TCBInfo: c.TCBInfo, TCBInfoIssuerChain: c.TCBInfoIssuerChain,
			QEIdentity: c.QEIdentity, QEIdentityIssuerChain: c.QEIdentityIssuerChain,
			PCKCRL: c.PCKCRL, PCKCRLIssuerChain: c.PCKCRLIssuerChain, RootCACRL: c.RootCACRL,
		})
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Parse decodes a bundle. Unknown keys, another format or version, and a
// platform given twice are refused; the collateral itself is not checked
// (Verify does).
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("collateral bundle: %d bytes, more than %d", len(data), MaxBundleBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("collateral bundle: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("collateral bundle: data after the JSON object")
	}
	if f.Format != Format {
		return nil, fmt.Errorf("collateral bundle: format %q, want %q", f.Format, Format)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("collateral bundle: version %d, this verifier reads version %d", f.Version, Version)
	}
	if len(f.Platforms) == 0 {
		return nil, errors.New("collateral bundle: no platform")
	}
	if len(f.Platforms) > MaxPlatforms {
		return nil, fmt.Errorf("collateral bundle: %d platforms, more than %d", len(f.Platforms), MaxPlatforms)
	}
	// The source is only shown to people: plain printable text of a
	// bounded length, so that a bundle cannot write control sequences to
	// the terminal that prints it.
	if len(f.Source) > MaxSourceBytes || strings.IndexFunc(f.Source, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, fmt.Errorf("collateral bundle: source is not printable text of at most %d bytes", MaxSourceBytes)
	}
	b := &Bundle{Source: f.Source}
	for _, t := range []struct {
		name string
		s    string
		out  *time.Time
	}{{"fetched_at", f.FetchedAt, &b.FetchedAt}, {"valid_from", f.ValidFrom, &b.ValidFrom}, {"valid_until", f.ValidUntil, &b.ValidUntil}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return nil, fmt.Errorf("collateral bundle: %s %q is not an RFC 3339 time", t.name, t.s)
		}
		*t.out = v
	}
	for i, e := range f.Platforms {
		if e.TEE != string(pccs.TEESGX) && e.TEE != string(pccs.TEETDX) {
			return nil, fmt.Errorf("collateral bundle: platforms[%d]: tee %q, want %q or %q", i, e.TEE, pccs.TEESGX, pccs.TEETDX)
		}
		p, err := pccs.ParsePlatform(e.FMSPC, e.CA, pccs.TEE(e.TEE))
		if err != nil {
			return nil, fmt.Errorf("collateral bundle: platforms[%d]: %w", i, err)
		}
		c := &sgx.Collateral{
			Version:            3,
			TCBInfo:            e.TCBInfo,
			TCBInfoIssuerChain: e.TCBInfoIssuerChain,
			QEIdentity:         e.QEIdentity, QEIdentityIssuerChain: e.QEIdentityIssuerChain,
			PCKCRL: e.PCKCRL, PCKCRLIssuerChain: e.PCKCRLIssuerChain, RootCACRL: e.RootCACRL,
		}
		if err := b.Add(p, c); err != nil {
			return nil, fmt.Errorf("platforms[%d]: %w", i, err)
		}
	}
	return b, nil
}

// ReadFile reads and parses the bundle at path, refusing a file larger
// than MaxBundleBytes before reading it.
func ReadFile(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Check is what Verify found.
type Check struct {
	// Entries are the verified items of each platform, in the bundle's
	// order.
	Entries []EntryCheck
	// Issued is the latest issueDate or thisUpdate of all items of all
	// platforms; NextUpdate the earliest nextUpdate. The bundle verifies
	// from Issued until (not at) NextUpdate.
	Issued, NextUpdate time.Time
	// VerifiedAt is the verification time.
	VerifiedAt time.Time
}

// EntryCheck is what Verify found for one platform.
type EntryCheck struct {
	Platform pccs.Platform
	*sgx.CollateralCheck
}

// WindowError means the verification time is outside the bundle's validity
// window, which the signed contents give. It matches
// attest.ErrStaleCollateral.
type WindowError struct {
	// Issued and NextUpdate bound the window (see Check).
	Issued, NextUpdate time.Time
	// At is the verification time.
	At time.Time
}

// Error says the window and how far outside it the verification time is.
func (e *WindowError) Error() string {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if e.At.Before(e.Issued) {
		return fmt.Sprintf("collateral bundle: not yet valid: its collateral is valid from %s to %s, and the verification time %s is %v before that", f(e.Issued), f(e.NextUpdate), f(e.At), e.Issued.Sub(e.At))
	}
	return fmt.Sprintf("collateral bundle: expired: its collateral is valid from %s to %s, and expired %v before the verification time %s; fetch a new bundle", f(e.Issued), f(e.NextUpdate), e.At.Sub(e.NextUpdate), f(e.At))
}

// Unwrap returns attest.ErrStaleCollateral.
func (e *WindowError) Unwrap() error { return attest.ErrStaleCollateral }

// Verify checks every item of every platform at opts.Now (time.Now when
// nil) against the pinned Intel SGX Root CA (opts.TestRoot in tests), as
// sgx.VerifyCollateral and pccs.Fetched.Verify do: signing chains,
// signatures over the exact bytes, CRLs, revocation, dates, and that the
// signed items are for the platform they are filed under. A verification
// time outside the bundle's window gives a *WindowError; any other failure
// names the platform and the item.
func (b *Bundle) Verify(opts sgx.Options) (*Check, error) {
	if len(b.Entries) == 0 {
		return nil, errors.New("collateral bundle: no platform")
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	check, err := b.verifyAt(opts, now)
	if err == nil {
		return check, nil
	}
	if !errors.Is(err, sgx.ErrExpired) && !errors.Is(err, sgx.ErrNotYetValid) {
		return nil, err
	}
	// A date check failed: tell the window, once it is known from
	// collateral whose signatures verify. The window read from the
	// unverified contents only gives a time to verify them at.
	from, until, ok := b.unverifiedWindow()
	if !ok || !from.Before(until) {
		return nil, err
	}
	inside, err2 := b.verifyAt(opts, from)
	if err2 != nil {
		return nil, err2
	}
	if now.Before(inside.Issued) || !now.Before(inside.NextUpdate) {
		return nil, &WindowError{Issued: inside.Issued, NextUpdate: inside.NextUpdate, At: now}
	}
	return nil, err
}

func (b *Bundle) verifyAt(opts sgx.Options, now time.Time) (*Check, error) {
	opts.Now = func() time.Time { return now }
	out := &Check{VerifiedAt: now}
	for _, e := range b.Entries {
		f := &pccs.Fetched{Platform: e.Platform, Collateral: e.Collateral}
		c, err := f.Verify(opts)
		if err != nil {
			return nil, fmt.Errorf("collateral bundle: %s: %w", e.Platform, err)
		}
		out.Entries = append(out.Entries, EntryCheck{Platform: e.Platform, CollateralCheck: c})
		for _, t := range []time.Time{c.TCBInfo.IssueDate, c.QEIdentity.IssueDate, c.PCKCRL.ThisUpdate, c.RootCACRL.ThisUpdate} {
			if t.After(out.Issued) {
				out.Issued = t
			}
		}
		if out.NextUpdate.IsZero() || c.NextUpdate.Before(out.NextUpdate) {
			out.NextUpdate = c.NextUpdate
		}
	}
	return out, nil
}

// unverifiedWindow reads the window from the items without checking them,
// skipping those that do not decode (verifying then names them); ok is
// false when none decodes.
func (b *Bundle) unverifiedWindow() (from, until time.Time, ok bool) {
	add := func(issued, next time.Time) {
		if issued.IsZero() || next.IsZero() {
			return
		}
		if issued.After(from) {
			from = issued
		}
		if until.IsZero() || next.Before(until) {
			until = next
		}
		ok = true
	}
	for _, e := range b.Entries {
		c := e.Collateral
		for _, r := range []struct{ text, key string }{{c.TCBInfo, "tcbInfo"}, {c.QEIdentity, "enclaveIdentity"}} {
			var m map[string]json.RawMessage
			var d struct {
				IssueDate  time.Time `json:"issueDate"`
				NextUpdate time.Time `json:"nextUpdate"`
			}
			if json.Unmarshal([]byte(r.text), &m) == nil && json.Unmarshal(m[r.key], &d) == nil {
				add(d.IssueDate, d.NextUpdate)
			}
		}
		for _, s := range []string{c.PCKCRL, c.RootCACRL} {
			if crl, err := sgx.ParseCRL(sgx.ItemPCKCRL, s); err == nil {
				add(crl.ThisUpdate, crl.NextUpdate)
			}
		}
	}
	return from, until, ok
}

// Lookup returns the collateral of platform p (TEE empty meaning SGX), or
// an error wrapping ErrNoEntry that names the platforms the bundle has.
func (b *Bundle) Lookup(p pccs.Platform) (*sgx.Collateral, error) {
	p = normal(p)
	var have []string
	for _, e := range b.Entries {
		if e.Platform == p {
			c := *e.Collateral
			return &c, nil
		}
		have = append(have, e.Platform.String()+teeSuffix(e.Platform))
	}
	return nil, fmt.Errorf("%w: the quote needs %s%s; the bundle has %s", ErrNoEntry, p, teeSuffix(p), strings.Join(have, "; "))
}

// teeSuffix says " tee=sgx" for SGX, whose Platform.String says nothing.
func teeSuffix(p pccs.Platform) string {
	if normal(p).TEE == pccs.TEESGX {
		return " tee=sgx"
	}
	return ""
}

// QuotePlatform returns the platform of a quote's PCK certificate: an SGX
// quote (version 3) or a TDX quote (version 4 or 5, TEE type TDX).
func QuotePlatform(quote []byte) (pccs.Platform, error) {
	if len(quote) < 8 {
		return pccs.Platform{}, fmt.Errorf("collateral bundle: quote of %d bytes", len(quote))
	}
	switch version := uint16(quote[0]) | uint16(quote[1])<<8; version {
	case 3:
		q, err := abi.ParseQuote(quote)
		if err != nil {
			return pccs.Platform{}, fmt.Errorf("collateral bundle: %w", err)
		}
		p, err := pccs.QuotePlatform(q)
		if err != nil {
			return pccs.Platform{}, fmt.Errorf("collateral bundle: %w", err)
		}
		return normal(p), nil
	case 4, 5:
		p, err := tdx.PlatformOf(quote)
		if err != nil {
			return pccs.Platform{}, fmt.Errorf("collateral bundle: %w", err)
		}
		return p, nil
	default:
		return pccs.Platform{}, fmt.Errorf("collateral bundle: quote version %d is neither an SGX quote (3) nor a TDX quote (4 or 5)", version)
	}
}

// ForQuote verifies the whole bundle at opts.Now (see Verify) and returns
// the collateral of the quote's platform (FMSPC, PCK CA type and TEE, from
// the PCK certificate in the quote). The quote itself is not verified:
// verify it with the collateral returned, at the same time.
func (b *Bundle) ForQuote(quote []byte, opts sgx.Options) (*sgx.Collateral, error) {
	p, err := QuotePlatform(quote)
	if err != nil {
		return nil, err
	}
	c, err := b.Lookup(p)
	if err != nil {
		return nil, err
	}
	if _, err := b.Verify(opts); err != nil {
		return nil, err
	}
	return c, nil
}

// Evidence returns SGX or TDX evidence with its collateral replaced by the
// bundle's for its quote (see ForQuote), so that a verifier judges the
// quote by the bundle, not by what came with it. Evidence of another type
// is refused: a verifier told to use a bundle does not fall back to
// collateral it was not given. Errors are *attest.Error: stale
// (attest.ErrStaleCollateral) when the verification time is outside the
// bundle's window, bad evidence otherwise.
func (b *Bundle) Evidence(ev *attest.Evidence, opts sgx.Options) (*attest.Evidence, error) {
	if ev == nil {
		return nil, attest.BadEvidence("", "no evidence", nil)
	}
	if ev.Type != attest.TypeSGXDCAP && ev.Type != attest.TypeTDX {
		return nil, attest.BadEvidence(ev.Type, "a collateral bundle was given, and it holds collateral for SGX and TDX quotes only", nil)
	}
	c, err := b.ForQuote(ev.Raw, opts)
	if err != nil {
		if errors.Is(err, attest.ErrStaleCollateral) {
			return nil, attest.Stale(ev.Type, attest.ErrBadEvidence, "", err)
		}
		return nil, attest.BadEvidence(ev.Type, "", err)
	}
	enc, err := sgx.EncodeCollateral(c)
	if err != nil {
		return nil, attest.BadEvidence(ev.Type, "", err)
	}
	return &attest.Evidence{Type: ev.Type, Raw: ev.Raw, Collateral: enc}, nil
}
