// Package pccs fetches Intel SGX DCAP collateral (TCB info, QE identity,
// PCK CRL, root CA CRL) from a PCCS or from Intel's Provisioning
// Certification Service (PCS), API version 4, and caches it in memory until
// shortly before its earliest nextUpdate.
//
// The server fetches collateral outside the trust boundary: everything
// fetched is signed by Intel and verified by the client, so a PCCS that
// lies can deny service but cannot make a client trust anything. This
// package checks only what it needs to cache sensibly (that bodies parse,
// that the TCB info is for the FMSPC asked for, the nextUpdate dates).
//
// Paths used (relative to the base URL):
//
//	GET /sgx/certification/v4/tcb?fmspc=HEX            header TCB-Info-Issuer-Chain
//	GET /sgx/certification/v4/qe/identity              header SGX-Enterprise-Identity-Issuer-Chain
//	GET /sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der
//	                                                   header SGX-PCK-CRL-Issuer-Chain
//	GET /sgx/certification/v4/rootcacrl                (PCCS only; with Intel's PCS the
//	                                                   root CA CRL is at the root
//	                                                   certificate's CRL distribution point)
//
// Issuer-chain headers hold URL-encoded PEM. The older header names
// (SGX-TCB-Info-Issuer-Chain, SGX-QE-Identity-Issuer-Chain) are accepted too.
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
	PathTCBInfo    = "/sgx/certification/v4/tcb"
	PathQEIdentity = "/sgx/certification/v4/qe/identity"
	PathPCKCRL     = "/sgx/certification/v4/pckcrl"
	PathRootCACRL  = "/sgx/certification/v4/rootcacrl"
)

// Issuer-chain response headers, newest name first.
var (
	HeaderTCBInfoIssuerChain    = []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}
	HeaderQEIdentityIssuerChain = []string{"SGX-Enterprise-Identity-Issuer-Chain", "SGX-QE-Identity-Issuer-Chain", "Enclave-Identity-Issuer-Chain"}
	HeaderPCKCRLIssuerChain     = []string{"SGX-PCK-CRL-Issuer-Chain"}
)

// CA types of PCK certificates (the pckcrl ca parameter).
const (
	CAProcessor = "processor"
	CAPlatform  = "platform"
)

// maxBody bounds every response body.
const maxBody = 4 << 20

// ErrUnavailable is wrapped by every error that means collateral cannot be
// had now.
var ErrUnavailable = errors.New("SGX collateral unavailable")

// Platform is what collateral is fetched for: the FMSPC and CA type of a
// quote's PCK certificate.
type Platform struct {
	FMSPC [6]byte
	CA    string
}

// String returns "fmspc=HEX ca=TYPE".
func (p Platform) String() string {
	return fmt.Sprintf("fmspc=%s ca=%s", strings.ToUpper(hex.EncodeToString(p.FMSPC[:])), p.CA)
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

// get fetches u and returns its body and the first of the headers present
// (URL-decoded), when headers are named.
func (c *Client) get(ctx context.Context, what, u string, headers []string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s from %s: reading the body: %v", ErrUnavailable, what, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%w: %s from %s: HTTP %s", ErrUnavailable, what, u, resp.Status)
	}
	if len(body) > maxBody {
		return nil, "", fmt.Errorf("%w: %s from %s: body larger than %d bytes", ErrUnavailable, what, u, maxBody)
	}
	if len(headers) == 0 {
		return body, "", nil
	}
	for _, h := range headers {
		if v := resp.Header.Get(h); v != "" {
			chain, err := url.PathUnescape(v)
			if err != nil {
				return nil, "", fmt.Errorf("%w: %s from %s: header %s is not URL-encoded PEM: %v", ErrUnavailable, what, u, h, err)
			}
			if !strings.Contains(chain, "-----BEGIN CERTIFICATE-----") {
				return nil, "", fmt.Errorf("%w: %s from %s: header %s holds no PEM certificate", ErrUnavailable, what, u, h)
			}
			return body, chain, nil
		}
	}
	return nil, "", fmt.Errorf("%w: %s from %s: no issuer chain header (%s)", ErrUnavailable, what, u, strings.Join(headers, " or "))
}

// Fetched is collateral with the dates that govern its caching.
type Fetched struct {
	// Collateral is the collateral, in the wire shape.
	Collateral *sgx.Collateral
	// NextUpdate is the earliest nextUpdate of the TCB info, the QE
	// identity and the CRLs.
	NextUpdate time.Time
	// FetchedAt is when it was fetched.
	FetchedAt time.Time
}

// signedBody reads {"<key>": {... "nextUpdate": ...}, "signature": ...}.
func signedBody(what string, body []byte, key string) (nextUpdate time.Time, fmspc string, err error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %s is not JSON: %v", ErrUnavailable, what, err)
	}
	inner, ok := outer[key]
	if !ok || outer["signature"] == nil {
		return time.Time{}, "", fmt.Errorf("%w: %s has no %q and \"signature\"", ErrUnavailable, what, key)
	}
	var b struct {
		NextUpdate string `json:"nextUpdate"`
		FMSPC      string `json:"fmspc"`
	}
	if err := json.Unmarshal(inner, &b); err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %s body: %v", ErrUnavailable, what, err)
	}
	t, err := time.Parse(time.RFC3339, b.NextUpdate)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %s nextUpdate %q: %v", ErrUnavailable, what, b.NextUpdate, err)
	}
	return t, b.FMSPC, nil
}

func crlNextUpdate(what string, data []byte) (time.Time, error) {
	der := data
	if block, _ := pem.Decode(bytes.TrimSpace(data)); block != nil {
		der = block.Bytes
	} else if h, err := hex.DecodeString(string(bytes.TrimSpace(data))); err == nil {
		der = h
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not a CRL (PEM, DER or hex): %v", ErrUnavailable, what, err)
	}
	if crl.NextUpdate.IsZero() {
		return time.Time{}, fmt.Errorf("%w: %s has no nextUpdate", ErrUnavailable, what)
	}
	return crl.NextUpdate, nil
}

// Fetch fetches the collateral of platform p.
func (c *Client) Fetch(ctx context.Context, p Platform, now time.Time) (*Fetched, error) {
	if c.BaseURL == "" {
		return nil, fmt.Errorf("%w: no PCCS or PCS URL configured", ErrUnavailable)
	}
	if p.CA != CAProcessor && p.CA != CAPlatform {
		return nil, fmt.Errorf("%w: CA type %q is not %s or %s", ErrUnavailable, p.CA, CAProcessor, CAPlatform)
	}
	base := strings.TrimRight(c.BaseURL, "/")
	fmspc := strings.ToUpper(hex.EncodeToString(p.FMSPC[:]))

	tcb, tcbChain, err := c.get(ctx, "TCB info", base+PathTCBInfo+"?fmspc="+fmspc, HeaderTCBInfoIssuerChain)
	if err != nil {
		return nil, err
	}
	tcbNext, gotFMSPC, err := signedBody("TCB info", tcb, "tcbInfo")
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(gotFMSPC, fmspc) {
		return nil, fmt.Errorf("%w: TCB info is for FMSPC %q, asked for %s", ErrUnavailable, gotFMSPC, fmspc)
	}
	qe, qeChain, err := c.get(ctx, "QE identity", base+PathQEIdentity, HeaderQEIdentityIssuerChain)
	if err != nil {
		return nil, err
	}
	qeNext, _, err := signedBody("QE identity", qe, "enclaveIdentity")
	if err != nil {
		return nil, err
	}
	pckCRL, pckChain, err := c.get(ctx, "PCK CRL", base+PathPCKCRL+"?ca="+p.CA+"&encoding=der", HeaderPCKCRLIssuerChain)
	if err != nil {
		return nil, err
	}
	pckNext, err := crlNextUpdate("PCK CRL", pckCRL)
	if err != nil {
		return nil, err
	}
	rootCRL, _, err := c.get(ctx, "root CA CRL", c.rootCRLURL(), nil)
	if err != nil {
		return nil, err
	}
	rootNext, err := crlNextUpdate("root CA CRL", rootCRL)
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
		return nil, fmt.Errorf("%w: the collateral served for %s is past its nextUpdate (%s); the PCCS needs a refresh", ErrUnavailable, p, next.UTC().Format(time.RFC3339))
	}
	return &Fetched{
		Collateral: &sgx.Collateral{
			Version:               3,
			PCKCRLIssuerChain:     pckChain,
			RootCACRL:             crlText(rootCRL),
			PCKCRL:                crlText(pckCRL),
			TCBInfoIssuerChain:    tcbChain,
			TCBInfo:               string(tcb),
			QEIdentityIssuerChain: qeChain,
			QEIdentity:            string(qe),
		},
		NextUpdate: next,
		FetchedAt:  now,
	}, nil
}

// crlText returns a CRL as PEM (the wire message carries strings): PEM
// stays as it is, DER is wrapped, hex is decoded and wrapped.
func crlText(b []byte) string {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		return string(t) + "\n"
	}
	if h, err := hex.DecodeString(string(t)); err == nil {
		b = h
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: b}))
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
