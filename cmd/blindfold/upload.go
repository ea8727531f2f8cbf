package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/blindfold-ai/blindfold/client"
)

// progressThreshold is the model size above which upload shows a progress
// bar.
const progressThreshold = 1 << 20

// uploadFlags are the flags of "blindfold upload".
type uploadFlags struct {
	conn       *connFlags
	id, name   string
	sign, save bool
	public     bool
	proofPath  string
	noProgress bool
	nonce      string
}

func uploadCommand() *command {
	return &command{
		name: "upload", addr: true,
		synopsis: "blindfold upload [ADDR] MODEL.onnx [--id ID] [--name NAME] [--sign [--proof FILE] [--nonce HEX]] [--save] [--public] [connection flags]",
		summary:  "upload an ONNX model",
		help: `Uploads an ONNX model over the attested channel and prints its id,
SHA-256, inputs and outputs on stdout:

  model_id: ID
  sha256:   HEX
  inputs:
    NAME DTYPE[SHAPE]
  outputs:
    NAME DTYPE[SHAPE]

Without --id or --name the client picks a fresh UUID. With --sign the
server signs the result (model hash and id), which is verified before
the command succeeds; --proof FILE saves it as a proof file. --nonce HEX
sends a request nonce to be recorded in the signed receipt, as for "run";
with --proof and no --nonce, a random one is made and printed.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &uploadFlags{conn: addConnFlags(fs)}
			fs.StringVar(&f.id, "id", "", "store the model under this `ID`")
			fs.StringVar(&f.name, "name", "", "model `NAME` (used as the id when --id is not given)")
			fs.BoolVar(&f.sign, "sign", false, "ask for a signed reply and verify it")
			fs.BoolVar(&f.save, "save", false, "ask the server to keep the model across restarts (sealed to the TEE)")
			fs.BoolVar(&f.public, "public", false, "let every subject the server authenticates run the model (only you may delete it)")
			fs.StringVar(&f.proofPath, "proof", "", "write the signed reply as a proof `FILE` (needs --sign)")
			fs.BoolVar(&f.noProgress, "no-progress", false, "never show a progress bar")
			fs.StringVar(&f.nonce, "nonce", "", "send this request nonce (`HEX`) to be recorded in the signed receipt (needs --sign)")
			return func(e *env, args []string) error { return runUpload(e, f, args[0], args[1]) }
		},
	}
}

func runUpload(e *env, f *uploadFlags, addr, modelPath string) error {
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
	model, err := os.ReadFile(modelPath)
	if err != nil {
		return withCode(exitIO, fmt.Errorf("reading the model: %w", err))
	}
	if len(model) == 0 {
		return withCode(exitIO, fmt.Errorf("model file %s is empty", modelPath))
	}
	c, ctx, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	opts := []client.UploadOption{client.WithModelID(f.id), client.WithModelName(f.name)}
	if f.sign {
		opts = append(opts, client.Sign())
	}
	if f.save {
		opts = append(opts, client.SaveModel())
	}
	if f.public {
		opts = append(opts, client.Public())
	}
	if nonce != nil {
		opts = append(opts, client.WithRequestNonce(nonce))
	}
	var bar *progressbar.ProgressBar
	if len(model) > progressThreshold && !f.noProgress {
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
	printSpecs(e.stdout, res.Inputs, res.Outputs)
	if res.Signed {
		fmt.Fprintln(e.stderr, "signed reply verified (model hash and id)")
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
	return nil
}
