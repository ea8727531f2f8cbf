package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// maxQuoteFile bounds a --quote file: SGX and TDX quotes are a few KiB
// (attest/tdx accepts at most 64 KiB).
const maxQuoteFile = 64 << 10

func collateralFetchCommand() *command {
	return &command{
		name:     "fetch",
		synopsis: "blindfold collateral fetch --pccs-url URL (--fmspc HEX[:CA] ... [--ca processor|platform] [--tdx] [--tdx-fmspc HEX[:CA] ...] | --quote FILE) [--out BUNDLE] [flags]",
		summary:  "test a PCCS: fetch DCAP collateral, verify it and print it; --out writes an offline bundle",
		help: `Fetches the collateral of one or several platforms from a PCCS or
Intel's PCS (API v4) exactly as a hardware-mode server does (TCB info, QE
identity, PCK CRL, root CA CRL), verifies it against the pinned Intel SGX
Root CA (signing chains, signatures, CRLs, validity dates) and prints what
it got, with the response header each issuer chain came in. Run it
against a new PCCS before the first client connects.

The platforms are given by --fmspc (repeat it for several; HEX:CA names a
platform's PCK CA type, else --ca applies; --tdx makes them TDX
platforms) and --tdx-fmspc (TDX platforms beside SGX ones), or read from
a quote's PCK certificate with --quote, in which case the quote is
verified with the collateral too and its TCB status printed, with how
many TCB recoveries its platform is behind.

--out BUNDLE writes everything fetched, once it has all verified, to an
offline collateral bundle (JSON, docs/collateral.md) that "proof verify
--collateral-bundle" and "attest --collateral-bundle" verify with instead
of the network or the server's collateral. The bundle verifies from the
latest issue date to the earliest next update of all its items, which
are checked again from their signed contents whenever it is used.

Exits 2 if the collateral cannot be fetched or does not verify.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			pccsURL := fs.String("pccs-url", "", "base `URL` of the PCCS (https://pccs:8081) or Intel's PCS (https://api.trustedservices.intel.com)")
			var sgxFMSPCs, tdxFMSPCs stringsFlag
			fs.Var(&sgxFMSPCs, "fmspc", "a platform's FMSPC (`HEX`, 12 digits, or HEX:CA); repeat for several")
			fs.Var(&tdxFMSPCs, "tdx-fmspc", "a TDX platform's FMSPC (`HEX` or HEX:CA); repeat for several")
			ca := fs.String("ca", pccs.CAProcessor, "the PCK certificate's CA `TYPE` for --fmspc values without one: processor or platform")
			tdx := fs.Bool("tdx", false, "the --fmspc platforms are TDX platforms (TDX TCB info and TD QE identity)")
			quotePath := fs.String("quote", "", "SGX quote `FILE`: take the platform from its PCK certificate and verify the quote too")
			out := fs.String("out", "", "write the verified collateral to this offline bundle `FILE` (JSON)")
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
				var platforms []pccs.Platform
				switch {
				case *quotePath != "" && (len(sgxFMSPCs) > 0 || len(tdxFMSPCs) > 0 || *tdx):
					return usageErrorf("--quote and --fmspc/--tdx-fmspc/--tdx exclude each other")
				case *quotePath != "":
					raw, err := readSmallFile(*quotePath, maxQuoteFile)
					if err != nil {
						return withCode(exitIO, err)
					}
					if quote, err = abi.ParseQuote(raw); err != nil {
						return usageErrorf("--quote %s: %v", *quotePath, err)
					}
					p, err := pccs.QuotePlatform(quote)
					if err != nil {
						return usageErrorf("--quote %s: %v", *quotePath, err)
					}
					platforms = append(platforms, p)
				case len(sgxFMSPCs) > 0 || len(tdxFMSPCs) > 0:
					tee := pccs.TEESGX
					if *tdx {
						tee = pccs.TEETDX
					}
					for _, l := range []struct {
						values []string
						tee    pccs.TEE
					}{{sgxFMSPCs, tee}, {tdxFMSPCs, pccs.TEETDX}} {
						for _, v := range l.values {
							fmspc, typ, ok := strings.Cut(v, ":")
							if !ok {
								typ = *ca
							}
							p, err := pccs.ParsePlatform(fmspc, typ, l.tee)
							if err != nil {
								return usageErrorf("%v", err)
							}
							if slices.Contains(platforms, p) {
								return usageErrorf("platform %s is given twice", p)
							}
							platforms = append(platforms, p)
						}
					}
				default:
					return usageErrorf("give the platform: --fmspc HEX (with --ca, --tdx), --tdx-fmspc HEX, or --quote FILE")
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
				opts := sgx.Options{Now: func() time.Time { return now }}
				bundle := &collateral.Bundle{FetchedAt: time.Now().UTC().Truncate(time.Second), Source: *pccsURL}
				for i, p := range platforms {
					if i > 0 {
						fmt.Fprintln(e.stdout)
					}
					f, err := client.Fetch(ctx, p, now)
					if err != nil {
						return withCode(exitConnection, fmt.Errorf("fetching the collateral: %w", err))
					}
					check, err := f.Verify(opts)
					if err != nil {
						printFetched(e.stdout, f, nil)
						return withCode(exitConnection, fmt.Errorf("the collateral served does not verify: %w", err))
					}
					printFetched(e.stdout, f, check)
					if err := bundle.Add(p, f.Collateral); err != nil {
						return withCode(exitConnection, err)
					}
					if quote != nil {
						res, err := sgx.VerifyQuote(quote, f.Collateral, opts)
						if err != nil {
							return withCode(exitConnection, fmt.Errorf("the quote does not verify with this collateral: %w", err))
						}
						fmt.Fprintf(e.stdout, "quote:          verified; TCB status %s (platform %s, QE %s), advisories %s\n",
							res.Status, res.PlatformStatus, res.QEStatus, orNoneList(res.AdvisoryIDs))
						fmt.Fprintf(e.stdout, "TCB recoveries: %s\n", recoveriesLine(res))
					}
				}
				if *out == "" {
					return nil
				}
				return writeBundle(e, bundle, *out, opts)
			}
		},
	}
}

// writeBundle verifies a bundle as a verifier will (every platform, the
// window from the signed contents), records its window, and writes it.
func writeBundle(e *env, b *collateral.Bundle, path string, opts sgx.Options) error {
	check, err := b.Verify(opts)
	if err != nil {
		return withCode(exitConnection, fmt.Errorf("the bundle does not verify: %w", err))
	}
	b.ValidFrom, b.ValidUntil = check.Issued, check.NextUpdate
	data, err := b.Marshal()
	if err != nil {
		return withCode(exitIO, err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return withCode(exitIO, fmt.Errorf("--out: %w", err))
	}
	var names []string
	for _, p := range b.Platforms() {
		names = append(names, platformName(p))
	}
	fmt.Fprintf(e.stdout, "\nbundle:         wrote %s: %s; valid from %s until %s\n", path, strings.Join(names, "; "),
		check.Issued.UTC().Format(time.RFC3339), check.NextUpdate.UTC().Format(time.RFC3339))
	return nil
}

// platformName says "SGX, FMSPC 00A067110000, PCK processor CA".
func platformName(p pccs.Platform) string {
	tee := "SGX"
	if p.TEE == pccs.TEETDX {
		tee = "TDX"
	}
	return fmt.Sprintf("%s, FMSPC %X, PCK %s CA", tee, p.FMSPC, p.CA)
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so that a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// recoveriesLine says how many TCB recoveries a verified quote's platform
// is behind, as its TCB info says (see sgx.Result.TCBRecoveriesBehind).
func recoveriesLine(r *sgx.Result) string {
	day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	switch n := r.TCBRecoveriesBehind; {
	case n < 0:
		return "unknown (the TCB info's levels have no tcbDate)"
	case n == 0:
		return fmt.Sprintf("0 TCB recoveries behind: the platform's TCB level is of the latest TCB recovery (%s)", day(r.LatestTCBDate))
	case n == 1:
		return fmt.Sprintf("1 TCB recovery behind: UpToDate needs TCB level of %s (the platform's is of %s)", day(r.LatestTCBDate), day(r.TCBDate))
	default:
		return fmt.Sprintf("%d TCB recoveries behind: UpToDate needs TCB level of %s (the platform's is of %s)", n, day(r.LatestTCBDate), day(r.TCBDate))
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
	printCheck(w, c)
	fmt.Fprintf(w, "verified:       chains and signatures up to the pinned Intel SGX Root CA (SHA-256 %s), at %s\n", sgx.IntelRootCAFingerprint, f.FetchedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "valid until:    %s (the earliest next update; the server fetches again before it)\n", c.NextUpdate.UTC().Format(time.RFC3339))
}

// printCheck prints what sgx.VerifyCollateral found.
func printCheck(w io.Writer, c *sgx.CollateralCheck) {
	day := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
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
}

func collateralVerifyCommand() *command {
	return &command{
		name:     "verify",
		synopsis: "blindfold collateral verify BUNDLE [--quote FILE] [--at RFC3339]",
		summary:  "check an offline collateral bundle (and an SGX quote with it) and print what it holds",
		help: `Reads an offline collateral bundle ("collateral fetch --out"), verifies
every item of every platform in it against the pinned Intel SGX Root CA
at the verification time (signing chains, signatures over the exact
bytes, CRLs, revocation, dates, and that each item is for the platform it
is filed under), and prints its platforms, items and validity window:
from the latest issue date to the earliest next update of all its items,
as their signed contents say. The fetch time and source written in the
bundle are printed as its own account, not checked.

--quote FILE verifies an SGX quote with the bundle's collateral for its
platform and prints its TCB status and how many TCB recoveries its
platform is behind. Exits 2 if the bundle or the quote does not verify
(a bundle past its next update among them).`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			quotePath := fs.String("quote", "", "SGX quote `FILE` to verify with the bundle's collateral for its platform")
			atFlag := fs.String("at", "", "verify at this `TIME` (RFC 3339) instead of now")
			return func(e *env, args []string) error {
				now := time.Now()
				if *atFlag != "" {
					t, err := time.Parse(time.RFC3339, *atFlag)
					if err != nil {
						return usageErrorf("--at %q: want an RFC 3339 time such as 2026-03-01T12:00:00Z", *atFlag)
					}
					now = t
				}
				var quote []byte
				if *quotePath != "" {
					var err error
					if quote, err = readSmallFile(*quotePath, maxQuoteFile); err != nil {
						return withCode(exitIO, err)
					}
				}
				b, err := collateral.ReadFile(args[0])
				if err != nil {
					return withCode(exitIO, err)
				}
				opts := sgx.Options{Now: func() time.Time { return now }}
				check, err := b.Verify(opts)
				if err != nil {
					return withCode(exitConnection, fmt.Errorf("the bundle %s does not verify: %w", args[0], err))
				}
				day := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
				fmt.Fprintf(e.stdout, "bundle:         %s, %d platforms\n", args[0], len(check.Entries))
				if b.Source != "" || !b.FetchedAt.IsZero() {
					fmt.Fprintf(e.stdout, "fetched:        from %s at %s (the bundle's own account, not checked)\n", orNone(b.Source), orNone(day(b.FetchedAt)))
				}
				for _, c := range check.Entries {
					fmt.Fprintf(e.stdout, "platform:       %s\n", platformName(c.Platform))
					printCheck(e.stdout, c.CollateralCheck)
				}
				fmt.Fprintf(e.stdout, "verified:       chains and signatures up to the pinned Intel SGX Root CA (SHA-256 %s), at %s\n", sgx.IntelRootCAFingerprint, day(now))
				fmt.Fprintf(e.stdout, "valid:          from %s until %s (the latest issue date and the earliest next update of all items)\n", day(check.Issued), day(check.NextUpdate))
				if quote == nil {
					return nil
				}
				q, err := abi.ParseQuote(quote)
				if err != nil {
					return usageErrorf("--quote %s: %v (an SGX quote; TDX quotes are verified by attest --collateral-bundle)", *quotePath, err)
				}
				// The bundle was verified whole above: only its entry for
				// the quote's platform is looked up.
				p, err := collateral.QuotePlatform(quote)
				if err != nil {
					return usageErrorf("--quote %s: %v", *quotePath, err)
				}
				c, err := b.Lookup(p)
				if err != nil {
					return withCode(exitConnection, fmt.Errorf("--quote %s: %w", *quotePath, err))
				}
				res, err := sgx.VerifyQuote(q, c, opts)
				if err != nil {
					return withCode(exitConnection, fmt.Errorf("the quote does not verify with the bundle's collateral: %w", err))
				}
				fmt.Fprintf(e.stdout, "quote:          verified; TCB status %s (platform %s, QE %s), advisories %s\n",
					res.Status, res.PlatformStatus, res.QEStatus, orNoneList(res.AdvisoryIDs))
				fmt.Fprintf(e.stdout, "TCB recoveries: %s\n", recoveriesLine(res))
				return nil
			}
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "(not said)"
	}
	return s
}
