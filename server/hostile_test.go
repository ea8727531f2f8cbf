package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestModelCannotReadServerFiles is the regression test of the
// external-data attack: a model whose tensor names a file (relative to
// the server's working folder) must not get that file's bytes back, from
// any place a tensor can sit. Canaries lie in the working folder and in
// the state folder (which here is inside the working folder, as in the
// original report), next to the real sealing key and TLS key. Each upload
// must be refused with INVALID_ARGUMENT, and the message must not say
// whether the file exists, where it is or how long it is.
func TestModelCannotReadServerFiles(t *testing.T) {
	// The library is searched from the working folder; find it first.
	lib, err := engine.FindLibrary("")
	if err != nil {
		t.Fatalf("ONNX Runtime library: %v", err)
	}
	t.Setenv(engine.LibraryEnv, lib)
	mlp := testserver.Model(t, "mlp.onnx")
	work := t.TempDir()
	t.Chdir(work)
	state := filepath.Join(work, "state")
	ts := testserver.Start(t, func(c *server.Config) { c.StateDir = state })
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()

	const n = 4099
	secret := bytes.Repeat([]byte("CANARY-"), n/7+1)[:n]
	for _, p := range []string{filepath.Join(work, "canary.bin"), filepath.Join(state, "canary.bin")} {
		if err := os.WriteFile(p, secret, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sealing, err := os.ReadFile(filepath.Join(state, "sealing.key"))
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		location string
		content  []byte
	}{
		{"canary.bin", secret},
		{"state/canary.bin", secret},
		{"state/sealing.key", sealing},
		{"missing.bin", secret}, // a file that does not exist must read the same as one that does
	}
	for _, place := range onnxgen.Places() {
		for i, f := range files {
			t.Run(fmt.Sprintf("%s/%s", place, f.location), func(t *testing.T) {
				model, err := onnxgen.ExternalData(place, f.location, int64(len(f.content)))
				if err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("%s-%d", place, i)
				_, _, _, err = b.upload(ctx, model, id, false)
				if err == nil {
					x, _ := tensor.New("x", []int64{int64(len(f.content))}, make([]uint8, len(f.content)))
					p, _, _, rerr := b.run(ctx, id, []tensor.Tensor{x}, false)
					if rerr == nil && len(p.GetOutputTensors()) > 0 && bytes.Equal(p.GetOutputTensors()[0].GetBytesData(), f.content) {
						t.Fatalf("the model read %s and handed its bytes back", f.location)
					}
					t.Fatalf("a model with external data was accepted (run: %v)", rerr)
				}
				msg := status.Convert(err).Message()
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(msg, "external data") {
					t.Fatalf("upload: %v, want INVALID_ARGUMENT about external data", err)
				}
				for _, leak := range []string{work, "canary", "sealing", "missing", fmt.Sprint(len(f.content)), "exist"} {
					if strings.Contains(msg, leak) {
						t.Errorf("message %q tells %q", msg, leak)
					}
				}
			})
		}
	}
	// The server still serves.
	if _, _, _, err := b.upload(ctx, mlp, "mlp", false); err != nil {
		t.Fatalf("a good model after the attacks: %v", err)
	}
}

// TestModelNodeLimit: a model over max_model_nodes (or
// max_model_initializers) is refused with RESOURCE_EXHAUSTED naming the
// setting, quickly, and one at the limit loads.
func TestModelNodeLimit(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) { c.MaxModelNodes = 1000; c.MaxModelInitializers = 10 })
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	over, err := onnxgen.IdentityChain(200_000)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, err = b.upload(ctx, over, "over", false)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_model_nodes") {
		t.Fatalf("200,000 nodes over a limit of 1000: %v, want RESOURCE_EXHAUSTED naming max_model_nodes", err)
	}
	t.Logf("%d-byte model refused in %v", len(over), time.Since(start))
	at, err := onnxgen.IdentityChain(1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.upload(ctx, at, "at", false); err != nil {
		t.Fatalf("1000 nodes at a limit of 1000: %v", err)
	}
	inits := func(n int) []byte {
		g := onnxgen.NewGraph("inits")
		x := g.Input("x", tensor.F32, onnxgen.Fixed(1))
		g.Output("y", tensor.F32, onnxgen.Fixed(1))
		for i := 0; i < n; i++ {
			g.Floats(fmt.Sprint("w", i), []int64{1}, []float32{0})
		}
		g.Node("Identity", []string{x}, []string{"y"})
		m, err := g.Model()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	_, _, _, err = b.upload(ctx, inits(11), "inits-over", false)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_model_initializers") {
		t.Fatalf("11 initializers over a limit of 10: %v, want RESOURCE_EXHAUSTED naming max_model_initializers", err)
	}
	if _, _, _, err := b.upload(ctx, inits(10), "inits-at", false); err != nil {
		t.Fatalf("10 initializers at a limit of 10: %v", err)
	}
}

// TestConcurrentLoadLimit: with one load slot, an upload that arrives
// while a slow model loads waits load_queue_timeout, then gets
// RESOURCE_EXHAUSTED naming max_concurrent_loads; the slow one loads.
func TestConcurrentLoadLimit(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) {
		c.MaxConcurrentLoads = 1
		c.LoadQueueTimeout = server.Duration(20 * time.Millisecond)
	})
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	slow, err := onnxgen.IdentityChain(60_000) // a second or more to load
	if err != nil {
		t.Fatal(err)
	}
	small := testserver.Model(t, "mlp.onnx")
	done := make(chan error, 1)
	go func() { _, _, _, err := b.upload(ctx, slow, "slow", false); done <- err }()
	refused := 0
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("slow upload: %v", err)
			}
			if refused == 0 {
				t.Fatal("no upload was refused while the slow model loaded")
			}
			return
		default:
		}
		id := fmt.Sprint("small-", i)
		_, _, _, err := b.upload(ctx, small, id, false)
		switch {
		case err == nil:
			if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: id}); err != nil {
				t.Fatal(err)
			}
		case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "max_concurrent_loads"):
			refused++
		default:
			t.Fatalf("small upload: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
