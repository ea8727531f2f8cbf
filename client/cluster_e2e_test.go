//go:build cgo

package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestClusterModelReplacedThroughAnotherReplica: replica B holds a model
// in memory; it is deleted through A and another model is uploaded under
// the same id through A. B must serve the new model on its next request,
// never the old one, and its listing must follow the shared store.
func TestClusterModelReplacedThroughAnotherReplica(t *testing.T) {
	shared := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("replaced-model-test-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	opt := func(role string, peers ...string) testserver.Option {
		return func(c *server.Config) {
			c.Cluster, c.ClusterPeers, c.ClusterAddr = role, peers, "127.0.0.1:0"
			c.ClusterSecretFile, c.ClusterModelsDir = secret, shared
			c.ClusterJoinTimeout = server.Duration(5 * time.Second)
		}
	}
	a := testserver.Start(t, opt(server.ClusterBootstrap))
	b := testserver.Start(t, opt(server.ClusterJoin, a.ClusterAddr()))
	ctx := context.Background()
	conn := func(srv *testserver.Server) *client.Client {
		t.Helper()
		c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithSimulation(), client.WithAttestedPort(attestedPort(t, srv)),
			client.WithHostCertificateFile(srv.HostCertPEM))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ca, cb := conn(a), conn(b)
	mlp, _ := onnxgen.MLP()
	ident, _ := onnxgen.Identity(tensor.F32)
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if _, err := ca.UploadModel(ctx, mlp, client.WithModelID("m")); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Run(ctx, "m", []tensor.Tensor{x}); err != nil {
		t.Fatalf("B runs A's model: %v", err)
	}
	if _, err := ca.UploadModel(ctx, mlp, client.WithModelID("m")); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a second upload under the same id: %v, want ALREADY_EXISTS", err)
	}
	if _, err := cb.UploadModel(ctx, ident, client.WithModelID("m")); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("the same id through B: %v, want ALREADY_EXISTS", err)
	}
	// B holds the old model in memory and hears nothing of what follows.
	if err := ca.DeleteModel(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	up, err := ca.UploadModel(ctx, ident, client.WithModelID("m"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cb.DescribeModel(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info.Hash, up.ModelHash) || len(info.Outputs) != 1 || info.Outputs[0].Name != "y" {
		t.Fatalf("B describes %+v, want the new model", info)
	}
	in, _ := tensor.New("x", []int64{1, 3}, []float32{7, 8, 9})
	out, err := cb.Run(ctx, "m", []tensor.Tensor{in})
	if err != nil {
		t.Fatalf("B runs the new model: %v", err)
	}
	got, _ := tensor.Values[float32](out.Outputs[0])
	if !slices.Equal(got, []float32{7, 8, 9}) {
		t.Fatalf("B answered %v, want the identity's output", got)
	}
	if err := cb.DeleteModel(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Run(ctx, "m", []tensor.Tensor{in}); status.Code(err) != codes.NotFound {
		t.Fatalf("B after its own delete: %v, want NOT_FOUND", err)
	}
	list, err := ca.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("A lists %v after the delete through B", list)
	}
	if _, err := ca.Run(ctx, "m", []tensor.Tensor{in}); status.Code(err) != codes.NotFound {
		t.Fatalf("A after the delete through B: %v, want NOT_FOUND", err)
	}
}
