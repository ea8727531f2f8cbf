package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blindfold-ai/blindfold/client"
)

// listFlags are the flags of "blindfold list".
type listFlags struct {
	conn   *connFlags
	asJSON bool
}

func listCommand() *command {
	return &command{
		name: "list", aliases: []string{"ls"}, addr: true,
		synopsis: "blindfold list [ADDR] [--json] [connection flags]",
		summary:  "list the models you may run (yours and public ones)",
		help: `Lists the models loaded on the server that you may run: your own and
the public ones, with their SHA-256, owner, whether they are public and
saved, their size and their inputs. Another tenant's private model is
never listed. Needs a Blindfold server (BlindAI servers cannot list).`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &listFlags{conn: addConnFlags(fs)}
			fs.BoolVar(&f.asJSON, "json", false, "print the models as JSON")
			return func(e *env, args []string) error { return runList(e, f, args[0]) }
		},
	}
}

func runList(e *env, f *listFlags, addr string) error {
	c, ctx, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	models, err := c.ListModels(ctx)
	if err != nil {
		return catalogueErr(err)
	}
	if f.asJSON {
		out := make([]modelJSON, len(models))
		for i, m := range models {
			out[i] = toModelJSON(m)
		}
		return printJSON(e.stdout, out)
	}
	if len(models) == 0 {
		fmt.Fprintln(e.stderr, "no models that you may run are loaded")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSHA-256\tOWNER\tPUBLIC\tSAVED\tSIZE\tINPUTS")
	for _, m := range models {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\t%s\n", m.ID, hex.EncodeToString(m.Hash)[:16]+"…", ownerText(m), m.Public, m.Saved, sizeText(m.Size), specList(m.Inputs))
	}
	return tw.Flush()
}

// catalogueErr words the error of a server without a catalogue.
func catalogueErr(err error) error {
	if errorsIsNoCatalogue(err) {
		return reword(err, "this server cannot list or describe models (it is a BlindAI server or an older Blindfold)")
	}
	return err
}

func ownerText(m client.ModelInfo) string {
	switch {
	case m.Owned && m.Owner != "":
		return "you (" + m.Owner + ")"
	case m.Owned:
		return "you"
	}
	return "another tenant"
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// specText formats a tensor spec as "x float32[?,4]" ("[...]" when the
// rank is not declared).
func specText(s client.TensorSpec) string {
	if s.Shape == nil {
		return s.Name + " " + s.DType.String() + "[...]"
	}
	dims := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return s.Name + " " + s.DType.String() + "[" + strings.Join(dims, ",") + "]"
}

func specList(specs []client.TensorSpec) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = specText(s)
	}
	return strings.Join(parts, ", ")
}

// printSpecs writes inputs and outputs, one per line.
func printSpecs(w io.Writer, inputs, outputs []client.TensorSpec) {
	for _, g := range []struct {
		title string
		specs []client.TensorSpec
	}{{"inputs:", inputs}, {"outputs:", outputs}} {
		if len(g.specs) == 0 {
			continue
		}
		fmt.Fprintln(w, g.title)
		for _, s := range g.specs {
			fmt.Fprintf(w, "  %s\n", specText(s))
		}
	}
}

// modelJSON is a model in --json output.
type modelJSON struct {
	ID       string     `json:"model_id"`
	SHA256   string     `json:"sha256"`
	Owned    bool       `json:"owned"`
	Owner    string     `json:"owner,omitempty"`
	Public   bool       `json:"public"`
	Saved    bool       `json:"saved"`
	Size     int64      `json:"size"`
	LoadedAt time.Time  `json:"loaded_at"`
	Inputs   []specJSON `json:"inputs"`
	Outputs  []specJSON `json:"outputs"`
}

// specJSON is a tensor spec in --json output; a nil shape means the rank
// is not declared.
type specJSON struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

func toModelJSON(m client.ModelInfo) modelJSON {
	conv := func(specs []client.TensorSpec) []specJSON {
		out := make([]specJSON, len(specs))
		for i, s := range specs {
			out[i] = specJSON{Name: s.Name, DType: s.DType.String(), Shape: s.Shape}
		}
		return out
	}
	return modelJSON{ID: m.ID, SHA256: hex.EncodeToString(m.Hash), Owned: m.Owned, Owner: m.Owner, Public: m.Public, Saved: m.Saved,
		Size: m.Size, LoadedAt: m.LoadedAt.UTC(), Inputs: conv(m.Inputs), Outputs: conv(m.Outputs)}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
