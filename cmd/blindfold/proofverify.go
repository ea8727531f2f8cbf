package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

func proofVerifyCommand() *command {
	return &command{
		name:     "verify",
		synopsis: "blindfold proof verify FILE [--policy policy.toml [--at RFC3339] [--collateral FILE | --collateral-bundle FILE | --pccs-url URL]] [--allow-simulation [--certificate FILE]] [--model-id ID] [--model-hash HEX | --model FILE.onnx] [--input-hash HEX | --input FILE.npy ...] [--output-hash HEX | --output FILE.npy ...] [--nonce HEX] [--require-replica] [--format text|ear|ear-jwt [--ear-key FILE]]",
		summary:  "verify a proof file offline",
		help: `Verifies a proof file (a signed reply saved by "upload --sign --proof" or
"run --sign --proof", or by a BlindAI 0.5 client) and prints what it
proves. The signature must verify with the key of the attested
certificate; --model-id, --model-hash and --input-hash (or --input, the
.npy files of the inputs, in the order they were sent) must match the
signed payload when given.

Blindfold servers add a receipt to signed replies, which also binds the
model's SHA-256 for runs (--model-hash, or --model FILE.onnx to hash the
file), the outputs (--output-hash, or --output FILE.npy for each output
in order; a .npy file holds no name, so output i takes the name the proof
gives it), the nonce the client sent with the request (--nonce HEX, as
"run --nonce" printed it), and the replica that served it, which is
checked against the proof's own hardware evidence: a receipt of another
platform, or without a replica, fails; one of another replica of the same
platform (a cluster's proof carrying the evidence of another replica than
the one that ran) verifies with the replica reported as not checked, or
fails with --require-replica. Asking to check
a value that the proof does not bind (a BlindAI 0.5 proof has no receipt)
fails, naming it. The output lists each binding and whether it was
checked.

Proofs with hardware evidence (an SGX quote, as Blindfold and BlindAI 0.5
clients write them) need --policy policy.toml: the quote and its
collateral are verified offline against the pinned Intel SGX Root CA, the
enclave against the policy, the report data must bind the certificate
whose key signed. Collateral expires (about a month); --at verifies at a
given time instead of now, e.g. when the proof was made.

By default the proof is checked with the collateral inside it, which
shows it was good when made, not that it still is. --collateral FILE
(JSON: the SgxCollateral message, or the dcap-qvl collateral shape) or
--pccs-url URL (a PCCS or Intel's PCS, fetched for the quote's platform)
verifies the quote against that collateral instead, so that a PCK
certificate revoked or a TCB recovery since the proof was made refuses
it. --collateral-bundle FILE takes the collateral for the quote's
platform from an offline bundle ("collateral fetch --out"), verified
whole at the verification time: a bundle past its next update, or
without the quote's platform, refuses the proof. The output says which
collateral was used and when it was issued, and how many TCB recoveries
the platform is behind.

Simulation-mode proofs protect nothing and are refused unless
--allow-simulation is given.

The issued_at time comes from the server host's clock: it is a claim of
the untrusted host, not evidence of when the result was produced. Only a
nonce bounds it: a request that carries a nonce was served after the
nonce was made.

` + earFlagsHelp + ` The EAR of a proof has a "model" appraisal too,
with what the signed reply binds.`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			allowSim := fs.Bool("allow-simulation", false, "UNSAFE: accept a simulation-mode proof (it proves nothing about a TEE)")
			modelID := fs.String("model-id", "", "expected model `ID`")
			modelHash := fs.String("model-hash", "", "expected model SHA-256 (`HEX`; for upload proofs)")
			inputHash := fs.String("input-hash", "", "expected input hash (`HEX`; for run proofs)")
			policyFile := fs.String("policy", "", "enclave policy `FILE` (policy.toml) for proofs with hardware evidence")
			atFlag := fs.String("at", "", "verify the evidence at this `TIME` (RFC 3339) instead of now")
			testRoot := fs.String("insecure-test-root-ca", "", "FOR TESTS ONLY: verify evidence against this test root CA `FILE` (PEM) instead of Intel's")
			certFile := fs.String("certificate", "", "attested certificate `FILE` (PEM or DER), for proofs that do not embed it")
			collFile := fs.String("collateral", "", "verify a hardware proof against this collateral `FILE` (JSON) instead of its own")
			bundleFile := fs.String("collateral-bundle", "", "verify a hardware proof against the collateral for its quote in this offline bundle `FILE` (collateral fetch --out) instead of its own")
			pccsURL := fs.String("pccs-url", "", "verify a hardware proof against collateral fetched now from this PCCS or PCS `URL` instead of its own")
			timeout := fs.Duration("timeout", 2*time.Minute, "time limit for fetching collateral with --pccs-url")
			var inputs inputFlag
			fs.Var(&inputs, "input", "an input `FILE.npy` as sent (repeat, in order); its hash must match")
			ef := addEARFlags(fs)
			modelFile := fs.String("model", "", "the model `FILE.onnx` whose SHA-256 must match")
			var outputs stringsFlag
			fs.Var(&outputs, "output", "an output `FILE.npy` as received (repeat, in order); with the names the proof gives, their hash must match")
			outputHash := fs.String("output-hash", "", "expected output hash (`HEX`; for run proofs)")
			nonceFlag := fs.String("nonce", "", "the request nonce (`HEX`) the receipt must carry")
			requireReplica := fs.Bool("require-replica", false, "refuse a hardware proof whose receipt names another replica than the one whose evidence it carries")
			return func(e *env, args []string) error {
				if err := ef.check(); err != nil {
					return err
				}
				opts := proof.VerifyOptions{AllowSimulation: *allowSim, ModelID: *modelID}
				var err error
				if *policyFile != "" {
					if opts.Policy, err = loadPolicy(e, *policyFile); err != nil {
						return err
					}
				}
				if *atFlag != "" {
					at, err := time.Parse(time.RFC3339, *atFlag)
					if err != nil {
						return usageErrorf("--at %q is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)", *atFlag)
					}
					opts.Now = func() time.Time { return at }
				}
				if *testRoot != "" {
					if opts.TestRoot, err = loadTestRoot(*testRoot); err != nil {
						return err
					}
					fmt.Fprint(e.stderr, testRootBanner)
				}
				if opts.ModelHash, err = parseHash("--model-hash", *modelHash); err != nil {
					return err
				}
				if opts.InputHash, err = parseHash("--input-hash", *inputHash); err != nil {
					return err
				}
				if opts.OutputHash, err = parseHash("--output-hash", *outputHash); err != nil {
					return err
				}
				opts.RequireReplica = *requireReplica
				if opts.RequestNonce, err = parseNonce(*nonceFlag); err != nil {
					return err
				}
				if *modelFile != "" {
					if opts.ModelHash != nil {
						return usageErrorf("pass --model-hash or --model, not both")
					}
					if opts.ModelHash, err = hashFile(*modelFile); err != nil {
						return err
					}
				}
				if len(inputs.files) > 0 {
					if opts.InputHash != nil {
						return usageErrorf("pass --input-hash or --input, not both")
					}
					h := proof.NewInputHasher()
					for i, f := range inputs.files {
						t, err := readNPYFile(f, inputs.names[i])
						if err != nil {
							return err
						}
						h.Write(t.Data)
					}
					opts.InputHash = h.Sum()
				}
				if *certFile != "" {
					b, err := os.ReadFile(*certFile)
					if err != nil {
						return withCode(exitIO, fmt.Errorf("reading the certificate: %w", err))
					}
					if strings.Contains(string(b), "-----BEGIN") {
						c, err := identity.ParseCertificatePEM(b)
						if err != nil {
							return withCode(exitIO, err)
						}
						b = c.Raw
					}
					opts.SimulationCertificate = b
				}
				p, err := proof.ReadFile(args[0])
				if err != nil {
					var pe *os.PathError
					if errors.As(err, &pe) {
						return withCode(exitIO, err)
					}
					return withCode(exitProof, err)
				}
				if len(outputs) > 0 {
					if opts.OutputHash != nil {
						return usageErrorf("pass --output-hash or --output, not both")
					}
					if opts.OutputHash, err = outputsHash(outputs, p); err != nil {
						return err
					}
				}
				if proof.IsSimulation(p) && *allowSim {
					fmt.Fprint(e.stderr, simulationProofBanner)
				}
				source := "the proof's own"
				sources := 0
				for _, f := range []string{*collFile, *pccsURL, *bundleFile} {
					if f != "" {
						sources++
					}
				}
				switch {
				case sources > 1:
					return usageErrorf("pass one of --collateral, --collateral-bundle and --pccs-url, not several")
				case sources > 0 && proof.IsSimulation(p):
					return usageErrorf("--collateral, --collateral-bundle and --pccs-url verify hardware evidence; %s is a simulation proof without any", args[0])
				case *bundleFile != "":
					if opts.Collateral, source, err = bundleCollateral(*bundleFile, p, opts); err != nil {
						return err
					}
				case *collFile != "":
					if opts.Collateral, err = readCollateralFile(*collFile); err != nil {
						return err
					}
					source = "from " + *collFile
				case *pccsURL != "":
					if *timeout <= 0 {
						return usageErrorf("--timeout must be positive, got %s", *timeout)
					}
					ctx, cancel := context.WithTimeout(e.ctx, *timeout)
					defer cancel()
					now := time.Now()
					if opts.Now != nil {
						now = opts.Now()
					}
					if opts.Collateral, err = fetchCollateral(ctx, *pccsURL, p.GetAttestation().GetQuote(), now); err != nil {
						return err
					}
					source = fmt.Sprintf("fetched from %s at %s", *pccsURL, time.Now().UTC().Format(time.RFC3339))
				}
				res, err := proof.Verify(p, opts)
				if err != nil && ef.enabled() {
					if werr := ef.write(e.stdout, ear.RefusedProof(err, ef.options(ear.Options{Policy: opts.Policy, Nonce: opts.Nonce}))); werr != nil {
						return werr
					}
				}
				if err != nil {
					if errors.Is(err, proof.ErrNoCertificate) {
						err = fmt.Errorf("%w; pass the attested certificate the client saw with --certificate FILE", err)
					}
					if !proof.IsSimulation(p) {
						err = fmt.Errorf("%w (collateral: %s)", err, source)
					}
					return withCode(exitProof, fmt.Errorf("proof %s does not verify: %w", args[0], err))
				}
				if ef.enabled() {
					r, err := ear.FromProof(res, ef.options(ear.Options{Policy: opts.Policy, Nonce: opts.Nonce}))
					if err != nil {
						return withCode(exitProof, err)
					}
					return ef.write(e.stdout, r)
				}
				printProofResult(e.stdout, res, opts.Policy, source)
				return nil
			}
		},
	}
}

const simulationProofBanner = `WARNING: this is a SIMULATION-MODE proof (--allow-simulation). It proves
only that the holder of the certificate's key signed it, not that a TEE
computed it. It protects nothing.
`

func parseHash(flagName, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(s), "0x"))
	if err != nil || len(b) != 32 {
		return nil, usageErrorf("%s must be 64 hex digits (a SHA-256), got %q", flagName, s)
	}
	return b, nil
}

func printProofResult(w interface{ Write([]byte) (int, error) }, r *proof.Result, p *policy.Policy, source string) {
	fmt.Fprintf(w, "proof verified\n")
	fmt.Fprintf(w, "kind:                 %s\n", r.Kind)
	fmt.Fprintf(w, "model_id:             %s\n", r.ModelID)
	if r.Kind == proof.KindSendModel {
		fmt.Fprintf(w, "model_hash:           %s\n", hex.EncodeToString(r.ModelHash))
	} else {
		fmt.Fprintf(w, "input_hash:           %s\n", hex.EncodeToString(r.InputHash))
		if rp := r.Payload.GetRunModelPayload(); rp != nil {
			for i, o := range rp.GetOutputTensors() {
				fmt.Fprintf(w, "output %d:             %s %s%v\n", i, o.GetInfo().GetIndexName(), tensor.DType(o.GetInfo().GetDatumType()), o.GetInfo().GetDims())
			}
		}
	}
	if !r.IssuedAt.IsZero() {
		fmt.Fprintf(w, "issued_at:            %s (server host clock; not proven)\n", r.IssuedAt.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "simulation:           %t\n", r.Simulation)
	if ev := r.Evidence; ev != nil && sgx.ResultOf(ev.Claims) == nil {
		fmt.Fprintf(w, "evidence:             %s\n", ev.Claims.Type)
		for _, cl := range ev.Claims.List {
			fmt.Fprintf(w, "%-21s %s\n", cl.Name+":", cl.Value)
		}
	} else if ev != nil {
		sr := sgx.ResultOf(ev.Claims)
		rb := sr.ReportBody
		fmt.Fprintf(w, "evidence:             %s, verified at %s\n", attest.TypeSGXDCAP, sr.VerifiedAt.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "mrenclave:            %s\n", hex.EncodeToString(rb.MRENCLAVE[:]))
		fmt.Fprintf(w, "mrsigner:             %s\n", hex.EncodeToString(rb.MRSIGNER[:]))
		fmt.Fprintf(w, "tcb status:           %s (advisories: %s)\n", sr.Status, listOrNone(sr.AdvisoryIDs))
		if p != nil {
			if why, err := p.ExplainStatus(sr.Status, sr.AdvisoryIDs); err == nil {
				fmt.Fprintf(w, "tcb verdict:          passed: %s\n", why)
			}
		}
		fmt.Fprintf(w, "tcb recoveries:       %s\n", recoveriesLine(sr))
		fmt.Fprintf(w, "collateral:           %s\n", source)
		fmt.Fprintf(w, "collateral issued:    %s (latest issue date of the TCB info, QE identity and CRLs)\n", sr.CollateralIssued.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "collateral valid:     %s to %s\n", sr.CollateralIssued.UTC().Format(time.RFC3339), sr.CollateralNextUpdate.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "attested certificate: %s\n", identity.Fingerprint(r.Certificate))
	fmt.Fprintf(w, "signing key:          %s\n", hex.EncodeToString(r.SigningKey))
	printReceipt(w, r)
}
