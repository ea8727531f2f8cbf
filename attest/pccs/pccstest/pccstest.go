// Package pccstest is a fake PCCS: it serves DCAP collateral over HTTP the
// way Intel's PCCS (and Intel's PCS, API v4) does, for tests of the
// collateral fetcher and of whole hardware-mode deployments. It is test
// code: it serves whatever collateral it is given.
//
// Its wire contract is written out here from the project's record of
// Intel's (PROTOCOL.md, "Collateral services"), not taken from package pccs,
// so that a fetcher that asks elsewhere or reads other headers fails its
// tests; its own tests hold it to literal responses as Intel sends them
// (../testdata/responses).
package pccstest

import (
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// Paths served, per PROTOCOL.md. The TDX TCB info and QE identity live
// under /tdx/; the PCK CRL and root CA CRL under /sgx/ for both.
const (
	sgxBase = "/sgx/certification/v4/"
	tdxBase = "/tdx/certification/v4/"
)

// Response headers, with Intel's spelling (sent as written).
const (
	hdrTCBChain = "TCB-Info-Issuer-Chain"
	hdrQEChain  = "SGX-Enclave-Identity-Issuer-Chain"
	hdrCRLChain = "SGX-PCK-CRL-Issuer-Chain"
)

// Server is a fake PCCS.
type Server struct {
	*httptest.Server

	base                      string // sgxBase or tdxBase: where the TCB info and QE identity are
	tcbInfo, qeIdentity       string
	tcbChain, qeChain         string
	pckCRL, rootCRL, pckChain []byte // CRLs as DER
	fmspc, ca                 string // the platform served (FMSPC upper-case hex)

	mu    sync.Mutex
	hits  map[string]int
	fail  bool   // answer 503 to everything
	noHdr string // leave this header out

	prefix       string // path prefix the service lives under ("" : none)
	needH, needV string // a request header every request must carry
}

// Azure makes the server answer as Azure's THIM behind the instance
// metadata service does: under the path prefix and only to requests that
// carry the header name: value (401 otherwise).
func (s *Server) Azure(prefix, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefix, s.needH, s.needV = prefix, name, value
}

// crlDER accepts a CRL as PEM or hex of DER, as collateral carries it.
func crlDER(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.TrimSpace(s)
	if b, _ := pem.Decode([]byte(s)); b != nil {
		return b.Bytes
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("pccstest: CRL is neither PEM nor hex")
	}
	return d
}

// New starts a fake PCCS serving c as SGX collateral for the platform with
// this FMSPC and CA type ("processor" or "platform"), closed when the test
// ends. Its URL is the base URL for pccs.Client.
func New(t testing.TB, c *sgx.Collateral, fmspc [6]byte, ca string) *Server {
	t.Helper()
	return start(t, sgxBase, c, fmspc, ca)
}

// NewTDX is New for TDX collateral: the TCB info and QE identity are served
// under /tdx/certification/v4/.
func NewTDX(t testing.TB, c *sgx.Collateral, fmspc [6]byte, ca string) *Server {
	t.Helper()
	return start(t, tdxBase, c, fmspc, ca)
}

func start(t testing.TB, base string, c *sgx.Collateral, fmspc [6]byte, ca string) *Server {
	t.Helper()
	s := &Server{
		base:    base,
		tcbInfo: c.TCBInfo, qeIdentity: c.QEIdentity, tcbChain: c.TCBInfoIssuerChain, qeChain: c.QEIdentityIssuerChain,
		pckCRL: crlDER(t, c.PCKCRL), rootCRL: crlDER(t, c.RootCACRL), pckChain: []byte(c.PCKCRLIssuerChain),
		fmspc: strings.ToUpper(hex.EncodeToString(fmspc[:])), ca: ca, hits: map[string]int{},
	}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

// SetFailing makes the server answer 503 to everything (or stop doing so).
func (s *Server) SetFailing(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// OmitHeader makes the server leave out the named response header.
func (s *Server) OmitHeader(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noHdr = name
}

// Change lets a test alter what is served: TCB info, the PCK CRL (DER) and
// the FMSPC the TCB info is served for (hex).
func (s *Server) Change(tcbInfo *string, pckCRL *[]byte, fmspc *string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tcbInfo != nil {
		s.tcbInfo = *tcbInfo
	}
	if pckCRL != nil {
		s.pckCRL = *pckCRL
	}
	if fmspc != nil {
		s.fmspc = strings.ToUpper(*fmspc)
	}
}

// Hits returns how many requests path has had (a path such as
// "/sgx/certification/v4/tcb").
func (s *Server) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// percentEncode escapes every byte but A-Z a-z 0-9 - _ . ~, as Intel's
// services encode issuer chains (space %20, newline %0A, + %2B, / %2F).
func percentEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func isHexFMSPC(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == 12
}

// ServeHTTP answers the collateral requests of the PCCS API v4.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	prefix, needH, needV := s.prefix, s.needH, s.needV
	s.mu.Unlock()
	if needH != "" && r.Header.Get(needH) != needV {
		http.Error(w, "missing header "+needH, http.StatusUnauthorized)
		return
	}
	if prefix != "" {
		if !strings.HasPrefix(r.URL.Path, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	}
	s.mu.Lock()
	s.hits[r.URL.Path]++
	fail, noHdr := s.fail, s.noHdr
	tcbInfo, pckCRL, fmspc := s.tcbInfo, s.pckCRL, s.fmspc
	s.mu.Unlock()
	if fail {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	chain := func(name, pemChain string) {
		if !strings.EqualFold(name, noHdr) {
			w.Header()[name] = []string{percentEncode(pemChain)} // Intel's spelling, not canonicalised
		}
	}
	if u := q.Get("update"); u != "" && u != "standard" && u != "early" {
		http.Error(w, "bad update "+u, http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case s.base + "tcb":
		got := q.Get("fmspc")
		if !isHexFMSPC(got) {
			http.Error(w, "bad fmspc", http.StatusBadRequest)
			return
		}
		if !strings.EqualFold(got, fmspc) {
			http.Error(w, "no TCB info for fmspc "+got, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		chain(hdrTCBChain, s.tcbChain)
		w.Write([]byte(tcbInfo))
	case s.base + "qe/identity":
		w.Header().Set("Content-Type", "application/json")
		chain(hdrQEChain, s.qeChain)
		w.Write([]byte(s.qeIdentity))
	case sgxBase + "pckcrl":
		ca := strings.ToLower(q.Get("ca"))
		if ca != "processor" && ca != "platform" {
			http.Error(w, "bad ca", http.StatusBadRequest)
			return
		}
		if ca != s.ca {
			http.Error(w, "no CRL for ca "+ca, http.StatusNotFound)
			return
		}
		switch q.Get("encoding") {
		case "der":
			w.Header().Set("Content-Type", "application/pkix-crl")
			chain(hdrCRLChain, string(s.pckChain))
			w.Write(pckCRL)
		case "":
			w.Header().Set("Content-Type", "application/x-pem-file")
			chain(hdrCRLChain, string(s.pckChain))
			w.Write(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: pckCRL}))
		default:
			http.Error(w, "bad encoding", http.StatusBadRequest)
		}
	case sgxBase + "rootcacrl":
		w.Write([]byte(hex.EncodeToString(s.rootCRL)))
	default:
		http.NotFound(w, r)
	}
}
