package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/blindfold-ai/blindfold/client"
)

// describeFlags are the flags of "blindfold describe".
type describeFlags struct {
	conn   *connFlags
	asJSON bool
}

func describeCommand() *command {
	return &command{
		name: "describe", addr: true,
		synopsis: "blindfold describe [ADDR] MODEL_ID [--json] [connection flags]",
		summary:  "show a model's SHA-256, inputs and outputs (dtypes, shapes) and status",
		help: `Shows the model you would run under MODEL_ID (your own, else the public
one): its SHA-256, its inputs and outputs with element types and shapes
(? is a dynamic dimension), its owner if it is you, whether it is public
and saved, its size and when it was loaded. Use it to learn what "run"
needs before sending anything.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &describeFlags{conn: addConnFlags(fs)}
			fs.BoolVar(&f.asJSON, "json", false, "print the model as JSON")
			return func(e *env, args []string) error { return runDescribe(e, f, args[0], args[1]) }
		},
	}
}

func runDescribe(e *env, f *describeFlags, addr, id string) error {
	c, ctx, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	m, err := c.DescribeModel(ctx, id)
	if err != nil {
		return catalogueErr(err)
	}
	if f.asJSON {
		return printJSON(e.stdout, toModelJSON(*m))
	}
	w := e.stdout
	fmt.Fprintf(w, "model_id:   %s\n", m.ID)
	fmt.Fprintf(w, "sha256:     %s\n", hex.EncodeToString(m.Hash))
	fmt.Fprintf(w, "owner:      %s\n", ownerText(*m))
	fmt.Fprintf(w, "public:     %t\n", m.Public)
	fmt.Fprintf(w, "saved:      %t\n", m.Saved)
	fmt.Fprintf(w, "size:       %s (%d bytes)\n", sizeText(m.Size), m.Size)
	fmt.Fprintf(w, "loaded_at:  %s (server host clock)\n", m.LoadedAt.UTC().Format(time.RFC3339))
	printSpecs(w, m.Inputs, m.Outputs)
	return nil
}

func errorsIsNoCatalogue(err error) bool { return errors.Is(err, client.ErrNoCatalogue) }
