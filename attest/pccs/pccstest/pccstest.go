// Package pccstest serves SGX collateral over HTTP the way a PCCS (or
// Intel's PCS, API v4) does, for tests of the collateral fetcher and of
// whole hardware-mode deployments. It is test code: it serves whatever
// collateral it is given.
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

// The PCS API v4 paths it answers (stated here, not taken from package
// pccs, so that a fetcher asking elsewhere fails its tests).
const (
	pathTCBInfo    = "/sgx/certification/v4/tcb"
	pathQEIdentity = "/sgx/certification/v4/qe/identity"
	pathPCKCRL     = "/sgx/certification/v4/pckcrl"
	pathRootCACRL  = "/sgx/certification/v4/rootcacrl"
)

// Server is a fake PCCS.
type Server struct {
	*httptest.Server

	tcbInfo, qeIdentity       string
	tcbChain, qeChain         string
	pckCRL, rootCRL, pckChain []byte // CRLs as DER
	fmspc, ca                 string // expected query values

	mu    sync.Mutex
	hits  map[string]int
	fail  bool   // answer 503 to everything
	noHdr string // leave this header out
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

// New starts a fake PCCS serving c for the platform with this FMSPC and CA
// type ("processor" or "platform"), closed when the test ends. Its URL is the
// base URL for pccs.Client.
func New(t testing.TB, c *sgx.Collateral, fmspc [6]byte, ca string) *Server {
	t.Helper()
	s := &Server{
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
// the FMSPC the TCB info is served for (hex, upper case).
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
		s.fmspc = *fmspc
	}
}

// Hits returns how many requests path has had (a path such as
// "/sgx/certification/v4/tcb").
func (s *Server) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// ServeHTTP answers the PCS API v4 collateral requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	fail, noHdr := s.fail, s.noHdr
	tcbInfo, pckCRL, fmspc := s.tcbInfo, s.pckCRL, s.fmspc
	s.mu.Unlock()
	if fail {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	hdr := func(name, chain string) {
		if name != noHdr {
			w.Header().Set(name, url.PathEscape(chain))
		}
	}
	switch r.URL.Path {
	case pathTCBInfo:
		if got := r.URL.Query().Get("fmspc"); got != fmspc {
			http.Error(w, "unknown fmspc "+got, http.StatusNotFound)
			return
		}
		hdr("TCB-Info-Issuer-Chain", s.tcbChain)
		w.Write([]byte(tcbInfo))
	case pathQEIdentity:
		hdr("SGX-Enterprise-Identity-Issuer-Chain", s.qeChain)
		w.Write([]byte(s.qeIdentity))
	case pathPCKCRL:
		if r.URL.Query().Get("ca") != s.ca || r.URL.Query().Get("encoding") != "der" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		hdr("SGX-PCK-CRL-Issuer-Chain", string(s.pckChain))
		w.Write(pckCRL)
	case pathRootCACRL:
		w.Write(s.rootCRL)
	default:
		http.NotFound(w, r)
	}
}
