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

	"github.com/schollz/progressbar/v3"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// progressThreshold is the model size above which upload shows a progress
// bar.
const progressThreshold = 1 << 20

func infoCommand() *command {
	return &command{
		name: "info", aliases: []string{"connect"},
		synopsis: "blindfold info ADDR [connection flags]",
		summary:  "connect and show the server's versions, mode and certificates",
		help: `Connects to the server as every command does (untrusted port, version
check, attestation, attested port) and prints what it learned: protocol
and server versions, simulation mode, the SHA-256 fingerprints of both
certificates, and the reply-signing key.

ADDR is HOST or HOST:PORT of the untrusted port (default port 50052).
The attested port is not derived from it: it is 50051 unless
--attested-port says otherwise, so a server on non-default ports needs
both, e.g. "blindfold info host:6000 --attested-port 6001".`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cf := addConnFlags(fs)
			return func(e *env, args []string) error {
				c, _, done, err := cf.connect(e, args[0])
				if err != nil {
					return err
				}
				defer done()
				info := c.ServerInfo()
				w := e.stdout
				fmt.Fprintf(w, "untrusted port:        %s\n", c.UntrustedAddr())
				fmt.Fprintf(w, "attested port:         %s\n", c.AttestedAddr())
				fmt.Fprintf(w, "protocol version:      %s\n", info.ProtocolVersion)
				fmt.Fprintf(w, "server version:        %s\n", orUnknown(info.ServerVersion))
				fmt.Fprintf(w, "evidence type:         %s\n", orUnknown(info.EvidenceType))
				fmt.Fprintf(w, "simulation:            %t\n", c.Simulation())
				fmt.Fprintf(w, "host certificate:      %s\n", c.HostCertificateFingerprint())
				fmt.Fprintf(w, "attested certificate:  %s\n", c.AttestedCertificateFingerprint())
				fmt.Fprintf(w, "signing key (ed25519): %s\n", hex.EncodeToString(c.SigningKey()))
				return nil
			}
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(not reported)"
	}
	return s
}

func uploadCommand() *command {
	return &command{
		name:     "upload",
		synopsis: "blindfold upload ADDR MODEL.onnx [--id ID] [--name NAME] [--sign [--proof FILE]] [--save] [--public] [connection flags]",
		summary:  "upload an ONNX model",
		help: `Uploads an ONNX model over the attested channel and prints its id and
SHA-256 on stdout:

  model_id: ID
  sha256:   HEX

Without --id or --name the client picks a fresh UUID. With --sign the
server signs the result (model hash and id), which is verified before
the command succeeds; --proof FILE saves it as a proof file.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cf := addConnFlags(fs)
			id := fs.String("id", "", "store the model under this `ID`")
			name := fs.String("name", "", "model `NAME` (used as the id when --id is not given)")
			sign := fs.Bool("sign", false, "ask for a signed reply and verify it")
			save := fs.Bool("save", false, "ask the server to keep the model across restarts (sealed to the TEE)")
			public := fs.Bool("public", false, "let every subject the server authenticates run the model (only you may delete it)")
			proofPath := fs.String("proof", "", "write the signed reply as a proof `FILE` (needs --sign)")
			noProgress := fs.Bool("no-progress", false, "never show a progress bar")
			return func(e *env, args []string) error {
				if *proofPath != "" && !*sign {
					return usageErrorf("--proof needs --sign")
				}
				model, err := os.ReadFile(args[1])
				if err != nil {
					return withCode(exitIO, fmt.Errorf("reading the model: %w", err))
				}
				if len(model) == 0 {
					return withCode(exitIO, fmt.Errorf("model file %s is empty", args[1]))
				}
				c, ctx, done, err := cf.connect(e, args[0])
				if err != nil {
					return err
				}
				defer done()
				opts := []client.UploadOption{client.WithModelID(*id), client.WithModelName(*name)}
				if *sign {
					opts = append(opts, client.Sign())
				}
				if *save {
					opts = append(opts, client.SaveModel())
				}
				if *public {
					opts = append(opts, client.Public())
				}
				var bar *progressbar.ProgressBar
				if len(model) > progressThreshold && !*noProgress {
					bar = progressbar.NewOptions64(int64(len(model)),
						progressbar.OptionSetWriter(e.stderr),
						progressbar.OptionSetDescription("uploading"),
						progressbar.OptionShowBytes(true),
						progressbar.OptionThrottle(100*time.Millisecond),
						progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
					opts = append(opts, client.WithProgress(func(sent, _ int64) { _ = bar.Set64(sent) }))
				}
				res, err := c.UploadModel(ctx, model, opts...)
				if bar != nil {
					_ = bar.Exit()
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "model_id: %s\nsha256:   %s\n", res.ModelID, hex.EncodeToString(res.ModelHash))
				if res.Signed {
					fmt.Fprintln(e.stderr, "signed reply verified (model hash and id)")
				}
				if *proofPath != "" {
					if err := res.SaveProof(*proofPath); err != nil {
						return withCode(exitIO, err)
					}
					fmt.Fprintf(e.stderr, "proof written to %s\n", *proofPath)
				}
				return nil
			}
		},
	}
}

// inputFlag collects repeated --input [NAME=]FILE.npy flags.
type inputFlag struct {
	names, files []string
}

func (f *inputFlag) String() string { return strings.Join(f.files, ",") }

func (f *inputFlag) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok {
		name, file = "", v
	}
	if file == "" {
		return fmt.Errorf("empty file name in %q (want NAME=FILE.npy or FILE.npy)", v)
	}
	f.names = append(f.names, name)
	f.files = append(f.files, file)
	return nil
}

// load reads the inputs' .npy files.
func (f *inputFlag) load() ([]tensor.Tensor, bool, error) {
	named := 0
	for _, n := range f.names {
		if n != "" {
			named++
		}
	}
	if named != 0 && named != len(f.names) {
		return nil, false, usageErrorf("either name every --input (NAME=FILE.npy) or none (FILE.npy, by position)")
	}
	out := make([]tensor.Tensor, len(f.files))
	for i, file := range f.files {
		t, err := readNPYFile(file, f.names[i])
		if err != nil {
			return nil, false, err
		}
		out[i] = t
	}
	return out, named > 0, nil
}

func runCommand() *command {
	return &command{
		name:     "run",
		synopsis: "blindfold run ADDR MODEL_ID --input NAME=FILE.npy ... [--output-dir DIR] [--json] [--sign [--proof FILE]] [connection flags]",
		summary:  "run a model on .npy inputs",
		help: `Runs a model on inputs read from NumPy .npy files (C order,
little-endian). Name every input (--input NAME=FILE.npy, matched by name)
or none (--input FILE.npy, matched by position, in order).

Outputs are summarised on stdout; --output-dir DIR writes each as
DIR/NAME.npy (bfloat16 outputs, which .npy cannot hold, are written as
their uint16 bit patterns); --json prints the result as JSON on stdout,
with the values of outputs of at most --json-max-elements elements.

With --sign the server signs the result; the signature, the input hash
and the model id are verified before the command succeeds, and --proof
FILE saves it as a proof file.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cf := addConnFlags(fs)
			var inputs inputFlag
			fs.Var(&inputs, "input", "an input as `NAME=FILE.npy` (or FILE.npy, by position); repeat for each input")
			outDir := fs.String("output-dir", "", "write each output as `DIR`/NAME.npy")
			asJSON := fs.Bool("json", false, "print the result as JSON")
			maxJSON := fs.Int("json-max-elements", 10000, "with --json, include values of outputs with at most `N` elements")
			sign := fs.Bool("sign", false, "ask for a signed reply and verify it")
			proofPath := fs.String("proof", "", "write the signed reply as a proof `FILE` (needs --sign)")
			return func(e *env, args []string) error {
				if *proofPath != "" && !*sign {
					return usageErrorf("--proof needs --sign")
				}
				if len(inputs.files) == 0 {
					return usageErrorf("no inputs: pass --input NAME=FILE.npy for each model input")
				}
				tensors, byName, err := inputs.load()
				if err != nil {
					return err
				}
				c, ctx, done, err := cf.connect(e, args[0])
				if err != nil {
					return err
				}
				defer done()
				var opts []client.RunOption
				if byName {
					opts = append(opts, client.ByName())
				}
				if *sign {
					opts = append(opts, client.Sign())
				}
				res, err := c.Run(ctx, args[1], tensors, opts...)
				if err != nil {
					return err
				}
				if res.Signed {
					fmt.Fprintln(e.stderr, "signed reply verified (input hash and model id)")
				}
				if *proofPath != "" {
					if err := res.SaveProof(*proofPath); err != nil {
						return withCode(exitIO, err)
					}
					fmt.Fprintf(e.stderr, "proof written to %s\n", *proofPath)
				}
				var files []string
				if *outDir != "" {
					if files, err = writeOutputs(e, *outDir, res.Outputs); err != nil {
						return err
					}
				}
				if *asJSON {
					return printRunJSON(e.stdout, res, files, *maxJSON)
				}
				printRunSummary(e.stdout, res, files)
				return nil
			}
		},
	}
}

func deleteCommand() *command {
	return &command{
		name:     "delete",
		synopsis: "blindfold delete ADDR MODEL_ID [connection flags]",
		summary:  "delete (unload) a model",
		help:     `Deletes a model from the server.`,
		minArgs:  2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cf := addConnFlags(fs)
			return func(e *env, args []string) error {
				c, ctx, done, err := cf.connect(e, args[0])
				if err != nil {
					return err
				}
				defer done()
				if err := c.DeleteModel(ctx, args[1]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted %s\n", args[1])
				return nil
			}
		},
	}
}

func proofVerifyCommand() *command {
	return &command{
		name:     "verify",
		synopsis: "blindfold proof verify FILE [--policy policy.toml [--at RFC3339] [--collateral FILE | --pccs-url URL]] [--allow-simulation [--certificate FILE]] [--model-id ID] [--model-hash HEX] [--input-hash HEX | --input FILE.npy ...]",
		summary:  "verify a proof file offline",
		help: `Verifies a proof file (a signed reply saved by "upload --sign --proof" or
"run --sign --proof", or by a BlindAI 0.5 client) and prints what it
proves. The signature must verify with the key of the attested
certificate; --model-id, --model-hash and --input-hash (or --input, the
.npy files of the inputs, in the order they were sent) must match the
signed payload when given.

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
it. The output says which collateral was used and when it was issued.

Simulation-mode proofs protect nothing and are refused unless
--allow-simulation is given.

The issued_at time comes from the server host's clock: it is a claim of
the untrusted host, not evidence of when the result was produced.`,
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
			pccsURL := fs.String("pccs-url", "", "verify a hardware proof against collateral fetched now from this PCCS or PCS `URL` instead of its own")
			timeout := fs.Duration("timeout", 2*time.Minute, "time limit for fetching collateral with --pccs-url")
			var inputs inputFlag
			fs.Var(&inputs, "input", "an input `FILE.npy` as sent (repeat, in order); its hash must match")
			return func(e *env, args []string) error {
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
				if proof.IsSimulation(p) && *allowSim {
					fmt.Fprint(e.stderr, simulationProofBanner)
				}
				source := "the proof's own"
				switch {
				case *collFile != "" && *pccsURL != "":
					return usageErrorf("pass --collateral or --pccs-url, not both")
				case (*collFile != "" || *pccsURL != "") && proof.IsSimulation(p):
					return usageErrorf("--collateral and --pccs-url verify hardware evidence; %s is a simulation proof without any", args[0])
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
				if err != nil {
					if errors.Is(err, proof.ErrNoCertificate) {
						err = fmt.Errorf("%w; pass the attested certificate the client saw with --certificate FILE", err)
					}
					if !proof.IsSimulation(p) {
						err = fmt.Errorf("%w (collateral: %s)", err, source)
					}
					return withCode(exitProof, fmt.Errorf("proof %s does not verify: %w", args[0], err))
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
		fmt.Fprintf(w, "collateral:           %s\n", source)
		fmt.Fprintf(w, "collateral issued:    %s (latest issue date of the TCB info, QE identity and CRLs)\n", sr.CollateralIssued.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "collateral valid:     %s to %s\n", sr.CollateralIssued.UTC().Format(time.RFC3339), sr.CollateralNextUpdate.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "attested certificate: %s\n", identity.Fingerprint(r.Certificate))
	fmt.Fprintf(w, "signing key:          %s\n", hex.EncodeToString(r.SigningKey))
}

func certGenerateCommand() *command {
	return &command{
		name:     "generate",
		synopsis: "blindfold cert generate [--cert host_server.pem] [--key host_server.key]",
		summary:  "make the untrusted port's TLS certificate and key",
		help: `Makes a P-256 key and a self-signed certificate (CN and SAN blindai-srv)
for the server's untrusted port, as host_server.pem and host_server.key,
and prints the certificate's SHA-256 fingerprint. Existing files are
never overwritten; the key file is created with mode 0600. Give the
certificate (never the key) to the server's users for --host-cert.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			cert := fs.String("cert", "host_server.pem", "certificate output `FILE` (PEM)")
			key := fs.String("key", "host_server.key", "private key output `FILE` (PEM, mode 0600)")
			return func(e *env, _ []string) error {
				if *cert == "" || *key == "" || *cert == *key {
					return usageErrorf("--cert and --key must be two different, non-empty paths")
				}
				der, err := identity.GenerateHostCertificate(*cert, *key)
				if err != nil {
					return withCode(exitIO, err)
				}
				fmt.Fprintf(e.stdout, "certificate: %s\nkey:         %s\nsha256 fingerprint: %s\n", *cert, *key, identity.Fingerprint(der))
				return nil
			}
		},
	}
}
