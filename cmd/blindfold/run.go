package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"strings"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/tensor"
)

// runFlags are the flags of "blindfold run".
type runFlags struct {
	conn      *connFlags
	inputs    inputFlag
	outDir    string
	asJSON    bool
	maxJSON   int
	sign      bool
	proofPath string
	nonce     string
}

func runCommand() *command {
	return &command{
		name: "run", addr: true,
		synopsis: "blindfold run [ADDR] MODEL_ID --input NAME=FILE.npy ... [--output-dir DIR] [--json] [--sign [--proof FILE] [--nonce HEX]] [connection flags]",
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
FILE saves it as a proof file. --nonce HEX sends a nonce (1 to 64 bytes)
that the server records in the signed reply's receipt, and the command
checks it did; with --proof and no --nonce, a random nonce is made. The
nonce is printed: "proof verify --nonce" checks it, and shows the
request was served after it was made.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &runFlags{conn: addConnFlags(fs)}
			fs.Var(&f.inputs, "input", "an input as `NAME=FILE.npy` (or FILE.npy, by position); repeat for each input")
			fs.StringVar(&f.outDir, "output-dir", "", "write each output as `DIR`/NAME.npy")
			fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
			fs.IntVar(&f.maxJSON, "json-max-elements", 10000, "with --json, include values of outputs with at most `N` elements")
			fs.BoolVar(&f.sign, "sign", false, "ask for a signed reply and verify it")
			fs.StringVar(&f.proofPath, "proof", "", "write the signed reply as a proof `FILE` (needs --sign)")
			fs.StringVar(&f.nonce, "nonce", "", "send this request nonce (`HEX`) to be recorded in the signed receipt (needs --sign)")
			return func(e *env, args []string) error { return runRun(e, f, args[0], args[1]) }
		},
	}
}

func runRun(e *env, f *runFlags, addr, modelID string) error {
	if f.proofPath != "" && !f.sign {
		return usageErrorf("--proof needs --sign")
	}
	if f.nonce != "" && !f.sign {
		return usageErrorf("--nonce needs --sign")
	}
	nonce, err := requestNonce(f.nonce, f.proofPath != "")
	if err != nil {
		return err
	}
	if len(f.inputs.files) == 0 {
		return usageErrorf("no inputs: pass --input NAME=FILE.npy for each model input")
	}
	tensors, byName, err := f.inputs.load()
	if err != nil {
		return err
	}
	c, ctx, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	var opts []client.RunOption
	if byName {
		opts = append(opts, client.ByName())
	}
	if f.sign {
		opts = append(opts, client.Sign())
	}
	if nonce != nil {
		opts = append(opts, client.WithRequestNonce(nonce))
	}
	res, err := c.Run(ctx, modelID, tensors, opts...)
	if err != nil {
		return err
	}
	if res.Signed {
		fmt.Fprintln(e.stderr, "signed reply verified (input hash and model id)")
	}
	if nonce != nil {
		fmt.Fprintf(e.stderr, "request nonce %s recorded in the signed receipt\n", hex.EncodeToString(nonce))
	}
	if f.proofPath != "" {
		if err := res.SaveProof(f.proofPath); err != nil {
			return withCode(exitIO, err)
		}
		fmt.Fprintf(e.stderr, "proof written to %s\n", f.proofPath)
	}
	var files []string
	if f.outDir != "" {
		if files, err = writeOutputs(e, f.outDir, res.Outputs); err != nil {
			return err
		}
	}
	if f.asJSON {
		return printRunJSON(e.stdout, res, files, f.maxJSON)
	}
	printRunSummary(e.stdout, res, files)
	return nil
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
