//go:build cgo

package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// The examples run against a real simulation server that TestMain starts
// (startExampleServer): addr is its untrusted address, hostCert the
// operator certificate it generated, modelPath the demo classifier.
var (
	addr      string
	hostCert  string
	modelPath = filepath.Join("..", "testdata", "models", "demo.onnx")
)

// startExampleServer starts the simulation server of the examples, on
// free loopback ports, and returns its stop function. Without ONNX
// Runtime it returns ok = false and the examples are skipped.
func startExampleServer() (stop func(), ok bool) {
	if _, err := engine.FindLibrary(""); err != nil {
		return func() {}, false
	}
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatalf("examples: opening ONNX Runtime: %v", err)
	}
	state, err := os.MkdirTemp("", "blindfold-examples")
	if err != nil {
		log.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Simulation = true
	cfg.UntrustedAddr, cfg.AttestedAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.StateDir = state
	srv, err := server.New(server.Options{Config: cfg, Runtime: rt, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		log.Fatalf("examples: starting the server: %v", err)
	}
	addr, hostCert = srv.UntrustedAddr(), filepath.Join(state, "host_server.pem")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.RemoveAll(state)
	}, true
}

// This example is the README's: connect to a simulation server, upload
// a model, run it with a signed reply, delete it. The attested port is
// the one the server reports.
func Example() {
	// The library logs its simulation warning on stderr; examples compare stdout only.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	c, err := client.Connect(ctx, addr, // "localhost" or "host:port" of the untrusted port
		client.WithSimulation(),                  // UNSAFE: accepts a server without a TEE; development only
		client.WithHostCertificateFile(hostCert)) // the operator's host_server.pem
	if err != nil {
		log.Fatal(err) // names the step that failed: trust, attestation, attested port...
	}
	defer c.Close()

	model, err := os.ReadFile(modelPath)
	if err != nil {
		log.Fatal(err)
	}
	up, err := c.UploadModel(ctx, model, client.WithModelID("my-model"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded", up.ModelID, "inputs", up.Inputs)

	x, err := tensor.New("features", []int64{1, 4}, []float32{5.1, 3.5, 1.4, 0.2})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Run(ctx, "my-model", []tensor.Tensor{x}, client.Sign())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("outputs", len(res.Outputs), "signed and verified", res.Signed)

	if err := c.DeleteModel(ctx, "my-model"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// uploaded my-model inputs [features: float32[-1 4]]
	// outputs 1 signed and verified true
}

// Connect checks the server (version, attestation or the simulation
// opt-in) before anything is sent.
func ExampleConnect() {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := client.Connect(context.Background(), addr, client.WithSimulation(), client.WithHostCertificateFile(hostCert))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("protocol", c.ServerInfo().ProtocolVersion, "simulation", c.Simulation())
	// Output: protocol 0.5.0 simulation true
}

// UploadModel reports the model's inputs and outputs; DescribeModel and
// ListModels show them later.
func ExampleClient_UploadModel() {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	c, err := client.Connect(ctx, addr, client.WithSimulation(), client.WithHostCertificateFile(hostCert))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	model, err := os.ReadFile(modelPath)
	if err != nil {
		log.Fatal(err)
	}
	up, err := c.UploadModel(ctx, model, client.WithModelID("upload-example"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteModel(ctx, up.ModelID)
	m, err := c.DescribeModel(ctx, up.ModelID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.ID, m.Inputs, "owned", m.Owned, "public", m.Public)
	// Output: upload-example [features: float32[-1 4]] owned true public false
}

// Run sends inputs by position (or by name with ByName); Sign asks for a
// signed reply, which is verified before Run returns and can be saved as
// a proof file.
func ExampleClient_Run() {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	c, err := client.Connect(ctx, addr, client.WithSimulation(), client.WithHostCertificateFile(hostCert))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	model, err := os.ReadFile(modelPath)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.UploadModel(ctx, model, client.WithModelID("run-example")); err != nil {
		log.Fatal(err)
	}
	defer c.DeleteModel(ctx, "run-example")
	x, err := tensor.New("features", []int64{2, 4}, []float32{5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Run(ctx, "run-example", []tensor.Tensor{x}, client.ByName())
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range res.Outputs {
		fmt.Println(o.Name, o.DType, o.Shape)
	}
	// Output: probabilities float32 [2 3]
}

// A signed reply saved as a proof file can be verified later, offline, by
// anyone. Simulation proofs prove nothing and need AllowSimulation.
func Example_verifyProof() {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	c, err := client.Connect(ctx, addr, client.WithSimulation(), client.WithHostCertificateFile(hostCert))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	model, err := os.ReadFile(modelPath)
	if err != nil {
		log.Fatal(err)
	}
	up, err := c.UploadModel(ctx, model, client.WithModelID("proof-example"), client.Sign())
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteModel(ctx, "proof-example")
	dir, err := os.MkdirTemp("", "proof-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "upload.proof")
	if err := up.SaveProof(path); err != nil {
		log.Fatal(err)
	}

	p, err := proof.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	r, err := proof.Verify(p, proof.VerifyOptions{AllowSimulation: true, ModelID: "proof-example", ModelHash: proof.ModelHash(model)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Kind, r.ModelID, "simulation", r.Simulation)
	// Output: send_model proof-example simulation true
}

// A policy.toml says what a client demands of an SGX enclave; Connect
// with WithPolicy verifies the server's evidence against it.
func Example_loadPolicy() {
	p, err := policy.Load(filepath.Join("..", "examples", "policy.toml"))
	if err != nil {
		log.Fatal(err)
	}
	// Then: client.Connect(ctx, addr, client.WithPolicy(p), client.WithHostCertificateFile(hostCert))
	fmt.Println("debug allowed:", p.AllowDebug, "statuses:", p.AcceptedTCBStatuses)
	// Output: debug allowed: false statuses: [UpToDate]
}
