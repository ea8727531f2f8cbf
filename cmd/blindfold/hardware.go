package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
)

const testRootBanner = `WARNING: --insecure-test-root-ca: evidence is verified against a TEST root
CA instead of Intel's. It proves nothing about hardware. For tests only.
`

// loadPolicy reads a policy.toml for --policy, and prints its warnings
// (what a BlindAI 0.5 policy accepts) on standard error.
func loadPolicy(e *env, path string) (*policy.Policy, error) {
	p, err := policy.Load(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, withCode(exitIO, err)
		}
		return nil, withCode(exitUsage, fmt.Errorf("--policy %s: %w", path, err))
	}
	for _, w := range p.Warnings() {
		fmt.Fprintf(e.stderr, "WARNING: %s: %s\n", path, w)
	}
	return p, nil
}

// loadTestRoot reads the certificate of --insecure-test-root-ca.
func loadTestRoot(path string) (*x509.Certificate, error) {
	c, err := identity.LoadCertificatePEM(path)
	if err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--insecure-test-root-ca: %w", err))
	}
	return c, nil
}

func attestCommand() *command {
	return &command{
		name: "attest", addr: true,
		synopsis: "blindfold attest [ADDR] --policy policy.toml [--fresh] [--collateral-bundle FILE] [--format text|ear|ear-jwt [--ear-key FILE]] [connection flags]",
		summary:  "verify the server's hardware evidence against a policy and print it",
		help: `Fetches the server's SGX DCAP evidence, verifies it (quote, collateral,
PCK chain to the pinned Intel SGX Root CA, revocation, TCB status), checks
the enclave against the policy (policy.toml: MRENCLAVE or MRSIGNER,
attributes, accepted TCB statuses and advisories), checks that the report
data binds the attested certificate, opens the attested port pinning that
certificate, and prints what was verified. Exits 2 if anything fails.

--fresh binds the evidence to a random nonce (Blindfold servers only), so a
replayed quote is refused.

--collateral-bundle FILE verifies the quote with the collateral an offline
bundle ("collateral fetch --out") holds for its platform instead of the
collateral the server sends, so that the server's word on the freshness
of its collateral is not taken. The bundle is verified whole first: one
past its next update, or without the quote's platform, is refused.

` + earFlagsHelp,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cf := addConnFlags(fs)
			fresh := fs.Bool("fresh", false, "bind the evidence to a random nonce (blindfold.v1.Evidence/GetEvidence)")
			bundleFile := fs.String("collateral-bundle", "", "verify the quote with the collateral in this offline bundle `FILE` (collateral fetch --out) instead of the server's")
			ef := addEARFlags(fs)
			return func(e *env, args []string) error {
				if err := ef.check(); err != nil {
					return err
				}
				addr, err := cf.resolve(args[0])
				if err != nil {
					return err
				}
				if cf.Policy == "" {
					return usageErrorf("attest needs --policy policy.toml (generate it with \"blindfold policy from-sigstruct\")")
				}
				if cf.Simulation {
					return usageErrorf("attest verifies hardware evidence; --simulation makes no sense here")
				}
				if *fresh {
					cf.nonce = make([]byte, 32)
					if _, err := rand.Read(cf.nonce); err != nil {
						return err
					}
				}
				if *bundleFile != "" {
					b, err := readBundle(*bundleFile)
					if err != nil {
						return err
					}
					cf.extra = append(cf.extra, client.WithCollateralBundle(b))
				}
				c, _, done, err := cf.connect(e, addr)
				if err != nil {
					return ef.writeRefusal(e.stdout, err, ear.Options{Policy: cf.loaded, Nonce: cf.nonce})
				}
				defer done()
				if ef.enabled() {
					return writeAttestationEAR(e.stdout, ef, c.Attestation(), cf.loaded, cf.nonce)
				}
				printAttestation(e.stdout, c.Attestation(), cf.loaded, cf.nonce, cf.TestRootCA != "")
				return nil
			}
		},
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func printAttestation(w io.Writer, v *attest.Verified, p *policy.Policy, nonce []byte, testRoot bool) {
	if v == nil {
		fmt.Fprintln(w, "no hardware evidence was verified")
		return
	}
	r := sgx.ResultOf(v.Claims)
	if r == nil {
		printClaims(w, v, nonce)
		return
	}
	rb := r.ReportBody
	fmt.Fprintf(w, "evidence verified:      %s\n", attest.TypeSGXDCAP)
	if testRoot {
		fmt.Fprintf(w, "root CA:                TEST ROOT (proves nothing about hardware)\n")
	} else {
		fmt.Fprintf(w, "root CA:                Intel SGX Root CA (pinned)\n")
	}
	fmt.Fprintf(w, "mrenclave:              %s\n", hex.EncodeToString(rb.MRENCLAVE[:]))
	fmt.Fprintf(w, "mrsigner:               %s\n", hex.EncodeToString(rb.MRSIGNER[:]))
	fmt.Fprintf(w, "isv_prod_id, isv_svn:   %d, %d\n", rb.ISVProdID, rb.ISVSVN)
	fmt.Fprintf(w, "attributes:             flags %#x, xfrm %#x, misc_select %#x, debug %t\n", rb.AttributesFlags, rb.AttributesXFRM, rb.MiscSelect, rb.AttributesFlags&2 != 0)
	fmt.Fprintf(w, "tcb status:             %s (platform %s, quoting enclave %s)\n", r.Status, r.PlatformStatus, r.QEStatus)
	fmt.Fprintf(w, "advisories:             %s\n", listOrNone(r.AdvisoryIDs))
	if p != nil {
		if why, err := p.ExplainStatus(r.Status, r.AdvisoryIDs); err == nil {
			fmt.Fprintf(w, "tcb verdict:            passed: %s\n", why)
		}
	}
	if !r.TCBDate.IsZero() {
		fmt.Fprintf(w, "tcb date:               %s\n", r.TCBDate.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "tcb recoveries:         %s\n", recoveriesLine(r))
	fmt.Fprintf(w, "fmspc:                  %s\n", strings.ToUpper(hex.EncodeToString(r.FMSPC[:])))
	fmt.Fprintf(w, "tcb evaluation number:  %d\n", r.TCBEvaluationDataNumber)
	fmt.Fprintf(w, "collateral issued:      %s (latest)\n", r.CollateralIssued.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "collateral next update: %s (earliest; verify again after it)\n", r.CollateralNextUpdate.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "CRLs checked:           %t\n", r.CRLsChecked)
	fmt.Fprintf(w, "verified at:            %s\n", r.VerifiedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "report data:            binds the attested certificate")
	if len(nonce) > 0 {
		fmt.Fprintf(w, " and nonce %s", hex.EncodeToString(nonce))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "attested certificate:   %s\n", identity.Fingerprint(v.CertificateDER))
	fmt.Fprintf(w, "signing key (ed25519):  %s\n", hex.EncodeToString(v.SigningKey))
}

func policyFromSigstructCommand() *command {
	return &command{
		name:     "from-sigstruct",
		synopsis: "blindfold policy from-sigstruct FILE.sig [-o policy.toml] [-manifest manifest.toml]",
		summary:  "verify an enclave's SIGSTRUCT and write the policy.toml (and BlindAI 0.6 manifest.toml) that pin it",
		help: `Reads the SIGSTRUCT that gramine-sgx-sign wrote (FILE.sig), checks its
headers and its RSA-3072 signature, and writes the policy that pins its
enclave: MRENCLAVE, MISCSELECT and ATTRIBUTES under the SIGSTRUCT's
masks, debug refused, and the TCB statuses UpToDate and
SWHardeningNeeded, the latter only with advisories that the enclave build
mitigates (accepted_advisory_ids; see docs/sgx.md). Anyone who rebuilds
the same source gets the same policy. With -o it also writes, beside it,
the manifest.toml that BlindAI 0.6 clients read for the same enclave
(-manifest names another file); Blindfold's clients read either file.`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			out := fs.String("o", "", "write the policy to `FILE` (default: standard output)")
			manifest := fs.String("manifest", "", "also write BlindAI 0.6's manifest.toml to `FILE` (default with -o: manifest.toml beside it)")
			return func(e *env, args []string) error {
				b, err := os.ReadFile(args[0])
				if err != nil {
					return withCode(exitIO, err)
				}
				p, err := policy.FromSigstruct(b)
				if err != nil {
					return withCode(exitIO, fmt.Errorf("%s: %w", args[0], err))
				}
				text := p.TOML()
				mpath := *manifest
				if mpath == "" && *out != "" {
					mpath = filepath.Join(filepath.Dir(*out), "manifest.toml")
				}
				if mpath != "" {
					m, err := p.ManifestTOML()
					if err != nil {
						return withCode(exitIO, err)
					}
					if err := os.WriteFile(mpath, m, 0o644); err != nil {
						return withCode(exitIO, err)
					}
					fmt.Fprintf(e.stderr, "wrote %s (BlindAI 0.6 manifest, mr_enclave %s)\n", mpath, hex.EncodeToString(p.MREnclave[:]))
				}
				if *out == "" {
					_, err := e.stdout.Write(text)
					return err
				}
				if err := os.WriteFile(*out, text, 0o644); err != nil {
					return withCode(exitIO, err)
				}
				fmt.Fprintf(e.stderr, "wrote %s (mr_enclave %s)\n", *out, hex.EncodeToString(p.MREnclave[:]))
				return nil
			}
		},
	}
}

func policyShowCommand() *command {
	return &command{
		name:     "show",
		synopsis: "blindfold policy show policy.toml|manifest.toml",
		summary:  "check a policy.toml (or BlindAI 0.6 manifest.toml) and print it in full, optional keys with their defaults",
		help: `Parses a policy.toml or a BlindAI 0.6 manifest.toml, refusing unknown keys and bad values and naming
every missing required key at once, and prints it in full (optional keys
with their defaults), with comments saying what each rule demands, followed (as
comments) by what the policy does with each TCB status and why. A
BlindAI 0.5 policy (without accepted_tcb_statuses and
accepted_advisory_ids) is accepted with a warning saying what it accepts.`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			return func(e *env, args []string) error {
				if missing := missingPolicyKeys(args[0]); len(missing) > 0 {
					return withCode(exitIO, fmt.Errorf("%s lacks the required keys %s; \"blindfold policy init\" writes a template with all of them (docs/policy.md)", args[0], strings.Join(missing, ", ")))
				}
				p, err := loadPolicy(e, args[0])
				if err != nil {
					return err
				}
				if _, err = e.stdout.Write(p.TOML()); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "\n# TCB statuses under this policy:\n")
				for _, l := range p.Acceptance() {
					fmt.Fprintf(e.stdout, "#   %s\n", l)
				}
				return nil
			}
		},
	}
}

// printClaims prints verified evidence of a platform other than SGX: its
// type, its root, and its claims.
func printClaims(w io.Writer, v *attest.Verified, nonce []byte) {
	c := v.Claims
	fmt.Fprintf(w, "evidence verified:      %s\n", c.Type)
	switch {
	case c.Simulation:
		fmt.Fprintf(w, "root CA:                NONE: SIMULATION (no TEE; this protects nothing)\n")
	case c.TestRoot:
		fmt.Fprintf(w, "root CA:                TEST ROOT (proves nothing about hardware)\n")
	default:
		fmt.Fprintf(w, "root CA:                vendor root (pinned)\n")
	}
	for _, cl := range c.List {
		fmt.Fprintf(w, "%-23s %s\n", cl.Name+":", cl.Value)
	}
	fmt.Fprintf(w, "report data:            binds the attested certificate")
	if len(nonce) > 0 {
		fmt.Fprintf(w, " and nonce %s", hex.EncodeToString(nonce))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "attested certificate:   %s\n", identity.Fingerprint(v.CertificateDER))
	fmt.Fprintf(w, "signing key (ed25519):  %s\n", hex.EncodeToString(v.SigningKey))
}
