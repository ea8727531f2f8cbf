package pccs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// wireAt is inside the validity window of every item in testdata/vectors.
var wireAt = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

func readTestdata(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatalf("test data (part of the repository): %v", err)
	}
	return b
}

// requestKey identifies a request by method, path and query (parameters
// sorted), so that parameter order does not matter.
func requestKey(r *http.Request) string {
	return r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode()
}

// serveLiteral answers requests with the files in testdata/responses,
// written to the connection byte for byte: the request each file answers
// comes from responses/requests.txt, and override maps a path to another
// file whatever the query. Anything else gets a 404.
func serveLiteral(t *testing.T, override map[string]string) string {
	t.Helper()
	routes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(readTestdata(t, "responses/requests.txt"))), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("requests.txt: bad line %q", line)
		}
		req, err := http.NewRequest(f[0], "http://x"+f[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		routes[requestKey(req)] = f[2]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	notFound := []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					name, ok := override[req.URL.Path]
					if !ok {
						name, ok = routes[requestKey(req)]
					}
					resp := notFound
					if ok {
						if resp, err = os.ReadFile(filepath.Join("testdata", "responses", name)); err != nil {
							return
						}
					}
					if _, err := conn.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func vectorCollateral(t *testing.T, name string) *sgx.Collateral {
	t.Helper()
	c, err := sgx.CollateralFromDCAPQVLJSON(readTestdata(t, "vectors/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	sgxPlatform = Platform{FMSPC: [6]byte{0x00, 0xA0, 0x67, 0x11, 0x00, 0x00}, CA: CAProcessor}
	tdxPlatform = Platform{FMSPC: [6]byte{0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00}, CA: CAPlatform, TEE: TEETDX}
)

// TestLiteralResponses fetches SGX and TDX collateral from responses as
// Intel's PCCS sends them, byte for byte, and verifies what was assembled
// against the pinned Intel root: the SGX set with its real quote (full
// quote verification), the TDX set at the signature and chain level
// (sgx.VerifyCollateral; TDX quotes are not verified here).
func TestLiteralResponses(t *testing.T) {
	quote := readTestdata(t, "vectors/sgx_quote")
	for _, tc := range []struct {
		name     string
		p        Platform
		override map[string]string
		vectors  string
		pckEnc   string
		tcbHdr   string
	}{
		{"SGX, PCK CRL as DER", sgxPlatform, nil, "sgx_quote_collateral.json", "DER", "TCB-Info-Issuer-Chain"},
		{"SGX, PCK CRL as PEM", sgxPlatform, map[string]string{PathPCKCRL: "pckcrl-processor-pem.http"}, "sgx_quote_collateral.json", "PEM", "TCB-Info-Issuer-Chain"},
		{"SGX, API v3 TCB info header", sgxPlatform, map[string]string{PathTCBInfo: "sgx-tcb-v3-header.http"}, "sgx_quote_collateral.json", "DER", "SGX-TCB-Info-Issuer-Chain"},
		{"TDX, PCK CRL as DER", tdxPlatform, nil, "tdx_quote_collateral.json", "DER", "TCB-Info-Issuer-Chain"},
		{"TDX, PCK CRL as PEM", tdxPlatform, map[string]string{PathPCKCRL: "pckcrl-platform-pem.http"}, "tdx_quote_collateral.json", "PEM", "TCB-Info-Issuer-Chain"},
	} {
		// The earliest nextUpdate: the SGX QE identity's, the TDX set's PCK CRL's.
		next := time.Date(2025, 7, 19, 10, 1, 18, 0, time.UTC)
		if tc.p.TEE == TEETDX {
			next = time.Date(2025, 7, 19, 10, 0, 35, 0, time.UTC)
		}
		t.Run(tc.name, func(t *testing.T) {
			url := serveLiteral(t, tc.override)
			f, err := (&Client{BaseURL: url}).Fetch(context.Background(), tc.p, wireAt)
			if err != nil {
				t.Fatal(err)
			}
			// What was assembled is the real collateral, byte for byte.
			want := vectorCollateral(t, tc.vectors)
			got := f.Collateral
			if got.TCBInfo != want.TCBInfo || got.QEIdentity != want.QEIdentity {
				t.Error("TCB info or QE identity body differs from the real collateral")
			}
			if got.TCBInfoIssuerChain != want.TCBInfoIssuerChain || got.QEIdentityIssuerChain != want.QEIdentityIssuerChain || got.PCKCRLIssuerChain != want.PCKCRLIssuerChain {
				t.Error("an issuer chain differs from the real collateral after percent-decoding")
			}
			for _, pair := range [][2]string{{got.PCKCRL, want.PCKCRL}, {got.RootCACRL, want.RootCACRL}} {
				if !bytes.Equal(crlDERForTest(t, pair[0]), crlDERForTest(t, pair[1])) {
					t.Error("a CRL differs from the real collateral")
				}
			}
			wantResp := []Response{
				{Item: "TCB info", IssuerChainHeader: tc.tcbHdr, ContentType: "application/json"},
				{Item: "QE identity", IssuerChainHeader: "SGX-Enclave-Identity-Issuer-Chain", ContentType: "application/json"},
				{Item: "PCK CRL", IssuerChainHeader: "SGX-PCK-CRL-Issuer-Chain", Encoding: tc.pckEnc},
				{Item: "root CA CRL", Encoding: "hex"},
			}
			for i, w := range wantResp {
				r := f.Responses[i]
				if r.Item != w.Item || r.IssuerChainHeader != w.IssuerChainHeader || r.Encoding != w.Encoding || (w.ContentType != "" && r.ContentType != w.ContentType) {
					t.Errorf("response %d: %+v, want %+v", i, r, w)
				}
			}
			check, err := f.Verify(sgx.Options{Now: func() time.Time { return wireAt }})
			if err != nil {
				t.Fatalf("fetched collateral does not verify against the pinned Intel root: %v", err)
			}
			if !check.NextUpdate.Equal(next) || !f.NextUpdate.Equal(next) {
				t.Errorf("next update: verified %s, fetched %s, want %s", check.NextUpdate, f.NextUpdate, next)
			}
			if tc.p.TEE == TEETDX {
				if check.TCBInfo.ID != "TDX" || check.QEIdentity.ID != "TD_QE" {
					t.Errorf("TDX collateral ids %q %q", check.TCBInfo.ID, check.QEIdentity.ID)
				}
				return
			}
			res, err := sgx.Verify(quote, got, sgx.Options{Now: func() time.Time { return wireAt }})
			if err != nil {
				t.Fatalf("the real quote does not verify with the fetched collateral: %v", err)
			}
			if res.Status != sgx.ConfigurationAndSWHardeningNeeded || !res.CRLsChecked {
				t.Fatalf("status %s, CRLs checked %t", res.Status, res.CRLsChecked)
			}
		})
	}
}

func crlDERForTest(t *testing.T, s string) []byte {
	t.Helper()
	r := &response{body: []byte(s)}
	der, _, err := crlBody(r, "PEM", "DER", "hex")
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestLiteralResponsesRefused: responses that Intel's services would not
// send, or that answer another question, are refused with a message that
// says what was wrong.
func TestLiteralResponsesRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        Platform
		override map[string]string
		want     []string
	}{
		{"QE identity chain under a name Intel does not send", sgxPlatform,
			map[string]string{PathQEIdentity: "sgx-qe-identity-wrong-header.http"},
			[]string{"QE identity", "expected header SGX-Enclave-Identity-Issuer-Chain", "Sgx-Enterprise-Identity-Issuer-Chain", "Content-Type"}},
		{"TD QE identity answered for SGX", sgxPlatform,
			map[string]string{PathQEIdentity: "tdx-qe-identity.http"}, []string{`it is for "TD_QE", want "QE"`}},
		{"SGX TCB info answered for TDX", tdxPlatform,
			map[string]string{PathTDXTCBInfo: "sgx-tcb.http"}, []string{`it is for "SGX", want "TDX"`}},
		{"root CA CRL as PEM", sgxPlatform,
			map[string]string{PathRootCACRL: "pckcrl-processor-pem.http"}, []string{"root CA CRL", "looks like PEM, want hex or DER"}},
		{"PCK CRL as hex", sgxPlatform,
			map[string]string{PathPCKCRL: "rootcacrl.http"}, []string{"no issuer chain: expected header SGX-PCK-CRL-Issuer-Chain"}},
		{"unknown FMSPC", Platform{FMSPC: [6]byte{1}, CA: CAProcessor}, nil, []string{"TCB info", "HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Client{BaseURL: serveLiteral(t, tc.override)}).Fetch(context.Background(), tc.p, wireAt)
			var fe *Error
			if !errors.Is(err, ErrUnavailable) || !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *pccs.Error wrapping ErrUnavailable", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestFakeMatchesFetcher serves the real SGX and TDX collateral from the
// fake PCCS and checks that the fetcher assembles the same collateral as
// from the literal responses, and that it verifies.
func TestFakeMatchesFetcher(t *testing.T) {
	for _, tc := range []struct {
		p       Platform
		vectors string
		start   func(testing.TB, *sgx.Collateral, [6]byte, string) *pccstest.Server
	}{
		{sgxPlatform, "sgx_quote_collateral.json", pccstest.New},
		{tdxPlatform, "tdx_quote_collateral.json", pccstest.NewTDX},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			fake := tc.start(t, vectorCollateral(t, tc.vectors), tc.p.FMSPC, tc.p.CA)
			fromFake, err := (&Client{BaseURL: fake.URL}).Fetch(context.Background(), tc.p, wireAt)
			if err != nil {
				t.Fatal(err)
			}
			fromLiteral, err := (&Client{BaseURL: serveLiteral(t, nil)}).Fetch(context.Background(), tc.p, wireAt)
			if err != nil {
				t.Fatal(err)
			}
			if *fromFake.Collateral != *fromLiteral.Collateral {
				t.Error("the fake PCCS and the literal responses give different collateral")
			}
			if _, err := fromFake.Verify(sgx.Options{Now: func() time.Time { return wireAt }}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTestdataVectorsMatchShared guards the copies in testdata/vectors
// against drift from the shared test vectors they were copied from.
func TestTestdataVectorsMatchShared(t *testing.T) {
	if testvectors.Dir() == "" && os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the shared test vectors are missing (set %s or provide ../shared/testvectors)", testvectors.EnvVar)
	}
	for local, shared := range map[string]string{
		"sgx_quote":                 "sgx/dcap-qvl/sgx_quote",
		"sgx_quote_collateral.json": "sgx/dcap-qvl/sgx_quote_collateral.json",
		"tdx_quote_collateral.json": "tdx/dcap-qvl/tdx_quote_collateral.json",
	} {
		if !bytes.Equal(readTestdata(t, "vectors/"+local), testvectors.Read(t, shared)) {
			t.Errorf("testdata/vectors/%s differs from the shared %s", local, shared)
		}
	}
}
