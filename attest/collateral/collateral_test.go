package collateral_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

// The real vectors: dcap-qvl's SGX quote (FMSPC 00A067110000, PCK
// Processor CA) and TDX quote (FMSPC B0C06F000000, PCK Platform CA), with
// Intel's collateral for each.
var (
	sgxPlatform = pccs.Platform{FMSPC: [6]byte{0x00, 0xA0, 0x67, 0x11, 0x00, 0x00}, CA: pccs.CAProcessor, TEE: pccs.TEESGX}
	tdxPlatform = pccs.Platform{FMSPC: [6]byte{0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00}, CA: pccs.CAPlatform, TEE: pccs.TEETDX}
	// The window of a bundle of both: the latest issue date is the SGX
	// TCB info's issueDate, the earliest next update the TDX QE
	// identity's nextUpdate (the SGX collateral alone ends at
	// 2025-07-19T10:01:18Z, the TDX collateral alone starts at
	// 2025-06-19T10:32:27Z).
	validFrom  = time.Date(2025, 6, 19, 10, 56, 11, 0, time.UTC)
	validUntil = time.Date(2025, 7, 19, 10, 0, 35, 0, time.UTC)
	inside     = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
)

// tdxSigned is the length of the dcap-qvl TDX quote's signed data; the
// file carries zero padding after it, which the TDX verifier refuses.
const tdxSigned = 4936

func vectorCollateral(t *testing.T, rel string) *sgx.Collateral {
	t.Helper()
	c, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sgxQuote(t *testing.T) []byte { return testvectors.Read(t, "sgx/dcap-qvl/sgx_quote") }

func tdxQuote(t *testing.T) []byte {
	q := testvectors.Read(t, "tdx/dcap-qvl/tdx_quote")
	if len(q) < tdxSigned {
		t.Fatalf("TDX quote of %d bytes", len(q))
	}
	return q[:tdxSigned]
}

// realBundle returns the encoded bundle of both real platforms.
func realBundle(t *testing.T) []byte {
	t.Helper()
	b := &collateral.Bundle{FetchedAt: inside, Source: "test vectors"}
	if err := b.Add(sgxPlatform, vectorCollateral(t, "sgx/dcap-qvl/sgx_quote_collateral.json")); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(tdxPlatform, vectorCollateral(t, "tdx/dcap-qvl/tdx_quote_collateral.json")); err != nil {
		t.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func at(t time.Time) sgx.Options { return sgx.Options{Now: func() time.Time { return t }} }

func parse(t *testing.T, data []byte) *collateral.Bundle {
	t.Helper()
	b, err := collateral.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// anyTD accepts every TD: the test is about collateral, not a policy.
type anyTD struct{}

func (anyTD) Check(*tdx.Result) error { return nil }

// verifyTDX verifies the real TDX quote with collateral c at now.
func verifyTDX(t *testing.T, quote []byte, c *sgx.Collateral, now time.Time) error {
	t.Helper()
	enc, err := tdx.EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tdx.NewVerifier(anyTD{}, tdx.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), &attest.Evidence{Type: attest.TypeTDX, Raw: quote, Collateral: enc})
	return err
}

func TestRealBundleVerifies(t *testing.T) {
	b := parse(t, realBundle(t))
	for _, now := range []time.Time{validFrom, inside, validUntil.Add(-time.Second)} {
		check, err := b.Verify(at(now))
		if err != nil {
			t.Fatalf("at %s: %v", now, err)
		}
		if !check.Issued.Equal(validFrom) || !check.NextUpdate.Equal(validUntil) || len(check.Entries) != 2 {
			t.Fatalf("at %s: window %s to %s, %d platforms; want %s to %s, 2", now, check.Issued, check.NextUpdate, len(check.Entries), validFrom, validUntil)
		}
	}
	if b.Source != "test vectors" || !b.FetchedAt.Equal(inside) {
		t.Errorf("metadata lost: source %q, fetched at %s", b.Source, b.FetchedAt)
	}

	c, err := b.ForQuote(sgxQuote(t), at(inside))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sgx.Verify(sgxQuote(t), c, at(inside))
	if err != nil {
		t.Fatalf("the SGX quote with the bundle's collateral: %v", err)
	}
	if res.Status != sgx.ConfigurationAndSWHardeningNeeded || res.TCBRecoveriesBehind != 0 {
		t.Errorf("SGX: %s, %d recoveries behind", res, res.TCBRecoveriesBehind)
	}
	c, err = b.ForQuote(tdxQuote(t), at(inside))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyTDX(t, tdxQuote(t), c, inside); err != nil {
		t.Fatalf("the TDX quote with the bundle's collateral: %v", err)
	}
}

// TestBundleMetadataIgnored: the window written in the file is not what
// Verify uses.
func TestBundleMetadataIgnored(t *testing.T) {
	b := parse(t, realBundle(t))
	b.ValidFrom, b.ValidUntil = validFrom, validUntil.AddDate(1, 0, 0)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = parse(t, data).Verify(at(validUntil.Add(time.Hour)))
	var we *collateral.WindowError
	if !errors.As(err, &we) || !we.NextUpdate.Equal(validUntil) {
		t.Fatalf("err = %v, want the signed window's end %s", err, validUntil)
	}
}

func TestBundleOutsideWindow(t *testing.T) {
	b := parse(t, realBundle(t))
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"one second after nextUpdate", validUntil.Add(time.Second), "collateral bundle: expired: its collateral is valid from 2025-06-19T10:56:11Z to 2025-07-19T10:00:35Z, and expired 1s before the verification time 2025-07-19T10:00:36Z"},
		{"at nextUpdate", validUntil, "expired 0s before the verification time 2025-07-19T10:00:35Z"},
		{"a month later", validUntil.Add(31 * 24 * time.Hour), "expired 744h0m0s before"},
		{"before the latest issue date", validFrom.Add(-time.Second), "collateral bundle: not yet valid: its collateral is valid from 2025-06-19T10:56:11Z to 2025-07-19T10:00:35Z, and the verification time 2025-06-19T10:56:10Z is 1s before that"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, verify := range []func() error{
				func() error { _, err := b.Verify(at(tc.now)); return err },
				func() error { _, err := b.ForQuote(sgxQuote(t), at(tc.now)); return err },
				func() error { _, err := b.ForQuote(tdxQuote(t), at(tc.now)); return err },
			} {
				err := verify()
				var we *collateral.WindowError
				if !errors.As(err, &we) || !errors.Is(err, attest.ErrStaleCollateral) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want a *WindowError saying %q", err, tc.want)
				}
			}
		})
	}
}

func TestBundleWrongPlatform(t *testing.T) {
	only := func(p pccs.Platform, rel string) *collateral.Bundle {
		b := &collateral.Bundle{}
		if err := b.Add(p, vectorCollateral(t, rel)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	tdxOnly := only(tdxPlatform, "tdx/dcap-qvl/tdx_quote_collateral.json")
	_, err := tdxOnly.ForQuote(sgxQuote(t), at(inside))
	if !errors.Is(err, collateral.ErrNoEntry) || !strings.Contains(err.Error(), "needs fmspc=00A067110000 ca=processor tee=sgx") || !strings.Contains(err.Error(), "has fmspc=B0C06F000000 ca=platform tee=tdx") {
		t.Fatalf("SGX quote, TDX bundle: err = %v", err)
	}
	sgxOnly := only(sgxPlatform, "sgx/dcap-qvl/sgx_quote_collateral.json")
	if _, err := sgxOnly.ForQuote(tdxQuote(t), at(inside)); !errors.Is(err, collateral.ErrNoEntry) || !strings.Contains(err.Error(), "needs fmspc=B0C06F000000 ca=platform tee=tdx") {
		t.Fatalf("TDX quote, SGX bundle: err = %v", err)
	}
	// Another FMSPC of the same TEE and CA.
	other := sgxPlatform
	other.FMSPC[5] = 1
	b := only(other, "sgx/dcap-qvl/sgx_quote_collateral.json")
	if _, err := b.ForQuote(sgxQuote(t), at(inside)); !errors.Is(err, collateral.ErrNoEntry) || !strings.Contains(err.Error(), "has fmspc=00A067110001 ca=processor tee=sgx") {
		t.Fatalf("another FMSPC: err = %v", err)
	}
	// Collateral filed under a platform it is not for is refused, whatever
	// the quote.
	if _, err := b.Verify(at(inside)); err == nil || !strings.Contains(err.Error(), "FMSPC") {
		t.Fatalf("collateral under another FMSPC: err = %v", err)
	}
	wrongCA := sgxPlatform
	wrongCA.CA = pccs.CAPlatform
	if _, err := only(wrongCA, "sgx/dcap-qvl/sgx_quote_collateral.json").Verify(at(inside)); err == nil || !strings.Contains(err.Error(), "PCK CRL is issued by") {
		t.Fatalf("collateral under another CA: err = %v", err)
	}
	wrongTEE := sgxPlatform
	wrongTEE.TEE = pccs.TEETDX
	if _, err := only(wrongTEE, "sgx/dcap-qvl/sgx_quote_collateral.json").Verify(at(inside)); err == nil || !strings.Contains(err.Error(), `TCB info is for "SGX", want "TDX"`) {
		t.Fatalf("collateral under another TEE: err = %v", err)
	}
}

// TestTamperedBundle changes one byte of a signed item in the file: the
// bundle is refused, naming the platform and the item.
func TestTamperedBundle(t *testing.T) {
	data := realBundle(t)
	// at returns the offset of the byte after the first occurrence of
	// marker, which must be in the file.
	after := func(marker string) int {
		i := bytes.Index(data, []byte(marker))
		if i < 0 {
			t.Fatalf("%q is not in the bundle", marker)
		}
		return i + len(marker)
	}
	tests := []struct {
		name string
		pos  int
		item sgx.Item
	}{
		// The last digit of the SGX TCB info's pceId, which only it has.
		{"TCB info", after(`\"pceId\":\"000`), sgx.ItemTCBInfo},
		// The last digit of the SGX QE identity's issueDate.
		{"QE identity", after(`\"id\":\"QE\",\"version\":2,\"issueDate\":\"2025-06-19T10:01:1`), sgx.ItemQEIdentity},
		// A base64 digit of the first platform's CRLs, well inside the
		// signed part (tbsCertList).
		{"PCK CRL", after(`"pck_crl": "-----BEGIN X509 CRL-----\n`) + 60, sgx.ItemPCKCRL},
		{"root CA CRL", after(`"root_ca_crl": "-----BEGIN X509 CRL-----\n`) + 60, sgx.ItemRootCACRL},
		// A base64 digit of the TCB signing certificate.
		{"TCB info issuer chain", after(`"tcb_info_issuer_chain": "-----BEGIN CERTIFICATE-----\n`) + 60, sgx.ItemTCBInfoIssuerChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(data)
			switch c := bad[tc.pos]; {
			case c == '0':
				bad[tc.pos] = '1'
			case c >= '1' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
				bad[tc.pos] = '0'
			default:
				t.Fatalf("byte %q at %d is not a digit or letter", c, tc.pos)
			}
			b, err := collateral.Parse(bad)
			if err != nil {
				t.Fatal(err)
			}
			for _, now := range []time.Time{inside, validUntil.Add(time.Hour)} {
				_, err = b.Verify(at(now))
				var se *sgx.Error
				if !errors.As(err, &se) || se.Item != tc.item || !strings.Contains(err.Error(), "collateral bundle: fmspc=00A067110000") || !strings.Contains(err.Error(), string(tc.item)) {
					t.Fatalf("at %s: err = %v, want a failure of the %s", now, err, tc.item)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := string(realBundle(t))
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "{", "collateral bundle"},
		{"another format", strings.Replace(good, collateral.Format, "something-else", 1), "format"},
		{"another version", strings.Replace(good, `"version": 1`, `"version": 2`, 1), "version 2"},
		{"unknown key", strings.Replace(good, `"version": 1`, `"version": 1, "trusted": true`, 1), "unknown field"},
		{"no platforms", `{"format": "` + collateral.Format + `", "version": 1, "platforms": []}`, "no platform"},
		{"bad TEE", strings.Replace(good, `"tee": "tdx"`, `"tee": "snp"`, 1), `tee "snp"`},
		{"bad FMSPC", strings.Replace(good, `"fmspc": "B0C06F000000"`, `"fmspc": "B0C06F"`, 1), "FMSPC"},
		{"platform twice", strings.Replace(good, `"tee": "tdx",
      "fmspc": "B0C06F000000",
      "ca": "platform"`, `"tee": "sgx",
      "fmspc": "00A067110000",
      "ca": "processor"`, 1), "twice"},
		{"trailing data", good + "{}", "after the JSON object"},
		{"bad time", strings.Replace(good, `"fetched_at": "2025-07-01T00:00:00Z"`, `"fetched_at": "yesterday"`, 1), "fetched_at"},
		{"too large", good + strings.Repeat(" ", collateral.MaxBundleBytes), "more than"},
		{"control characters in the source", strings.Replace(good, `"source": "test vectors"`, `"source": "\u001b]0;owned\u0007"`, 1), "source is not printable"},
		{"source too long", strings.Replace(good, `"source": "test vectors"`, `"source": "`+strings.Repeat("a", collateral.MaxSourceBytes+1)+`"`, 1), "source is not printable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good {
				t.Fatal("the replacement did not apply")
			}
			_, err := collateral.Parse([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestFetchBundleVerify: collateral fetched from a PCCS (the fake one,
// serving Intel's real collateral) goes into a bundle, through a file, and
// verifies both real quotes.
func TestFetchBundleVerify(t *testing.T) {
	sgxPCCS := pccstest.New(t, vectorCollateral(t, "sgx/dcap-qvl/sgx_quote_collateral.json"), sgxPlatform.FMSPC, sgxPlatform.CA)
	tdxPCCS := pccstest.NewTDX(t, vectorCollateral(t, "tdx/dcap-qvl/tdx_quote_collateral.json"), tdxPlatform.FMSPC, tdxPlatform.CA)
	b := &collateral.Bundle{FetchedAt: inside}
	for _, x := range []struct {
		url string
		p   pccs.Platform
	}{{sgxPCCS.URL, sgxPlatform}, {tdxPCCS.URL, tdxPlatform}} {
		f, err := (&pccs.Client{BaseURL: x.url}).Fetch(context.Background(), x.p, inside)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(f.Platform, f.Collateral); err != nil {
			t.Fatal(err)
		}
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	read, err := collateral.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := read.ForQuote(sgxQuote(t), at(inside))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := sgx.Verify(sgxQuote(t), c, at(inside)); err != nil || res.Status != sgx.ConfigurationAndSWHardeningNeeded {
		t.Fatalf("SGX quote: %v, %v", res, err)
	}
	if c, err = read.ForQuote(tdxQuote(t), at(inside)); err != nil {
		t.Fatal(err)
	}
	if err := verifyTDX(t, tdxQuote(t), c, inside); err != nil {
		t.Fatalf("TDX quote: %v", err)
	}
	if _, err := read.ForQuote(sgxQuote(t), at(validUntil.Add(time.Second))); !errors.Is(err, attest.ErrStaleCollateral) {
		t.Fatalf("after the window: err = %v", err)
	}
}

func TestAddRefuses(t *testing.T) {
	b := &collateral.Bundle{}
	c := vectorCollateral(t, "sgx/dcap-qvl/sgx_quote_collateral.json")
	if err := b.Add(sgxPlatform, c); err != nil {
		t.Fatal(err)
	}
	sgxDefault := sgxPlatform
	sgxDefault.TEE = ""
	if err := b.Add(sgxDefault, c); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("same platform again: err = %v", err)
	}
	bad := *c
	bad.TCBInfo += "\xff"
	if err := (&collateral.Bundle{}).Add(sgxPlatform, &bad); err == nil || !strings.Contains(err.Error(), "TCB info is not text") {
		t.Fatalf("invalid UTF-8: err = %v", err)
	}
	if _, err := (&collateral.Bundle{}).Marshal(); err == nil {
		t.Fatal("an empty bundle was written")
	}
	// At most MaxPlatforms platforms, whether added or read from a file.
	many := &collateral.Bundle{}
	for i := range collateral.MaxPlatforms + 1 {
		p := sgxPlatform
		p.FMSPC = [6]byte{byte(i >> 8), byte(i), 1, 2, 3, 4}
		err := many.Add(p, c)
		if i < collateral.MaxPlatforms && err != nil {
			t.Fatalf("platform %d: %v", i, err)
		}
		if i == collateral.MaxPlatforms && (err == nil || !strings.Contains(err.Error(), "more than")) {
			t.Fatalf("platform %d of %d: err = %v", i+1, collateral.MaxPlatforms, err)
		}
	}
	data, err := many.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collateral.Parse(data); err != nil {
		t.Fatalf("a file of %d platforms: %v", collateral.MaxPlatforms, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	platforms := doc["platforms"].([]any)
	extra := map[string]any{}
	for k, v := range platforms[0].(map[string]any) {
		extra[k] = v
	}
	extra["fmspc"] = "FFFFFFFFFFFF"
	doc["platforms"] = append(platforms, extra)
	over, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collateral.Parse(over); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a file of %d platforms: err = %v", collateral.MaxPlatforms+1, err)
	}
}

// TestQuotePlatformTDXVersion5: the platform of a TDX quote of version 5
// (TDX 1.5) is read from its PCK certificate, as for version 4.
func TestQuotePlatformTDXVersion5(t *testing.T) {
	p, err := collateral.QuotePlatform(testvectors.Read(t, "tdx/go-tdx-guest/quote_v5_sample.dat"))
	want := pccs.Platform{FMSPC: [6]byte{0x90, 0xc0, 0x6f}, CA: pccs.CAPlatform, TEE: pccs.TEETDX}
	if err != nil || p != want {
		t.Fatalf("QuotePlatform = %v, %v, want %v", p, err, want)
	}
}
