// Package pccs fetches Intel DCAP collateral (TCB info, QE identity, PCK
// CRL, root CA CRL) for SGX enclaves and TDX guests from a PCCS (Intel's
// Provisioning Certificate Caching Service) or from Intel's Provisioning
// Certification Service (PCS), API version 4, and caches it in memory until
// shortly before its earliest nextUpdate.
//
// The server fetches collateral outside the trust boundary: everything
// fetched is signed by Intel and verified by the client, so a PCCS that
// lies can deny service but cannot make a client trust anything. Fetch
// checks only what it needs to cache sensibly (that bodies parse, that they
// are for the TEE and FMSPC asked for, the nextUpdate dates); Fetched.Verify
// checks signatures and chains up to the pinned Intel root, for operators
// who test a PCCS before the first client connects.
//
// The wire contract, as Intel's PCCS and PCS serve it (relative to the base
// URL; issuer chains are percent-encoded PEM, leaf first):
//
//	GET /sgx/certification/v4/tcb?fmspc=HEX      JSON; header TCB-Info-Issuer-Chain
//	                                             (API v3: SGX-TCB-Info-Issuer-Chain)
//	GET /sgx/certification/v4/qe/identity        JSON; header SGX-Enclave-Identity-Issuer-Chain
//	GET /tdx/certification/v4/tcb?fmspc=HEX      as above, for TDX
//	GET /tdx/certification/v4/qe/identity        as above, for the TD QE
//	GET /sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der
//	                                             DER (PEM without encoding=der);
//	                                             header SGX-PCK-CRL-Issuer-Chain
//	GET /sgx/certification/v4/rootcacrl          PCCS only: hex of the DER; with
//	                                             Intel's PCS the root CA CRL is DER at the
//	                                             root certificate's CRL distribution point
//
// Exactly these header names are accepted. A response without the one
// expected is refused with an error naming it and the headers present.
package pccs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// IntelPCSURL is the base URL of Intel's Provisioning Certification Service.
const IntelPCSURL = "https://api.trustedservices.intel.com"

// Paths of the PCS/PCCS API version 4, relative to the base URL.
const (
	PathTCBInfo       = "/sgx/certification/v4/tcb"
	PathQEIdentity    = "/sgx/certification/v4/qe/identity"
	PathTDXTCBInfo    = "/tdx/certification/v4/tcb"
	PathTDXQEIdentity = "/tdx/certification/v4/qe/identity"
	PathPCKCRL        = "/sgx/certification/v4/pckcrl"
	PathRootCACRL     = "/sgx/certification/v4/rootcacrl"
)

// Issuer-chain response headers as Intel's PCCS and PCS name them, the API
// version 4 name first.
var (
	HeaderTCBInfoIssuerChain    = []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}
	HeaderQEIdentityIssuerChain = []string{"SGX-Enclave-Identity-Issuer-Chain"}
	HeaderPCKCRLIssuerChain     = []string{"SGX-PCK-CRL-Issuer-Chain"}
)

// CA types of PCK certificates (the pckcrl ca parameter).
const (
	CAProcessor = "processor"
	CAPlatform  = "platform"
)

// TEE selects the TCB info and QE identity fetched for a platform.
type TEE string

// TEEs. The zero value means SGX.
const (
	TEESGX TEE = "sgx"
	TEETDX TEE = "tdx"
)

// maxBody bounds every response body.
const maxBody = 4 << 20

// ErrUnavailable is wrapped by every error that means collateral cannot be
// had now.
var ErrUnavailable = errors.New("SGX collateral unavailable")

// Error is a failure to fetch usable collateral. Msg says what is wrong in
// words meant for an operator; Err, when not nil, is the underlying cause.
// Every Error wraps ErrUnavailable (and Err).
type Error struct {
	// Item is what was being fetched ("TCB info", "QE identity", "PCK
	// CRL", "root CA CRL"); empty when the request as a whole failed.
	Item string
	// URL is the URL fetched, when there was one.
	URL string
	// Msg describes the failure.
	Msg string
	// Err is the cause, or nil.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ErrUnavailable.Error())
	if e.Item != "" {
		b.WriteString(": " + e.Item)
		if e.URL != "" {
			b.WriteString(" from " + e.URL)
		}
	}
	b.WriteString(": " + e.Msg)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns ErrUnavailable and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

func unavailable(item, u string, cause error, format string, args ...any) *Error {
	return &Error{Item: item, URL: u, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// Platform is what collateral is fetched for: the FMSPC and CA type of a
// quote's PCK certificate, and the TEE.
type Platform struct {
	FMSPC [6]byte
	CA    string
	// TEE is TEESGX (or empty) for SGX enclaves, TEETDX for TDX guests.
	TEE TEE
}

func (p Platform) tee() TEE {
	if p.TEE == "" {
		return TEESGX
	}
	return p.TEE
}

// String returns "fmspc=HEX ca=TYPE", with " tee=tdx" for TDX.
func (p Platform) String() string {
	s := fmt.Sprintf("fmspc=%s ca=%s", strings.ToUpper(hex.EncodeToString(p.FMSPC[:])), p.CA)
	if p.tee() != TEESGX {
		s += " tee=" + string(p.TEE)
	}
	return s
}

// ParsePlatform builds a Platform from an FMSPC in hex (12 digits), a CA
// type and a TEE ("" meaning SGX).
func ParsePlatform(fmspc, ca string, tee TEE) (Platform, error) {
	var p Platform
	b, err := hex.DecodeString(fmspc)
	if err != nil || len(b) != len(p.FMSPC) {
		return Platform{}, fmt.Errorf("pccs: FMSPC %q is not %d bytes of hex", fmspc, len(p.FMSPC))
	}
	copy(p.FMSPC[:], b)
	p.CA, p.TEE = strings.ToLower(ca), tee
	if p.CA != CAProcessor && p.CA != CAPlatform {
		return Platform{}, fmt.Errorf("pccs: CA type %q is not %s or %s", ca, CAProcessor, CAPlatform)
	}
	if tee != "" && tee != TEESGX && tee != TEETDX {
		return Platform{}, fmt.Errorf("pccs: TEE %q is not %s or %s", tee, TEESGX, TEETDX)
	}
	return p, nil
}

// QuotePlatform reads the FMSPC and CA type from the PCK certificate in a
// quote's certification data (type 5, PCK certificate chain).
func QuotePlatform(q *abi.Quote) (Platform, error) {
	cd := q.SignatureData.CertificationData
	if cd.Type != abi.CertDataPCKCertChain {
		return Platform{}, fmt.Errorf("pccs: the quote's certification data is type %d, not a PCK certificate chain (5): cannot tell which collateral it needs", uint16(cd.Type))
	}
	block, _ := pem.Decode(bytes.TrimLeft(cd.Data, " \t\r\n"))
	if block == nil || block.Type != "CERTIFICATE" {
		return Platform{}, errors.New("pccs: the quote's PCK certificate chain does not start with a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Platform{}, fmt.Errorf("pccs: the quote's PCK certificate: %w", err)
	}
	ext, err := sgx.ParsePCKExtensions(cert)
	if err != nil {
		return Platform{}, fmt.Errorf("pccs: the quote's PCK certificate: %w", err)
	}
	p := Platform{FMSPC: ext.FMSPC}
	switch cert.Issuer.CommonName {
	case "Intel SGX PCK Processor CA":
		p.CA = CAProcessor
	case "Intel SGX PCK Platform CA":
		p.CA = CAPlatform
	default:
		return Platform{}, fmt.Errorf("pccs: the quote's PCK certificate is issued by %q, not a PCK Processor or Platform CA", cert.Issuer.CommonName)
	}
	return p, nil
}

// Client fetches collateral from a PCCS or Intel's PCS.
type Client struct {
	// BaseURL is the service's base URL, without the /sgx/... path.
	BaseURL string
	// RootCACRLURL is the root CA CRL's URL. Empty: with Intel's PCS, the
	// embedded Intel root's CRL distribution point; otherwise BaseURL +
	// PathRootCACRL.
	RootCACRLURL string
	// HTTP is the HTTP client (nil: one with a 30 s timeout).
	HTTP *http.Client
	// Header is sent with every request: Azure's THIM behind the instance
	// metadata service (http://169.254.169.254/metadata/THIM) answers only
	// requests with "Metadata: true".
	Header http.Header
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) rootCRLURL() string {
	if c.RootCACRLURL != "" {
		return c.RootCACRLURL
	}
	base := strings.TrimRight(c.BaseURL, "/")
	if u, err := url.Parse(base); err == nil && u.Host == "api.trustedservices.intel.com" {
		if dps := sgx.IntelRootCA().CRLDistributionPoints; len(dps) > 0 {
			return dps[0]
		}
	}
	return base + PathRootCACRL
}

// Response records how one item was served.
type Response struct {
	// Item is what was fetched ("TCB info", ...).
	Item string
	// URL is the URL fetched.
	URL string
	// ContentType is the response's Content-Type ("" when none).
	ContentType string
	// IssuerChainHeader is the header the issuer chain came in ("" for
	// items without one).
	IssuerChainHeader string
	// Encoding is how a CRL body was encoded: "PEM", "DER" or "hex".
	Encoding string
}

// response is a fetched body with its issuer chain.
type response struct {
	Response
	body  []byte
	chain string
}

// get fetches u. When headers are named, the issuer chain must come in the
// first of them present, as percent-encoded PEM.
func (c *Client) get(ctx context.Context, item, u string, headers []string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, unavailable(item, u, err, "bad request")
	}
	for k, vs := range c.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, unavailable(item, u, err, "request failed")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, unavailable(item, u, err, "reading the body")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable(item, u, nil, "HTTP %s", resp.Status)
	}
	if len(body) > maxBody {
		return nil, unavailable(item, u, nil, "body larger than %d bytes", maxBody)
	}
	r := &response{Response: Response{Item: item, URL: u, ContentType: resp.Header.Get("Content-Type")}, body: body}
	if len(headers) == 0 {
		return r, nil
	}
	for _, h := range headers {
		v := resp.Header.Get(h)
		if v == "" {
			continue
		}
		chain, err := url.PathUnescape(v)
		if err != nil {
			return nil, unavailable(item, u, err, "header %s is not percent-encoded PEM", h)
		}
		if !strings.Contains(chain, "-----BEGIN CERTIFICATE-----") {
			return nil, unavailable(item, u, nil, "header %s holds no PEM certificate", h)
		}
		r.IssuerChainHeader, r.chain = h, chain
		return r, nil
	}
	present := make([]string, 0, len(resp.Header))
	for name := range resp.Header {
		present = append(present, name)
	}
	slices.Sort(present)
	return nil, unavailable(item, u, nil, "no issuer chain: expected header %s%s; the response has headers: %s",
		headers[0], moreNames(headers), orNone(present))
}

// moreNames names the accepted alternatives of the first header name.
func moreNames(headers []string) string {
	if len(headers) < 2 {
		return ""
	}
	return " (or the API v3 name " + strings.Join(headers[1:], ", ") + ")"
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Fetched is collateral with the dates that govern its caching.
type Fetched struct {
	// Platform is what it was fetched for.
	Platform Platform
	// Collateral is the collateral, in the wire shape.
	Collateral *sgx.Collateral
	// Responses records how each item was served, in the order fetched.
	Responses []Response
	// NextUpdate is the earliest nextUpdate of the TCB info, the QE
	// identity and the CRLs.
	NextUpdate time.Time
	// FetchedAt is when it was fetched.
	FetchedAt time.Time
}

// signedBody reads {"<key>": {"id": ..., "nextUpdate": ...}, "signature": ...}
// and checks that its id is want.
func signedBody(r *response, key, want string) (nextUpdate time.Time, fmspc string, err error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil {
		return time.Time{}, "", unavailable(r.Item, r.URL, err, "not JSON")
	}
	inner, ok := outer[key]
	if !ok || outer["signature"] == nil {
		return time.Time{}, "", unavailable(r.Item, r.URL, nil, "no %q and \"signature\"", key)
	}
	var b struct {
		ID         *string `json:"id"`
		NextUpdate string  `json:"nextUpdate"`
		FMSPC      string  `json:"fmspc"`
	}
	if err := json.Unmarshal(inner, &b); err != nil {
		return time.Time{}, "", unavailable(r.Item, r.URL, err, "body")
	}
	id := ""
	switch {
	case b.ID != nil:
		id = *b.ID
	case key == "tcbInfo" && want == "SGX":
		id = "SGX" // a version 2 SGX TCB info has no id
	}
	if id != want {
		return time.Time{}, "", unavailable(r.Item, r.URL, nil, "it is for %q, want %q", id, want)
	}
	t, err := time.Parse(time.RFC3339, b.NextUpdate)
	if err != nil {
		return time.Time{}, "", unavailable(r.Item, r.URL, err, "nextUpdate %q", b.NextUpdate)
	}
	return t, b.FMSPC, nil
}

// crlBody decodes a CRL body in one of the encodings allowed (PEM, DER,
// hex), records the encoding, and returns the CRL's DER and nextUpdate.
func crlBody(r *response, allowed ...string) ([]byte, time.Time, error) {
	t := bytes.TrimSpace(r.body)
	var der []byte
	switch {
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		r.Encoding = "PEM"
		block, rest := pem.Decode(t)
		if block == nil || block.Type != "X509 CRL" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, time.Time{}, unavailable(r.Item, r.URL, nil, "not a CRL: a PEM body must be exactly one X509 CRL block")
		}
		der = block.Bytes
	case isHex(t):
		r.Encoding = "hex"
		der = make([]byte, len(t)/2)
		hex.Decode(der, t)
	default:
		r.Encoding = "DER"
		der = r.body
	}
	if !slices.Contains(allowed, r.Encoding) {
		return nil, time.Time{}, unavailable(r.Item, r.URL, nil, "not a CRL: the body looks like %s, want %s", r.Encoding, strings.Join(allowed, " or "))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, time.Time{}, unavailable(r.Item, r.URL, err, "not a CRL (%s)", r.Encoding)
	}
	if crl.NextUpdate.IsZero() {
		return nil, time.Time{}, unavailable(r.Item, r.URL, nil, "the CRL has no nextUpdate")
	}
	return der, crl.NextUpdate, nil
}

func isHex(b []byte) bool {
	if len(b) == 0 || len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Fetch fetches the collateral of platform p.
func (c *Client) Fetch(ctx context.Context, p Platform, now time.Time) (*Fetched, error) {
	if c.BaseURL == "" {
		return nil, unavailable("", "", nil, "no PCCS or PCS URL configured")
	}
	if p.CA != CAProcessor && p.CA != CAPlatform {
		return nil, unavailable("", "", nil, "CA type %q is not %s or %s", p.CA, CAProcessor, CAPlatform)
	}
	tcbPath, qePath, tcbID, qeID := PathTCBInfo, PathQEIdentity, "SGX", "QE"
	switch p.tee() {
	case TEESGX:
	case TEETDX:
		tcbPath, qePath, tcbID, qeID = PathTDXTCBInfo, PathTDXQEIdentity, "TDX", "TD_QE"
	default:
		return nil, unavailable("", "", nil, "TEE %q is not %s or %s", p.TEE, TEESGX, TEETDX)
	}
	base := strings.TrimRight(c.BaseURL, "/")
	fmspc := strings.ToUpper(hex.EncodeToString(p.FMSPC[:]))

	tcb, err := c.get(ctx, "TCB info", base+tcbPath+"?fmspc="+fmspc, HeaderTCBInfoIssuerChain)
	if err != nil {
		return nil, err
	}
	tcbNext, gotFMSPC, err := signedBody(tcb, "tcbInfo", tcbID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(gotFMSPC, fmspc) {
		return nil, unavailable(tcb.Item, tcb.URL, nil, "it is for FMSPC %q, asked for %s", gotFMSPC, fmspc)
	}
	qe, err := c.get(ctx, "QE identity", base+qePath, HeaderQEIdentityIssuerChain)
	if err != nil {
		return nil, err
	}
	qeNext, _, err := signedBody(qe, "enclaveIdentity", qeID)
	if err != nil {
		return nil, err
	}
	pck, err := c.get(ctx, "PCK CRL", base+PathPCKCRL+"?ca="+p.CA+"&encoding=der", HeaderPCKCRLIssuerChain)
	if err != nil {
		return nil, err
	}
	// Asked for DER; PEM is what the same endpoint serves by default.
	pckDER, pckNext, err := crlBody(pck, "DER", "PEM")
	if err != nil {
		return nil, err
	}
	root, err := c.get(ctx, "root CA CRL", c.rootCRLURL(), nil)
	if err != nil {
		return nil, err
	}
	// A PCCS's rootcacrl serves hex; Intel's distribution point DER.
	rootDER, rootNext, err := crlBody(root, "hex", "DER")
	if err != nil {
		return nil, err
	}
	next := tcbNext
	for _, t := range []time.Time{qeNext, pckNext, rootNext} {
		if t.Before(next) {
			next = t
		}
	}
	if !now.Before(next) {
		return nil, unavailable("", "", nil, "the collateral served for %s is past its nextUpdate (%s); the PCCS needs a refresh", p, next.UTC().Format(time.RFC3339))
	}
	return &Fetched{
		Platform: p,
		Collateral: &sgx.Collateral{
			Version:               3,
			PCKCRLIssuerChain:     pck.chain,
			RootCACRL:             crlPEM(rootDER),
			PCKCRL:                crlPEM(pckDER),
			TCBInfoIssuerChain:    tcb.chain,
			TCBInfo:               string(tcb.body),
			QEIdentityIssuerChain: qe.chain,
			QEIdentity:            string(qe.body),
		},
		Responses:  []Response{tcb.Response, qe.Response, pck.Response, root.Response},
		NextUpdate: next,
		FetchedAt:  now,
	}, nil
}

// crlPEM returns a CRL as PEM (the wire message carries strings).
func crlPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// Verify checks fetched collateral against the pinned Intel root (or
// opts.TestRoot) at opts.Now with sgx.VerifyCollateral, and that it is for
// the platform asked for: TCB info and QE identity of its TEE, its FMSPC,
// the PCK CRL of its CA type. It does not judge a platform's TCB status
// (that takes a quote: sgx.Verify).
func (f *Fetched) Verify(opts sgx.Options) (*sgx.CollateralCheck, error) {
	check, err := sgx.VerifyCollateral(f.Collateral, opts)
	if err != nil {
		return nil, err
	}
	p := f.Platform
	tcbID, qeID := "SGX", "QE"
	if p.tee() == TEETDX {
		tcbID, qeID = "TDX", "TD_QE"
	}
	ca := "Intel SGX PCK Processor CA"
	if p.CA == CAPlatform {
		ca = "Intel SGX PCK Platform CA"
	}
	fmspc := strings.ToUpper(hex.EncodeToString(p.FMSPC[:]))
	switch {
	case check.TCBInfo.ID != tcbID:
		return nil, fmt.Errorf("pccs: the TCB info is for %q, want %q", check.TCBInfo.ID, tcbID)
	case check.QEIdentity.ID != qeID:
		return nil, fmt.Errorf("pccs: the QE identity is for %q, want %q", check.QEIdentity.ID, qeID)
	case !strings.EqualFold(check.TCBInfo.FMSPC, fmspc):
		return nil, fmt.Errorf("pccs: the TCB info is for FMSPC %q, want %s", check.TCBInfo.FMSPC, fmspc)
	case check.PCKCRL.Issuer != ca:
		return nil, fmt.Errorf("pccs: the PCK CRL is issued by %q, want %q", check.PCKCRL.Issuer, ca)
	}
	return check, nil
}

// DefaultRefreshMargin is how long before the earliest nextUpdate cached
// collateral is refreshed.
const DefaultRefreshMargin = 24 * time.Hour

// DefaultMaxAge is the longest cached collateral is served before it is
// fetched again (so that TCB recoveries are seen within a day).
const DefaultMaxAge = 24 * time.Hour

// Cache serves collateral per platform from memory, fetching it when it is
// missing, older than MaxAge, or within RefreshMargin of its earliest
// nextUpdate. When a refresh fails, collateral that is still before its
// nextUpdate is served; otherwise the error is returned.
type Cache struct {
	// Client fetches collateral.
	Client *Client
	// Now returns the time (nil: time.Now).
	Now func() time.Time
	// RefreshMargin and MaxAge: zero means the defaults.
	RefreshMargin, MaxAge time.Duration
	// OnFetch, if set, is called after every fetch from the PCCS, with the
	// collateral fetched or the error (for metrics).
	OnFetch func(p Platform, f *Fetched, err error)

	mu      sync.Mutex
	entries map[Platform]*Fetched
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Collateral returns the collateral for the platform of quote (see
// QuotePlatform). Errors wrap ErrUnavailable.
func (c *Cache) Collateral(ctx context.Context, quote *abi.Quote) (*sgx.Collateral, error) {
	p, err := QuotePlatform(quote)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return c.ForPlatform(ctx, p)
}

// ForPlatform returns the collateral of platform p; see Cache.
func (c *Cache) ForPlatform(ctx context.Context, p Platform) (*sgx.Collateral, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	margin, maxAge := c.RefreshMargin, c.MaxAge
	if margin == 0 {
		margin = DefaultRefreshMargin
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	cached := c.entries[p]
	if cached != nil && now.Before(cached.NextUpdate.Add(-margin)) && now.Sub(cached.FetchedAt) < maxAge {
		return cached.Collateral, nil
	}
	if c.Client == nil {
		return nil, fmt.Errorf("%w: no PCCS client configured", ErrUnavailable)
	}
	f, err := c.Client.Fetch(ctx, p, now)
	if c.OnFetch != nil {
		c.OnFetch(p, f, err)
	}
	if err != nil {
		if cached != nil && now.Before(cached.NextUpdate) {
			return cached.Collateral, nil
		}
		return nil, err
	}
	if c.entries == nil {
		c.entries = map[Platform]*Fetched{}
	}
	c.entries[p] = f
	return f.Collateral, nil
}
