// Package tdx verifies Intel TDX quotes (versions 4 and 5, ECDSA P-256)
// for Blindfold, and holds a TD to the [tdx] section of a policy.
//
// Verify checks, and fails closed on any failure: the PCK certificate
// chain of the quote to the pinned Intel SGX Root CA (or a test root), the
// root CA CRL and PCK CRL (both required), the TDX TCB info and the TD QE
// identity with their signing chains, signatures and validity windows, the
// QE report and the quote's signatures, the TDX module's identity
// (MRSIGNERSEAM and SEAM attributes against the TCB info), that the
// platform, the QE and the TDX module are at an UpToDate TCB level, and
// that copies of the PCK certificate and its signing chain in the
// collateral, when present, are the quote's. Collateral comes with the
// evidence or, when it does not, from a Fetcher (a PCCS or Intel's PCS
// through attest/pccs). The time is injectable.
//
// Version 4 quotes are verified with github.com/google/go-tdx-guest.
// Version 5 quotes (TDX 1.5 platforms), which that library's release does
// not verify, are parsed and verified here to the same rules, with a TD
// report 1.0 body (type 2) or 1.5 body (type 3, whose TEE_TCB_SVN_2 and
// MRSERVICETD the Result carries); a version 5 quote's signature covers
// its header, body descriptor and body.
package tdx

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	tdxabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxverify "github.com/google/go-tdx-guest/verify"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// MaxQuoteBytes is the largest quote accepted.
const MaxQuoteBytes = 64 << 10

// Policy is what a Verifier holds a TD to: package policy's TDX section
// implements it.
type Policy interface {
	// Check checks a verified quote.
	Check(r *Result) error
}

// Fetcher fetches TDX collateral for a platform (attest/pccs's Cache is
// one).
type Fetcher interface {
	ForPlatform(ctx context.Context, p pccs.Platform) (*sgx.Collateral, error)
}

// Options say how quotes are verified.
type Options struct {
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
	// TestRoot replaces the pinned Intel SGX Root CA. FOR TESTS ONLY:
	// evidence that chains to it proves nothing about hardware.
	TestRoot *x509.Certificate
	// Fetcher fetches collateral for evidence that comes without it; nil:
	// such evidence is refused.
	Fetcher Fetcher
}

// Verifier verifies TDX evidence (attest.TypeTDX) against a policy: it
// implements attest.Verifier.
type Verifier struct {
	policy Policy
	opts   Options
}

// NewVerifier returns a verifier that holds TDs to p.
func NewVerifier(p Policy, o Options) (*Verifier, error) {
	if p == nil {
		return nil, fmt.Errorf("tdx: %w", attest.ErrNoPolicy)
	}
	return &Verifier{policy: p, opts: o}, nil
}

// Type returns attest.TypeTDX.
func (v *Verifier) Type() string { return attest.TypeTDX }

// ErrUnsupported means the quote's version or format is not one this
// package verifies.
var ErrUnsupported = errors.New("tdx: unsupported quote")

// ErrMalformed means the quote does not parse.
var ErrMalformed = errors.New("tdx: malformed quote")

// ErrCollateral means the collateral is missing, malformed, or cannot be
// fetched.
var ErrCollateral = errors.New("tdx: collateral")

// ErrVerify means the quote or its collateral fails verification (chain,
// CRL, signature, dates, TCB level).
var ErrVerify = errors.New("tdx: verification failed")

// Verify verifies the quote and its collateral, then the policy. It does
// not check the report data binding (attest.Registry does).
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence) (*attest.Claims, error) {
	const typ = attest.TypeTDX
	if ev == nil || ev.Type != typ {
		return nil, attest.BadEvidence(typ, "evidence of another type", nil)
	}
	now := time.Now()
	if v.opts.Now != nil {
		now = v.opts.Now()
	}
	res, err := v.verify(ctx, ev, now)
	if err != nil {
		if isStale(err) {
			return nil, attest.Stale(typ, attest.ErrBadEvidence, "", err)
		}
		return nil, attest.BadEvidence(typ, "", err)
	}
	if err := v.policy.Check(res); err != nil {
		return nil, attest.PolicyMismatch(typ, "", err)
	}
	return Claims(res, v.opts.TestRoot != nil), nil
}

// verify verifies a version 4 or 5 quote and its collateral.
func (v *Verifier) verify(ctx context.Context, ev *attest.Evidence, now time.Time) (*Result, error) {
	if len(ev.Raw) >= 2 && binary.LittleEndian.Uint16(ev.Raw) == 5 {
		q, err := parseQuoteV5(ev.Raw)
		if err != nil {
			return nil, err
		}
		col, err := v.collateral(ctx, ev.Raw, ev.Collateral)
		if err != nil {
			return nil, err
		}
		return verifyQuoteV5(q, col, now, v.opts.TestRoot)
	}
	q, err := ParseQuote(ev.Raw)
	if err != nil {
		return nil, err
	}
	col, err := v.collateral(ctx, ev.Raw, ev.Collateral)
	if err != nil {
		return nil, err
	}
	return verifyQuote(q, col, now, v.opts.TestRoot)
}

// ParseQuote parses a TDX quote: version 4, TDX TEE type, Intel's QE
// vendor ID, every size inside it consistent, a PCK certificate chain of
// three canonical PEM certificates, no bytes after the quote.
func ParseQuote(raw []byte) (*pb.QuoteV4, error) {
	if len(raw) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	if len(raw) > MaxQuoteBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxQuoteBytes)
	}
	if ver := uint16(raw[0]) | uint16(raw[1])<<8; ver != 4 {
		return nil, fmt.Errorf("%w: quote version %d (ParseQuote parses version 4; PlatformOf and Verifier also take version 5)", ErrUnsupported, ver)
	}
	// The layout is walked here first, every size checked against the
	// bytes there are: go-tdx-guest v0.3.1's parser indexes past the end
	// of a quote whose sizes do not add up, and panics.
	layout, err := parseLayout(raw)
	if err != nil {
		return nil, err
	}
	if _, err := pckChainCerts(layout.pckChain); err != nil {
		return nil, err
	}
	anyQ, err := quoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	q, ok := anyQ.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupported, anyQ)
	}
	if err := tdxabi.CheckQuoteV4(q); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if q.GetHeader().GetTeeType() != tdxabi.TeeTDX {
		return nil, fmt.Errorf("%w: TEE type %#x is not TDX", ErrUnsupported, q.GetHeader().GetTeeType())
	}
	// The quote must be exactly what was parsed: bytes after the signed
	// data are covered by no signature, so none is accepted (configfs-tsm
	// returns a quote of its exact length).
	if n := len(q.GetExtraBytes()); n > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the quote's signed data", ErrMalformed, n)
	}
	return q, nil
}

// quoteToProto is go-tdx-guest's parser, with a panic turned into an
// error.
func quoteToProto(raw []byte) (q any, err error) {
	defer func() {
		if p := recover(); p != nil {
			q, err = nil, fmt.Errorf("the quote's layout: %v", p)
		}
	}()
	return tdxabi.QuoteToProto(raw)
}

// pckCertificate returns the PCK leaf certificate of the quote's
// certification data.
func pckCertificate(q *pb.QuoteV4) (*x509.Certificate, error) {
	chain := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: the quote's PCK certificate chain does not start with a PEM certificate", ErrMalformed)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate: %v", ErrMalformed, err)
	}
	return c, nil
}

// QuotePlatform returns the FMSPC and CA type of the quote's PCK
// certificate (TEE tdx): what its collateral is fetched for.
func QuotePlatform(q *pb.QuoteV4) (pccs.Platform, error) {
	cert, err := pckCertificate(q)
	if err != nil {
		return pccs.Platform{}, err
	}
	ext, err := pcs.PckCertificateExtensions(cert)
	if err != nil {
		return pccs.Platform{}, fmt.Errorf("%w: PCK certificate extensions: %v", ErrMalformed, err)
	}
	ca := ""
	switch cert.Issuer.CommonName {
	case "Intel SGX PCK Processor CA":
		ca = pccs.CAProcessor
	case "Intel SGX PCK Platform CA":
		ca = pccs.CAPlatform
	default:
		return pccs.Platform{}, fmt.Errorf("%w: PCK certificate issuer %q", ErrMalformed, cert.Issuer.CommonName)
	}
	p, err := pccs.ParsePlatform(ext.FMSPC, ca, pccs.TEETDX)
	if err != nil {
		return pccs.Platform{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return p, nil
}

func (v *Verifier) collateral(ctx context.Context, raw, enc []byte) (*sgx.Collateral, error) {
	if len(enc) > 0 {
		c, err := sgx.DecodeCollateral(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCollateral, err)
		}
		return c, nil
	}
	if v.opts.Fetcher == nil {
		return nil, fmt.Errorf("%w: none came with the quote and no PCCS is configured to fetch it", ErrCollateral)
	}
	p, err := PlatformOf(raw)
	if err != nil {
		return nil, err
	}
	c, err := v.opts.Fetcher.ForPlatform(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching for %s: %w", ErrCollateral, p, err)
	}
	return c, nil
}

// EncodeCollateral encodes collateral as attest.Evidence.Collateral holds
// it for TDX: the same message as for SGX.
func EncodeCollateral(c *sgx.Collateral) ([]byte, error) { return sgx.EncodeCollateral(c) }

// crlDER returns the DER of a CRL given as PEM, DER or hex of DER, held to
// sgx.ParseCRL's strict reading.
func crlDER(item sgx.Item, s string) ([]byte, error) {
	if strings.Trim(s, " \t\r\n") == "" {
		return nil, errors.New("empty")
	}
	crl, err := sgx.ParseCRL(item, s)
	if err != nil {
		return nil, err
	}
	return crl.Raw, nil
}

// pcsResponse splits a PCS response {"<key>": body, "signature": hex} into
// the exact bytes of the body and the signature.
func pcsResponse(text, key string) (json.RawMessage, json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %s response: %v", ErrCollateral, key, err)
	}
	body, sig := m[key], m["signature"]
	if len(body) == 0 || len(sig) == 0 {
		return nil, nil, fmt.Errorf("%w: %s response without %s or signature", ErrCollateral, key, key)
	}
	if len(m) != 2 { // as for SGX: nothing unsigned beside the two
		return nil, nil, fmt.Errorf("%w: %s response has %d keys, want exactly %q and \"signature\"", ErrCollateral, key, len(m), key)
	}
	return body, sig, nil
}

// tcbInfoResponse returns the TCB info response to serve to go-tdx-guest.
//
// go-tdx-guest v0.3.1 compares the FMSPC of the PCK certificate, which it
// renders in lower case, with the TCB info's "fmspc" as a case-sensitive
// string, while Intel's PCS writes it in upper case: real collateral then
// never matches. The response served keeps the signed body byte for byte
// under "tcbInfo" (the signature is checked over it) and adds the same
// body with only "fmspc" in lower case under "TCBINFO", which
// encoding/json's case-insensitive field matching decodes last into the
// structure that go-tdx-guest checks. The FMSPC itself is compared here,
// ignoring case, before.
func tcbInfoResponse(text string, fmspc string) ([]byte, error) {
	body, sig, err := pcsResponse(text, "tcbInfo")
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("%w: TCB info body: %v", ErrCollateral, err)
	}
	var got string
	if err := json.Unmarshal(fields["fmspc"], &got); err != nil || !strings.EqualFold(got, fmspc) {
		return nil, fmt.Errorf("%w: the TCB info is for FMSPC %q, the PCK certificate's is %s", ErrCollateral, got, fmspc)
	}
	var id string
	if err := json.Unmarshal(fields["id"], &id); err != nil || id != "TDX" {
		return nil, fmt.Errorf("%w: the TCB info's id is %q, not TDX", ErrCollateral, id)
	}
	fields["fmspc"], _ = json.Marshal(strings.ToLower(got))
	lower, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	out := []byte(`{"tcbInfo":`)
	out = append(out, body...)
	out = append(out, `,"signature":`...)
	out = append(out, sig...)
	out = append(out, `,"TCBINFO":`...)
	out = append(out, lower...)
	return append(out, '}'), nil
}

// window checks that now is inside [issue, next] of a signed body's
// issueDate and nextUpdate.
func window(name string, body json.RawMessage, now time.Time) error {
	var d struct {
		IssueDate  time.Time `json:"issueDate"`
		NextUpdate time.Time `json:"nextUpdate"`
	}
	if err := json.Unmarshal(body, &d); err != nil || d.IssueDate.IsZero() || d.NextUpdate.IsZero() {
		return fmt.Errorf("%w: %s has no valid issueDate and nextUpdate", ErrCollateral, name)
	}
	return dates(name, d.IssueDate, d.NextUpdate, now)
}

func dates(name string, issued, next, now time.Time) error {
	if now.Before(issued) {
		return &staleError{fmt.Sprintf("%s is not valid before %s (verified at %s)", name, issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	if now.After(next) {
		return &staleError{fmt.Sprintf("%s expired at its next update, %s (verified at %s)", name, next.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	return nil
}

// staleError is collateral used outside its validity window.
type staleError struct{ msg string }

func (e *staleError) Error() string { return "tdx: stale collateral: " + e.msg }

// checkDates checks the validity windows of the TCB info, the QE identity
// and both CRLs at now.
func checkDates(c *sgx.Collateral, pckCRL, rootCRL []byte, now time.Time) error {
	for _, x := range []struct{ name, text, key string }{{"TCB info", c.TCBInfo, "tcbInfo"}, {"QE identity", c.QEIdentity, "enclaveIdentity"}} {
		body, _, err := pcsResponse(x.text, x.key)
		if err != nil {
			return err
		}
		if err := window(x.name, body, now); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		name string
		der  []byte
	}{{"PCK CRL", pckCRL}, {"root CA CRL", rootCRL}} {
		crl, err := x509.ParseRevocationList(x.der)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCollateral, x.name, err)
		}
		if err := dates(x.name, crl.ThisUpdate, crl.NextUpdate, now); err != nil {
			return err
		}
	}
	return nil
}

// getter serves collateral to go-tdx-guest's verifier as if it came from
// Intel's PCS: every URL it asks for is answered from the collateral, and
// only those.
type getter struct {
	tcbURL, qeURL, pckCRLURL string
	c                        *sgx.Collateral
	tcbInfo, pckCRL, rootCRL []byte
}

func header(name, pemChain string) map[string][]string {
	return map[string][]string{name: {url.QueryEscape(pemChain)}}
}

// Get implements go-tdx-guest's trust.HTTPSGetter.
func (g *getter) Get(u string) (map[string][]string, []byte, error) {
	switch u {
	case g.tcbURL:
		return header("Tcb-Info-Issuer-Chain", g.c.TCBInfoIssuerChain), g.tcbInfo, nil
	case g.qeURL:
		return header("Sgx-Enclave-Identity-Issuer-Chain", g.c.QEIdentityIssuerChain), []byte(g.c.QEIdentity), nil
	case g.pckCRLURL:
		chain := g.c.PCKCRLIssuerChain
		if chain == "" {
			return nil, nil, fmt.Errorf("%w: no PCK CRL issuer chain", ErrCollateral)
		}
		return header("Sgx-Pck-Crl-Issuer-Chain", chain), g.pckCRL, nil
	}
	// The root CA CRL is asked for at the CRL distribution point of the
	// root certificate of the QE identity's issuer chain.
	return nil, g.rootCRL, nil
}

func verifyQuote(q *pb.QuoteV4, c *sgx.Collateral, now time.Time, testRoot *x509.Certificate) (*Result, error) {
	p, err := QuotePlatform(q)
	if err != nil {
		return nil, err
	}
	if c == nil || c.TCBInfo == "" || c.QEIdentity == "" || c.TCBInfoIssuerChain == "" || c.QEIdentityIssuerChain == "" {
		return nil, fmt.Errorf("%w: TCB info, QE identity and their issuer chains are required", ErrCollateral)
	}
	pckCRL, err := crlDER(sgx.ItemPCKCRL, c.PCKCRL)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK CRL is required: %v", ErrCollateral, err)
	}
	rootCRL, err := crlDER(sgx.ItemRootCACRL, c.RootCACRL)
	if err != nil {
		return nil, fmt.Errorf("%w: root CA CRL is required: %v", ErrCollateral, err)
	}
	if err := collateralPCK(q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain(), c); err != nil {
		return nil, err
	}
	// go-tdx-guest reads the issuer chains with encoding/pem, which skips
	// text before a block and ignores unused base64 bits: hold them to the
	// strict parser first, so that no byte of the collateral goes unchecked.
	for _, ch := range []struct{ what, text string }{{"TCB info issuer chain", c.TCBInfoIssuerChain}, {"QE identity issuer chain", c.QEIdentityIssuerChain}, {"PCK CRL issuer chain", c.PCKCRLIssuerChain}} {
		if ch.text == "" && ch.what == "PCK CRL issuer chain" {
			continue
		}
		if _, err := pemCerts(ch.what, ch.text); err != nil {
			return nil, err
		}
	}
	if err := checkDates(c, pckCRL, rootCRL, now); err != nil {
		return nil, err
	}
	fmspc := strings.ToLower(hex.EncodeToString(p.FMSPC[:]))
	tcbInfo, err := tcbInfoResponse(c.TCBInfo, fmspc)
	if err != nil {
		return nil, err
	}
	root := sgx.IntelRootCA()
	if testRoot != nil {
		root = testRoot
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	g := &getter{
		tcbURL: pcs.TcbInfoURL(fmspc), qeURL: pcs.QeIdentityURL(), pckCRLURL: pcs.PckCrlURL(p.CA),
		c: c, tcbInfo: tcbInfo, pckCRL: pckCRL, rootCRL: rootCRL,
	}
	opts := &tdxverify.Options{CheckRevocations: true, GetCollateral: true, Getter: g, Now: now, TrustedRoots: pool}
	if err := tdxverify.TdxQuote(q, opts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return resultOf(q, p, now), nil
}

// isStale reports whether a verification error is about collateral dates.
func isStale(err error) bool {
	var se *staleError
	return errors.As(err, &se)
}

func resultOf(q *pb.QuoteV4, p pccs.Platform, now time.Time) *Result {
	b := q.GetTdQuoteBody()
	r := &Result{Version: uint16(q.GetHeader().GetVersion()), BodyType: BodyTD10, FMSPC: strings.ToUpper(hex.EncodeToString(p.FMSPC[:])), VerifiedAt: now}
	copy(r.TEETCBSVN[:], b.GetTeeTcbSvn())
	copy(r.MRSEAM[:], b.GetMrSeam())
	copy(r.MRSignerSEAM[:], b.GetMrSignerSeam())
	r.SEAMAttributes = le64(b.GetSeamAttributes())
	r.TDAttributes = le64(b.GetTdAttributes())
	r.XFAM = le64(b.GetXfam())
	copy(r.MRTD[:], b.GetMrTd())
	copy(r.MRConfigID[:], b.GetMrConfigId())
	copy(r.MROwner[:], b.GetMrOwner())
	copy(r.MROwnerConfig[:], b.GetMrOwnerConfig())
	for i, m := range b.GetRtmrs() {
		if i < len(r.RTMR) {
			copy(r.RTMR[i][:], m)
		}
	}
	copy(r.ReportData[:], b.GetReportData())
	return r
}

func le64(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// Claims returns the claims of a verified quote.
func Claims(r *Result, testRoot bool) *attest.Claims {
	h := func(b []byte) string { return hex.EncodeToString(b) }
	list := []attest.Claim{
		{Name: "mrtd", Value: h(r.MRTD[:])},
		{Name: "rtmr0", Value: h(r.RTMR[0][:])},
		{Name: "rtmr1", Value: h(r.RTMR[1][:])},
		{Name: "rtmr2", Value: h(r.RTMR[2][:])},
		{Name: "rtmr3", Value: h(r.RTMR[3][:])},
		{Name: "mrseam", Value: h(r.MRSEAM[:])},
		{Name: "td_attributes", Value: fmt.Sprintf("%#x (debug %t)", r.TDAttributes, r.TDAttributes&AttrDebug != 0)},
		{Name: "xfam", Value: fmt.Sprintf("%#x", r.XFAM)},
		{Name: "tee_tcb_svn", Value: h(r.TEETCBSVN[:])},
		{Name: "mr_config_id", Value: h(r.MRConfigID[:])},
		{Name: "mr_owner", Value: h(r.MROwner[:])},
		{Name: "mr_owner_config", Value: h(r.MROwnerConfig[:])},
		{Name: "fmspc", Value: r.FMSPC},
		{Name: "tcb_status", Value: "UpToDate"},
		{Name: "verified_at", Value: r.VerifiedAt.UTC().Format(time.RFC3339)},
	}
	if r.BodyType == BodyTD15 {
		list = append(list, attest.Claim{Name: "tee_tcb_svn2", Value: h(r.TEETCBSVN2[:])}, attest.Claim{Name: "mr_servicetd", Value: h(r.MRServiceTD[:])})
	}
	return &attest.Claims{Type: attest.TypeTDX, ReportData: r.ReportData, List: list, TestRoot: testRoot, Details: r}
}

// ResultOf returns the TDX result of verified claims, or nil.
func ResultOf(c *attest.Claims) *Result {
	if c == nil {
		return nil
	}
	r, _ := c.Details.(*Result)
	return r
}
