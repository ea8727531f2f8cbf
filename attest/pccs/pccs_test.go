package pccs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

func parse(t *testing.T, quote []byte) *abi.Quote {
	t.Helper()
	q, err := abi.ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestSyntheticFetchAndCache(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	q := parse(t, ev.Quote)
	p, err := QuotePlatform(q)
	if err != nil {
		t.Fatal(err)
	}
	if p.FMSPC != b.FMSPC || p.CA != CAProcessor {
		t.Fatalf("platform %v", p)
	}
	f := pccstest.New(t, ev.Collateral, b.FMSPC, CAProcessor)
	clock := now
	cache := &Cache{Client: &Client{BaseURL: f.URL + "/"}, Now: func() time.Time { return clock }}
	ctx := context.Background()
	c, err := cache.Collateral(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// What was fetched verifies the quote.
	if _, err := sgx.Verify(ev.Quote, c, sgx.Options{Now: func() time.Time { return now }, TestRoot: pki.Root}); err != nil {
		t.Fatalf("fetched collateral does not verify: %v", err)
	}
	// Served from memory while fresh.
	clock = now.Add(2 * time.Hour)
	if _, err := cache.Collateral(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := f.Hits(PathTCBInfo); n != 1 {
		t.Fatalf("TCB info fetched %d times, want 1 (cached)", n)
	}
	// Refetched after MaxAge.
	clock = now.Add(25 * time.Hour)
	if _, err := cache.Collateral(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := f.Hits(PathTCBInfo); n != 2 {
		t.Fatalf("TCB info fetched %d times, want 2 (refreshed after a day)", n)
	}
	// The PCCS fails: collateral still before its nextUpdate is served.
	f.SetFailing(true)
	clock = now.Add(50 * time.Hour)
	if _, err := cache.Collateral(ctx, q); err != nil {
		t.Fatalf("cached collateral not served during an outage: %v", err)
	}
	// Past the earliest nextUpdate (the PCK CRL's, 29 days), an outage is
	// an error that says why.
	clock = now.AddDate(0, 0, 29)
	_, err = cache.Collateral(ctx, q)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v, want ErrUnavailable naming the HTTP status", err)
	}
}

func TestFetchRefuses(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := Platform{FMSPC: b.FMSPC, CA: CAProcessor}
	tests := []struct {
		name   string
		change func(f *pccstest.Server, p *Platform, now *time.Time)
		want   string
	}{
		{"no TCB info issuer chain", func(f *pccstest.Server, _ *Platform, _ *time.Time) { f.OmitHeader("TCB-Info-Issuer-Chain") }, "expected header TCB-Info-Issuer-Chain (or the API v3 name SGX-TCB-Info-Issuer-Chain)"},
		{"no QE identity issuer chain", func(f *pccstest.Server, _ *Platform, _ *time.Time) {
			f.OmitHeader("SGX-Enclave-Identity-Issuer-Chain")
		}, "expected header SGX-Enclave-Identity-Issuer-Chain"},
		{"no PCK CRL issuer chain", func(f *pccstest.Server, _ *Platform, _ *time.Time) { f.OmitHeader("SGX-PCK-CRL-Issuer-Chain") }, "expected header SGX-PCK-CRL-Issuer-Chain"},
		{"unknown FMSPC", func(_ *pccstest.Server, p *Platform, _ *time.Time) { p.FMSPC[0] ^= 1 }, "404"},
		{"TCB info for another FMSPC", func(f *pccstest.Server, p *Platform, _ *time.Time) {
			other := "FFFFFFFFFFFF"
			f.Change(nil, nil, &other)
			p.FMSPC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		}, "asked for FFFFFFFFFFFF"},
		{"TDX asked of an SGX-only PCCS", func(_ *pccstest.Server, p *Platform, _ *time.Time) { p.TEE = TEETDX }, "404"},
		{"unknown TEE", func(_ *pccstest.Server, p *Platform, _ *time.Time) { p.TEE = "sev" }, "TEE"},
		{"bad CA type", func(_ *pccstest.Server, p *Platform, _ *time.Time) { p.CA = "other" }, "CA type"},
		{"TCB info not JSON", func(f *pccstest.Server, _ *Platform, _ *time.Time) { html := "<html>"; f.Change(&html, nil, nil) }, "not JSON"},
		{"PCK CRL not a CRL", func(f *pccstest.Server, _ *Platform, _ *time.Time) { nope := []byte("nope"); f.Change(nil, &nope, nil) }, "not a CRL (DER)"},
		{"collateral past nextUpdate", func(_ *pccstest.Server, _ *Platform, now *time.Time) { *now = now.AddDate(0, 2, 0) }, "past its nextUpdate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pccstest.New(t, ev.Collateral, b.FMSPC, CAProcessor)
			pp, at := p, now
			tc.change(f, &pp, &at)
			_, err := (&Client{BaseURL: f.URL}).Fetch(context.Background(), pp, at)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrUnavailable mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := (&Client{}).Fetch(context.Background(), p, now); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no URL: %v", err)
	}
}

func TestRootCRLURL(t *testing.T) {
	for _, tc := range []struct {
		c    Client
		want string
	}{
		{Client{BaseURL: "https://pccs.example:8081/"}, "https://pccs.example:8081/sgx/certification/v4/rootcacrl"},
		{Client{BaseURL: IntelPCSURL}, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"},
		{Client{BaseURL: IntelPCSURL, RootCACRLURL: "https://mirror/root.crl"}, "https://mirror/root.crl"},
	} {
		if got := tc.c.rootCRLURL(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.c.BaseURL, got, tc.want)
		}
	}
}
