package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/policy"
)

// policyInitFlags are the flags of "blindfold policy init".
type policyInitFlags struct {
	mrenclave string
	sigstruct string
	out       string
	force     bool
}

func policyInitCommand() *command {
	return &command{
		name:     "init",
		synopsis: "blindfold policy init (--mrenclave HEX | --sigstruct FILE.sig) [-o policy.toml] [--force]",
		summary:  "write a commented policy.toml template for an enclave",
		help: `Writes a policy.toml that pins an SGX enclave, with a comment on every
key saying what it checks (docs/policy.md lists them all):

  --sigstruct FILE.sig  takes everything from the SIGSTRUCT that
                        gramine-sgx-sign wrote, verified (as
                        "policy from-sigstruct" does); preferred
  --mrenclave HEX       pins that MRENCLAVE (from "gramine-sgx-sigstruct-view"
                        or "make sgx") with Gramine's usual MISCSELECT and
                        ATTRIBUTES; check them against your enclave

The template accepts only the TCB status UpToDate and no advisory; add
statuses and advisories deliberately. It is written to -o FILE (never
over an existing file unless --force) or to standard output.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &policyInitFlags{}
			fs.StringVar(&f.mrenclave, "mrenclave", "", "the enclave's MRENCLAVE (64 hex digits)")
			fs.StringVar(&f.sigstruct, "sigstruct", "", "the enclave's SIGSTRUCT `FILE` (.sig, from gramine-sgx-sign)")
			fs.StringVar(&f.out, "o", "", "write the policy to `FILE` (default: standard output)")
			fs.BoolVar(&f.force, "force", false, "overwrite -o FILE if it exists")
			return func(e *env, _ []string) error { return runPolicyInit(e, f) }
		},
	}
}

func runPolicyInit(e *env, f *policyInitFlags) error {
	var text []byte
	switch {
	case (f.mrenclave == "") == (f.sigstruct == ""):
		return usageErrorf("pass --mrenclave HEX or --sigstruct FILE.sig (one of them)")
	case f.sigstruct != "":
		b, err := os.ReadFile(f.sigstruct)
		if err != nil {
			return withCode(exitIO, err)
		}
		p, err := policy.FromSigstruct(b)
		if err != nil {
			return withCode(exitIO, fmt.Errorf("%s: %w", f.sigstruct, err))
		}
		text = p.TOML()
	default:
		mr := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(f.mrenclave), "0x"))
		if b, err := hex.DecodeString(mr); err != nil || len(b) != 32 {
			return usageErrorf("--mrenclave must be 64 hex digits (32 bytes), got %q", f.mrenclave)
		}
		text = []byte(sgxPolicyTemplate(mr))
	}
	// What is written must load.
	if _, err := policy.Parse(text); err != nil {
		return fmt.Errorf("the generated policy does not load (a bug): %w", err)
	}
	if f.out == "" {
		_, err := e.stdout.Write(text)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if f.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(f.out, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return withCode(exitIO, fmt.Errorf("%s exists; pass --force to overwrite it", f.out))
	}
	if err != nil {
		return withCode(exitIO, err)
	}
	if _, err := file.Write(text); err != nil {
		file.Close()
		return withCode(exitIO, err)
	}
	if err := file.Close(); err != nil {
		return withCode(exitIO, err)
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", f.out)
	return nil
}

// sgxPolicyTemplate is a commented policy.toml pinning mrenclave (64 lower
// hex digits) with Gramine's usual MISCSELECT and ATTRIBUTES and the
// strict TCB defaults. It holds only the SGX keys; other TEEs get
// templates of their own.
func sgxPolicyTemplate(mrenclave string) string {
	return `# Blindfold enclave policy for Intel SGX (written by "blindfold policy init").
# A client trusts the server only if its verified quote matches every rule
# below. docs/policy.md lists every key, its default and what it checks.
# "blindfold policy show FILE" checks the file and prints what it accepts.

# MRENCLAVE: the measurement of the enclave's code and data. Required
# unless mr_signer is given (both may be).
mr_enclave = "` + mrenclave + `"

# To accept every enclave version a signing key signs instead, replace
# mr_enclave by these three (MRSIGNER is the SHA-256 of the key's modulus):
# mr_signer = "<64 hex digits>"
# isv_prod_id = 0
# min_isv_svn = 0

# MISCSELECT & misc_mask_hex must equal misc_select_hex.
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"

# ATTRIBUTES.FLAGS & attributes_mask_flags_hex must equal
# attributes_flags_hex | INIT (0x1): here 64-bit mode (0x4), nothing else
# (DEBUG, 0x2, is left to allow_debug). ATTRIBUTES.XFRM &
# attributes_mask_xfrm_hex must equal attributes_xfrm_hex: x87 and SSE
# state (0x3), as Gramine signs by default.
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"

# A debug enclave can be read by the host: it protects nothing.
allow_debug = false

# Combined TCB statuses (platform and quoting enclave) accepted. Revoked
# never is. A status other than UpToDate (SWHardeningNeeded,
# ConfigurationNeeded, OutOfDate, ...) is accepted only with the advisories
# listed below, so add it together with the advisories your enclave build
# mitigates.
accepted_tcb_statuses = ["UpToDate"]

# Every Intel security advisory (INTEL-SA-xxxxx) of the quote's TCB levels
# must be listed here, whatever the status.
accepted_advisory_ids = []

# Optional: the lowest TCB evaluation data number of the TCB info and QE
# identity, and the oldest collateral accepted (from its issue date).
# min_tcb_evaluation_data_number = 17
# max_collateral_age = "720h"
`
}

// policyRequiredKeys are the keys a policy.toml needs whatever else it
// holds (mr_enclave or mr_signer is checked apart).
var policyRequiredKeys = []string{"misc_select_hex", "misc_mask_hex", "attributes_flags_hex", "attributes_xfrm_hex",
	"attributes_mask_flags_hex", "attributes_mask_xfrm_hex", "allow_debug"}

// missingPolicyKeys lists, at once, the required keys a policy file lacks
// (nil when it cannot be read as TOML: the parser says why).
func missingPolicyKeys(path string) []string {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return nil
	}
	var missing []string
	if _, ok := m["mr_enclave"]; !ok {
		if _, ok := m["mr_signer"]; !ok {
			missing = append(missing, "mr_enclave (or mr_signer)")
		}
	}
	for _, k := range policyRequiredKeys {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	return missing
}
