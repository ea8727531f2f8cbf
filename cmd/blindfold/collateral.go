package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

func collateralFetchCommand() *command {
	return &command{
		name:     "fetch",
		synopsis: "blindfold collateral fetch --pccs-url URL (--fmspc HEX [--ca processor|platform] [--tdx] | --quote FILE) [flags]",
		summary:  "test a PCCS: fetch DCAP collateral once, verify it and print it",
		help: `Fetches the collateral of one platform from a PCCS or Intel's PCS (API v4)
exactly as a hardware-mode server does (TCB info, QE identity, PCK CRL,
root CA CRL), verifies it against the pinned Intel SGX Root CA (signing
chains, signatures, CRLs, validity dates) and prints what it got, with the
response header each issuer chain came in. Run it against a new PCCS
before the first client connects.

The platform is given by --fmspc (and --ca, --tdx), or read from an SGX
quote's PCK certificate with --quote, in which case the quote is verified
with the collateral too and its TCB status printed. Exits 2 if the
collateral cannot be fetched or does not verify.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			pccsURL := fs.String("pccs-url", "", "base `URL` of the PCCS (https://pccs:8081) or Intel's PCS (https://api.trustedservices.intel.com)")
			fmspc := fs.String("fmspc", "", "the platform's FMSPC (`HEX`, 12 digits)")
			ca := fs.String("ca", pccs.CAProcessor, "the PCK certificate's CA `TYPE`: processor or platform")
			tdx := fs.Bool("tdx", false, "fetch TDX collateral (TDX TCB info and TD QE identity) instead of SGX")
			quotePath := fs.String("quote", "", "SGX quote `FILE`: take the platform from its PCK certificate and verify the quote too")
			rootCRLURL := fs.String("root-ca-crl-url", "", "root CA CRL `URL` (default: Intel's distribution point with Intel's PCS, else the PCCS's rootcacrl)")
			insecure := fs.Bool("pccs-insecure-skip-verify", false, "do not check the PCCS's TLS certificate (the collateral is still verified)")
			atFlag := fs.String("at", "", "verify at this `TIME` (RFC 3339) instead of now")
			timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
			return func(e *env, _ []string) error {
				if *pccsURL == "" {
					return usageErrorf("--pccs-url is required")
				}
				if *timeout <= 0 {
					return usageErrorf("--timeout must be positive")
				}
				now := time.Now()
				if *atFlag != "" {
					t, err := time.Parse(time.RFC3339, *atFlag)
					if err != nil {
						return usageErrorf("--at %q: want an RFC 3339 time such as 2026-03-01T12:00:00Z", *atFlag)
					}
					now = t
				}
				var quote *abi.Quote
				var p pccs.Platform
				switch {
				case *quotePath != "" && (*fmspc != "" || *tdx):
					return usageErrorf("--quote and --fmspc/--tdx exclude each other")
				case *quotePath != "":
					raw, err := os.ReadFile(*quotePath)
					if err != nil {
						return withCode(exitIO, err)
					}
					if quote, err = abi.ParseQuote(raw); err != nil {
						return usageErrorf("--quote %s: %v", *quotePath, err)
					}
					if p, err = pccs.QuotePlatform(quote); err != nil {
						return usageErrorf("--quote %s: %v", *quotePath, err)
					}
				case *fmspc != "":
					tee := pccs.TEESGX
					if *tdx {
						tee = pccs.TEETDX
					}
					var err error
					if p, err = pccs.ParsePlatform(*fmspc, *ca, tee); err != nil {
						return usageErrorf("%v", err)
					}
				default:
					return usageErrorf("give the platform: --fmspc HEX (with --ca, --tdx) or --quote FILE")
				}
				hc := &http.Client{}
				if *insecure {
					tr := http.DefaultTransport.(*http.Transport).Clone()
					tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
					hc.Transport = tr
					fmt.Fprintln(e.stderr, "warning: --pccs-insecure-skip-verify: the PCCS's TLS certificate is not checked")
				}
				ctx, cancel := context.WithTimeout(e.ctx, *timeout)
				defer cancel()
				client := &pccs.Client{BaseURL: *pccsURL, RootCACRLURL: *rootCRLURL, HTTP: hc}
				f, err := client.Fetch(ctx, p, now)
				if err != nil {
					return withCode(exitConnection, fmt.Errorf("fetching the collateral: %w", err))
				}
				opts := sgx.Options{Now: func() time.Time { return now }}
				check, err := f.Verify(opts)
				if err != nil {
					printFetched(e.stdout, f, nil)
					return withCode(exitConnection, fmt.Errorf("the collateral served does not verify: %w", err))
				}
				printFetched(e.stdout, f, check)
				if quote != nil {
					res, err := sgx.VerifyQuote(quote, f.Collateral, opts)
					if err != nil {
						return withCode(exitConnection, fmt.Errorf("the quote does not verify with this collateral: %w", err))
					}
					fmt.Fprintf(e.stdout, "quote:          verified; TCB status %s (platform %s, QE %s), advisories %s\n",
						res.Status, res.PlatformStatus, res.QEStatus, orNoneList(res.AdvisoryIDs))
				}
				return nil
			}
		},
	}
}

func orNoneList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// printFetched prints fetched collateral and, when it verified, what the
// check found.
func printFetched(w io.Writer, f *pccs.Fetched, c *sgx.CollateralCheck) {
	day := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	tee := "SGX"
	if f.Platform.TEE == pccs.TEETDX {
		tee = "TDX"
	}
	fmt.Fprintf(w, "platform:       %s, FMSPC %X, PCK %s CA\n", tee, f.Platform.FMSPC, f.Platform.CA)
	for _, r := range f.Responses {
		how := []string{}
		if r.IssuerChainHeader != "" {
			how = append(how, "issuer chain in "+r.IssuerChainHeader)
		}
		if r.Encoding != "" {
			how = append(how, r.Encoding)
		}
		if r.ContentType != "" {
			how = append(how, r.ContentType)
		}
		fmt.Fprintf(w, "%-15s %s (%s)\n", r.Item+":", r.URL, strings.Join(how, ", "))
	}
	if c == nil {
		return
	}
	signed := func(name string, s sgx.SignedCollateral) {
		fmspc := ""
		if s.FMSPC != "" {
			fmspc = ", FMSPC " + strings.ToUpper(s.FMSPC)
		}
		fmt.Fprintf(w, "%-15s id %s version %d%s, TCB evaluation data number %d, issued %s, next update %s, signed by %q\n",
			name+":", s.ID, s.Version, fmspc, s.TCBEvaluationDataNumber, day(s.IssueDate), day(s.NextUpdate), s.Signer)
	}
	crl := func(name string, r sgx.CheckedCRL) {
		fmt.Fprintf(w, "%-15s issued by %q, %d revoked, this update %s, next update %s\n",
			name+":", r.Issuer, r.Revoked, day(r.ThisUpdate), day(r.NextUpdate))
	}
	signed("TCB info", c.TCBInfo)
	signed("QE identity", c.QEIdentity)
	crl("PCK CRL", c.PCKCRL)
	crl("root CA CRL", c.RootCACRL)
	fmt.Fprintf(w, "verified:       chains and signatures up to the pinned Intel SGX Root CA (SHA-256 %s), at %s\n", sgx.IntelRootCAFingerprint, day(f.FetchedAt))
	fmt.Fprintf(w, "valid until:    %s (the earliest next update; the server fetches again before it)\n", day(c.NextUpdate))
}
