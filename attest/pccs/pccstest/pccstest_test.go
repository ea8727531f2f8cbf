package pccstest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/sgx"
)

const literal = "../testdata"

func readLiteral(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(literal, rel))
	if err != nil {
		t.Fatalf("test data (part of the repository): %v", err)
	}
	return b
}

// fakes starts the fake PCCS for the real SGX set (FMSPC 00A067110000, PCK
// Processor CA) and for the real TDX set (FMSPC B0C06F000000, PCK Platform
// CA).
func fakes(t *testing.T) (sgxFake, tdxFake *Server) {
	t.Helper()
	start := func(file string, ca string, newFake func(testing.TB, *sgx.Collateral, [6]byte, string) *Server) *Server {
		c, err := sgx.CollateralFromDCAPQVLJSON(readLiteral(t, "vectors/"+file))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			TCBInfo struct {
				FMSPC string `json:"fmspc"`
			} `json:"tcbInfo"`
		}
		if err := json.Unmarshal([]byte(c.TCBInfo), &body); err != nil {
			t.Fatal(err)
		}
		var fmspc [6]byte
		if _, err := hex.Decode(fmspc[:], []byte(body.TCBInfo.FMSPC)); err != nil {
			t.Fatal(err)
		}
		return newFake(t, c, fmspc, ca)
	}
	return start("sgx_quote_collateral.json", "processor", New), start("tdx_quote_collateral.json", "platform", NewTDX)
}

// TestMatchesLiteralResponses asks the fake every request in
// ../testdata/responses/requests.txt and compares its answer with the
// response Intel's PCCS gives: status, content type, every issuer chain
// header (value byte for byte, so the percent-encoding too) and the body
// byte for byte.
func TestMatchesLiteralResponses(t *testing.T) {
	sgxFake, tdxFake := fakes(t)
	lines := strings.Split(strings.TrimSpace(string(readLiteral(t, "responses/requests.txt"))), "\n")
	if len(lines) < 9 {
		t.Fatalf("requests.txt has %d requests", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != http.MethodGet {
			t.Fatalf("requests.txt: bad line %q", line)
		}
		target, file := f[1], f[2]
		t.Run(file, func(t *testing.T) {
			want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(readLiteral(t, "responses/"+file))), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantBody, err := io.ReadAll(want.Body)
			if err != nil {
				t.Fatal(err)
			}
			fake := sgxFake
			if strings.HasPrefix(target, "/tdx/") || strings.Contains(target, "ca=platform") {
				fake = tdxFake
			}
			got, err := http.Get(fake.URL + target)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Body.Close()
			gotBody, err := io.ReadAll(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != want.StatusCode {
				t.Fatalf("status %s, Intel's %s", got.Status, want.Status)
			}
			if ct := want.Header.Get("Content-Type"); ct != "" && got.Header.Get("Content-Type") != ct {
				t.Errorf("Content-Type %q, Intel's %q", got.Header.Get("Content-Type"), ct)
			}
			for name := range got.Header {
				if strings.HasSuffix(name, "-Issuer-Chain") && want.Header.Get(name) == "" {
					t.Errorf("header %s, which Intel's response does not have", name)
				}
			}
			for name, v := range want.Header {
				if strings.HasSuffix(name, "-Issuer-Chain") && got.Header.Get(name) != v[0] {
					t.Errorf("header %s differs from Intel's:\n got %.80q\nwant %.80q", name, got.Header.Get(name), v[0])
				}
			}
			if !bytes.Equal(gotBody, wantBody) {
				t.Errorf("body differs from Intel's (%d bytes, want %d)", len(gotBody), len(wantBody))
			}
		})
	}
}

// TestRefuses checks the fake answers bad requests as a PCCS does, and
// that the ca parameter is case-insensitive.
func TestRefuses(t *testing.T) {
	sgxFake, _ := fakes(t)
	for _, tc := range []struct {
		target string
		status int
	}{
		{"/sgx/certification/v4/pckcrl?ca=PROCESSOR&encoding=der", http.StatusOK},
		{"/sgx/certification/v4/pckcrl?ca=Processor", http.StatusOK},
		{"/sgx/certification/v4/pckcrl?ca=other", http.StatusBadRequest},
		{"/sgx/certification/v4/pckcrl", http.StatusBadRequest},
		{"/sgx/certification/v4/pckcrl?ca=processor&encoding=base64", http.StatusBadRequest},
		{"/sgx/certification/v4/pckcrl?ca=platform", http.StatusNotFound},
		{"/sgx/certification/v4/tcb?fmspc=00a067110000", http.StatusOK},
		{"/sgx/certification/v4/tcb?fmspc=00A067110000&update=early", http.StatusOK},
		{"/sgx/certification/v4/tcb?fmspc=00A067110000&update=later", http.StatusBadRequest},
		{"/sgx/certification/v4/tcb?fmspc=00A0671100", http.StatusBadRequest},
		{"/sgx/certification/v4/tcb", http.StatusBadRequest},
		{"/sgx/certification/v4/tcb?fmspc=00606A000000", http.StatusNotFound},
		{"/tdx/certification/v4/tcb?fmspc=00A067110000", http.StatusNotFound},
		{"/sgx/certification/v3/qe/identity", http.StatusNotFound},
	} {
		resp, err := http.Get(sgxFake.URL + tc.target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.target, resp.StatusCode, tc.status)
		}
	}
	if n := sgxFake.Hits("/sgx/certification/v4/pckcrl"); n != 6 {
		t.Errorf("Hits counted %d PCK CRL requests, want 6", n)
	}
}
