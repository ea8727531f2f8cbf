// Command example is the smallest Go program that uses a Blindfold server:
// it connects, uploads a model, lists what it may run, runs the model with
// a signed reply and deletes it. Run it against "make demo"'s server or
// any simulation server:
//
//	go run ./examples/go --addr localhost --host-cert STATE/host_server.pem \
//	    --model testdata/models/demo.onnx --simulation
//
// Against a hardware server, pass --policy policy.toml instead of
// --simulation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/tensor"
)

// options are the program's flags.
type options struct {
	addr, hostCert, model, policy string
	simulation                    bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "localhost", "the server's untrusted port, host or host:port")
	flag.StringVar(&o.hostCert, "host-cert", "host_server.pem", "the operator's certificate file")
	flag.StringVar(&o.model, "model", "testdata/models/demo.onnx", "the ONNX model to upload")
	flag.StringVar(&o.policy, "policy", "", "the enclave's policy.toml (hardware servers)")
	flag.BoolVar(&o.simulation, "simulation", false, "UNSAFE: accept a simulation server (no TEE)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run connects, uploads, lists, runs and deletes, printing what it does.
func run(ctx context.Context, o options, w io.Writer) error {
	opts := []client.Option{client.WithHostCertificateFile(o.hostCert)}
	switch {
	case o.policy != "":
		p, err := policy.Load(o.policy)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithPolicy(p))
	case o.simulation:
		opts = append(opts, client.WithSimulation())
	default:
		return errors.New("pass --policy policy.toml, or --simulation for a server without a TEE")
	}
	c, err := client.Connect(ctx, o.addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(w, "connected to", c.UntrustedAddr(), "attested port", c.AttestedAddr())

	model, err := os.ReadFile(o.model)
	if err != nil {
		return err
	}
	up, err := c.UploadModel(ctx, model, client.WithModelID("example-model"))
	if err != nil {
		return err
	}
	defer c.DeleteModel(ctx, up.ModelID)
	fmt.Fprintln(w, "uploaded", up.ModelID, "inputs", up.Inputs, "outputs", up.Outputs)

	models, err := c.ListModels(ctx)
	if err != nil {
		return err
	}
	for _, m := range models {
		fmt.Fprintln(w, "may run", m.ID, "public", m.Public, "mine", m.Owned)
	}

	// One zero-filled input per model input, with dynamic dimensions as 1.
	inputs := make([]tensor.Tensor, len(up.Inputs))
	for i, spec := range up.Inputs {
		shape := make([]int64, len(spec.Shape))
		n := int64(1)
		for j, d := range spec.Shape {
			shape[j] = max(d, 1)
			n *= shape[j]
		}
		inputs[i] = tensor.Tensor{Name: spec.Name, DType: spec.DType, Shape: shape, Data: make([]byte, n*int64(spec.DType.Size()))}
	}
	res, err := c.Run(ctx, up.ModelID, inputs, client.Sign())
	if err != nil {
		return err
	}
	for _, out := range res.Outputs {
		fmt.Fprintln(w, "output", out.Name, out.DType, out.Shape)
	}
	fmt.Fprintln(w, "signed reply verified:", res.Signed)
	return nil
}
