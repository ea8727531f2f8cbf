package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// pccsVectors holds real SGX and TDX collateral (see its README).
const pccsVectors = "../../attest/pccs/testdata/vectors"

func realCollateral(t *testing.T, file string) *sgx.Collateral {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pccsVectors, file))
	if err != nil {
		t.Fatalf("test data (part of the repository): %v", err)
	}
	c, err := sgx.CollateralFromDCAPQVLJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCollateralFetch(t *testing.T) {
	sgxFMSPC := [6]byte{0x00, 0xA0, 0x67, 0x11, 0x00, 0x00}
	tdxFMSPC := [6]byte{0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00}
	sgxPCCS := pccstest.New(t, realCollateral(t, "sgx_quote_collateral.json"), sgxFMSPC, "processor")
	tdxPCCS := pccstest.NewTDX(t, realCollateral(t, "tdx_quote_collateral.json"), tdxFMSPC, "platform")
	bad := realCollateral(t, "sgx_quote_collateral.json")
	i := strings.LastIndex(bad.TCBInfo, `"`) - 1
	flipped := bad.TCBInfo[:i] + map[bool]string{true: "1", false: "0"}[bad.TCBInfo[i] == '0'] + bad.TCBInfo[i+1:]
	badPCCS := pccstest.New(t, bad, sgxFMSPC, "processor")
	badPCCS.Change(&flipped, nil, nil)
	const at = "2025-07-01T00:00:00Z"
	quote := filepath.Join(pccsVectors, "sgx_quote")

	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout, or in stderr on failure
	}{
		{"SGX", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00a067110000", "--at", at}, exitOK, []string{
			"platform:       SGX, FMSPC 00A067110000, PCK processor CA",
			"issuer chain in TCB-Info-Issuer-Chain", "issuer chain in SGX-Enclave-Identity-Issuer-Chain", "issuer chain in SGX-PCK-CRL-Issuer-Chain",
			"TCB info:       id SGX version 3, FMSPC 00A067110000, TCB evaluation data number 17",
			`PCK CRL:        issued by "Intel SGX PCK Processor CA"`,
			"valid until:    2025-07-19T10:01:18Z", sgx.IntelRootCAFingerprint}},
		{"SGX from a quote", []string{"--pccs-url", sgxPCCS.URL, "--quote", quote, "--at", at}, exitOK, []string{
			"quote:          verified; TCB status ConfigurationAndSWHardeningNeeded", "INTEL-SA-00289"}},
		{"TDX", []string{"--pccs-url", tdxPCCS.URL, "--fmspc", "B0C06F000000", "--ca", "platform", "--tdx", "--at", at}, exitOK, []string{
			"platform:       TDX, FMSPC B0C06F000000, PCK platform CA", "/tdx/certification/v4/tcb?fmspc=B0C06F000000",
			"QE identity:    id TD_QE version 2", "valid until:    2025-07-19T10:00:35Z"}},
		{"past nextUpdate", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110000", "--at", "2025-08-01T00:00:00Z"}, exitConnection, []string{"past its nextUpdate"}},
		{"unknown FMSPC", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110001", "--at", at}, exitConnection, []string{"TCB info from", "HTTP 404"}},
		{"TDX asked of an SGX PCCS", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110000", "--tdx", "--at", at}, exitConnection, []string{"/tdx/certification/v4/tcb", "HTTP 404"}},
		{"bad signature", []string{"--pccs-url", badPCCS.URL, "--fmspc", "00A067110000", "--at", at}, exitConnection, []string{"does not verify", "TCB info", "signature"}},
		{"no URL", []string{"--fmspc", "00A067110000"}, exitUsage, []string{"--pccs-url is required"}},
		{"no platform", []string{"--pccs-url", sgxPCCS.URL}, exitUsage, []string{"--fmspc HEX"}},
		{"bad FMSPC", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A0671100"}, exitUsage, []string{"not 6 bytes of hex"}},
		{"bad CA", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110000", "--ca", "root"}, exitUsage, []string{"CA type"}},
		{"quote and FMSPC", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110000", "--quote", quote}, exitUsage, []string{"exclude each other"}},
		{"missing quote", []string{"--pccs-url", sgxPCCS.URL, "--quote", filepath.Join(t.TempDir(), "none")}, exitIO, []string{"no such file"}},
		{"bad time", []string{"--pccs-url", sgxPCCS.URL, "--fmspc", "00A067110000", "--at", "yesterday"}, exitUsage, []string{"RFC 3339"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"collateral", "fetch"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			out := stdout
			if code != exitOK {
				out = stderr
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}
