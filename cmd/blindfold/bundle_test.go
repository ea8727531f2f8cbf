package main

import (
	"bytes"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

// twoPlatformPCCS serves Intel's real collateral of two platforms, as one
// PCCS: the SGX platform of the dcap-qvl quote (FMSPC 00A067110000, PCK
// Processor CA) and its TDX platform (FMSPC B0C06F000000, PCK Platform
// CA). It routes each request to one of two fake PCCSs, which answer only
// for their own platform.
func twoPlatformPCCS(t *testing.T) string {
	sgxPCCS := pccstest.New(t, realCollateral(t, "sgx_quote_collateral.json"), [6]byte{0x00, 0xA0, 0x67, 0x11, 0x00, 0x00}, "processor")
	tdxPCCS := pccstest.NewTDX(t, realCollateral(t, "tdx_quote_collateral.json"), [6]byte{0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00}, "platform")
	proxy := func(raw string) http.Handler {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return httputil.NewSingleHostReverseProxy(u)
	}
	toSGX, toTDX := proxy(sgxPCCS.URL), proxy(tdxPCCS.URL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tdx/") || r.URL.Query().Get("ca") == "platform" {
			toTDX.ServeHTTP(w, r)
			return
		}
		toSGX.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCollateralBundleCLI: collateral fetch --out writes a bundle of two
// platforms from a PCCS serving Intel's real collateral; collateral verify
// checks it and verifies the real SGX quote with it, inside its window and
// not after; a bundle with one byte of a signed body changed is refused,
// naming the item.
func TestCollateralBundleCLI(t *testing.T) {
	pccsURL := twoPlatformPCCS(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.json")
	quote := filepath.Join(pccsVectors, "sgx_quote")
	const at = "2025-07-01T00:00:00Z"
	// The window: the SGX TCB info's issueDate to the TDX collateral's
	// earliest nextUpdate (see attest/collateral's tests).
	const window = "2025-06-19T10:56:11Z until 2025-07-19T10:00:35Z"

	code, out, errOut := runCLI(t, "collateral", "fetch", "--pccs-url", pccsURL, "--fmspc", "00A067110000", "--tdx-fmspc", "B0C06F000000:platform", "--at", at, "--out", bundle)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"platform:       SGX, FMSPC 00A067110000, PCK processor CA",
		"platform:       TDX, FMSPC B0C06F000000, PCK platform CA",
		"bundle:         wrote " + bundle + ": SGX, FMSPC 00A067110000, PCK processor CA; TDX, FMSPC B0C06F000000, PCK platform CA; valid from " + window,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fetch does not say %q:\n%s", want, out)
		}
	}
	b, err := collateral.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Entries) != 2 || b.Source != pccsURL || b.ValidUntil.Format(time.RFC3339) != "2025-07-19T10:00:35Z" {
		t.Fatalf("bundle: %d platforms, source %q, valid until %s", len(b.Entries), b.Source, b.ValidUntil)
	}

	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	// One digit of the SGX TCB info's signed body (its pceId).
	marker := []byte(`\"pceId\":\"000`)
	i := bytes.Index(data, marker)
	if i < 0 {
		t.Fatal("no pceId in the bundle")
	}
	tampered := bytes.Clone(data)
	tampered[i+len(marker)] = '1'
	bad := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(bad, tampered, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout, or in stderr on failure
	}{
		{"verify", []string{bundle, "--at", at}, exitOK, []string{
			"bundle:         " + bundle + ", 2 platforms",
			"fetched:        from " + pccsURL,
			"platform:       TDX, FMSPC B0C06F000000, PCK platform CA",
			"QE identity:    id TD_QE version 2",
			"valid:          from 2025-06-19T10:56:11Z until 2025-07-19T10:00:35Z"}},
		{"verify a quote", []string{bundle, "--at", at, "--quote", quote}, exitOK, []string{
			"quote:          verified; TCB status ConfigurationAndSWHardeningNeeded (platform ConfigurationAndSWHardeningNeeded, QE UpToDate), advisories INTEL-SA-00289, INTEL-SA-00615",
			"TCB recoveries: 0 TCB recoveries behind: the platform's TCB level is of the latest TCB recovery (2024-03-13)"}},
		{"one second after the window", []string{bundle, "--at", "2025-07-19T10:00:36Z"}, exitConnection, []string{
			"collateral bundle: expired: its collateral is valid from 2025-06-19T10:56:11Z to 2025-07-19T10:00:35Z, and expired 1s before the verification time 2025-07-19T10:00:36Z"}},
		{"a quote after the window", []string{bundle, "--at", "2025-08-01T00:00:00Z", "--quote", quote}, exitConnection, []string{"collateral bundle: expired"}},
		{"tampered", []string{bad, "--at", at}, exitConnection, []string{"fmspc=00A067110000 ca=processor", "TCB info: signature does not verify"}},
		{"not a bundle", []string{quote}, exitIO, []string{"collateral bundle"}},
		{"missing", []string{filepath.Join(dir, "none.json")}, exitIO, []string{"no such file"}},
		{"bad time", []string{bundle, "--at", "soon"}, exitUsage, []string{"RFC 3339"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"collateral", "verify"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			got := stdout
			if code != exitOK {
				got = stderr
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output does not say %q:\n%s", w, got)
				}
			}
		})
	}

	// Fetch refuses to write a bundle when a platform cannot be had, and
	// refuses a platform given twice.
	partial := filepath.Join(dir, "partial.json")
	if code, _, errOut := runCLI(t, "collateral", "fetch", "--pccs-url", pccsURL, "--fmspc", "00A067110000", "--fmspc", "00A067110001", "--at", at, "--out", partial); code != exitConnection || !strings.Contains(errOut, "HTTP 404") {
		t.Fatalf("unknown second platform: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("a partial bundle was written: %v", err)
	}
	if code, _, errOut := runCLI(t, "collateral", "fetch", "--pccs-url", pccsURL, "--fmspc", "00A067110000", "--fmspc", "00a067110000:processor", "--at", at); code != exitUsage || !strings.Contains(errOut, "given twice") {
		t.Fatalf("platform twice: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "collateral", "fetch", "--pccs-url", pccsURL, "--tdx-fmspc", "B0C06F000000:root", "--at", at); code != exitUsage || !strings.Contains(errOut, "CA type") {
		t.Fatalf("bad CA: exit %d, stderr %q", code, errOut)
	}
	// The quote's platform, written to a bundle, with its recoveries.
	one := filepath.Join(dir, "one.json")
	code, out, errOut = runCLI(t, "collateral", "fetch", "--pccs-url", pccsURL, "--quote", quote, "--at", at, "--out", one)
	if code != exitOK || !strings.Contains(out, "TCB recoveries: 0 TCB recoveries behind") || !strings.Contains(out, "wrote "+one+": SGX, FMSPC 00A067110000, PCK processor CA; valid from 2025-06-19T10:56:11Z until 2025-07-19T10:01:18Z") {
		t.Fatalf("fetch --quote --out: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestProofVerifyCollateralBundle: proof verify --collateral-bundle checks
// a hardware proof with the bundle's collateral for its quote's platform:
// fresh collateral verifies it and says so, collateral that revokes its PCK
// certificate refuses it, and so do a bundle past its window and a bundle
// without the quote's platform.
func TestProofVerifyCollateralBundle(t *testing.T) {
	dir := t.TempDir()
	h := hardwareProof(t, dir)
	issued, pki, ev, simPath, proofPath, root, pol := h.issued, h.pki, h.ev, h.simPath, h.proofPath, h.root, h.policy
	write := func(name string, data []byte) string { return writeFile(t, dir, name, data) }
	later := issued.AddDate(0, 0, 20)
	bundleFile := func(name string, fmspc [6]byte, revoke bool) string {
		nb := sgxtest.NewBuilder(pki, later)
		if revoke {
			nb.PCKCRL.Revoked = []*big.Int{ev.PCK.SerialNumber}
		}
		c, err := ev.Reissue(nb)
		if err != nil {
			t.Fatal(err)
		}
		bd := &collateral.Bundle{Source: "https://pccs.example", FetchedAt: later}
		if err := bd.Add(pccs.Platform{FMSPC: fmspc, CA: pccs.CAProcessor}, c); err != nil {
			t.Fatal(err)
		}
		data, err := bd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return write(name, data)
	}
	other := h.fmspc
	other[0] ^= 0xff
	fresh, revoked, elsewhere := bundleFile("fresh.json", h.fmspc, false), bundleFile("revoked.json", h.fmspc, true), bundleFile("other.json", other, false)
	// The reissued collateral's earliest nextUpdate: the PCK CRL's, 29
	// days after it is issued (sgxtest.NewBuilder).
	expired := later.AddDate(0, 0, 29).Add(time.Second).Format(time.RFC3339)
	base := []string{"proof", "verify", proofPath, "--policy", pol, "--insecure-test-root-ca", root}
	tests := []struct {
		name         string
		extra        []string
		code         int
		stdout, errs string
	}{
		{"fresh bundle", []string{"--at", later.Format(time.RFC3339), "--collateral-bundle", fresh}, exitOK, "collateral:           from the bundle " + fresh + " (fetched from https://pccs.example at " + later.Format(time.RFC3339) + ", by its own account)", ""},
		{"fresh bundle, issued", []string{"--at", later.Format(time.RFC3339), "--collateral-bundle", fresh}, exitOK, "collateral issued:    " + later.Add(-time.Hour).Format(time.RFC3339), ""},
		{"fresh bundle, recoveries", []string{"--at", later.Format(time.RFC3339), "--collateral-bundle", fresh}, exitOK, "tcb recoveries:       0 TCB recoveries behind: the platform's TCB level is of the latest TCB recovery (2024-03-13)", ""},
		{"revoking bundle", []string{"--at", later.Format(time.RFC3339), "--collateral-bundle", revoked}, exitProof, "", "certificate revoked"},
		{"expired bundle", []string{"--at", expired, "--collateral-bundle", fresh}, exitProof, "", "collateral bundle: expired"},
		{"bundle before its window", []string{"--at", issued.Format(time.RFC3339), "--collateral-bundle", fresh}, exitProof, "", "collateral bundle: not yet valid"},
		{"bundle of another platform", []string{"--at", later.Format(time.RFC3339), "--collateral-bundle", elsewhere}, exitProof, "", "the bundle has fmspc="},
		{"with --collateral", []string{"--collateral-bundle", fresh, "--collateral", fresh}, exitUsage, "", "not several"},
		{"missing bundle", []string{"--collateral-bundle", filepath.Join(dir, "none.json")}, exitIO, "", "--collateral-bundle"},
		{"not a bundle", []string{"--collateral-bundle", root}, exitIO, "", "collateral bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.extra...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.errs) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
	if code, _, errOut := runCLI(t, "proof", "verify", simPath, "--allow-simulation", "--collateral-bundle", fresh); code != exitUsage || !strings.Contains(errOut, "simulation proof") {
		t.Fatalf("simulation proof with --collateral-bundle: exit %d, stderr %q", code, errOut)
	}
}

func TestRecoveriesLine(t *testing.T) {
	d := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		behind       int
		latest, mine string
		want         string
	}{
		{0, "2024-03-13", "2024-03-13", "0 TCB recoveries behind: the platform's TCB level is of the latest TCB recovery (2024-03-13)"},
		{1, "2024-11-13", "2024-03-13", "1 TCB recovery behind: UpToDate needs TCB level of 2024-11-13 (the platform's is of 2024-03-13)"},
		{2, "2024-11-13", "2023-08-09", "2 TCB recoveries behind: UpToDate needs TCB level of 2024-11-13 (the platform's is of 2023-08-09)"},
		{-1, "2024-11-13", "2023-08-09", "unknown (the TCB info's levels have no tcbDate)"},
	}
	for _, tc := range tests {
		r := &sgx.Result{TCBRecoveriesBehind: tc.behind, LatestTCBDate: d(tc.latest), TCBDate: d(tc.mine)}
		if got := recoveriesLine(r); got != tc.want {
			t.Errorf("%d behind: %q, want %q", tc.behind, got, tc.want)
		}
	}
}
