//go:build cgo

package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// freePort returns a loopback port that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestE2EAttestedPortDiscovery: a server on non-default ports is reached
// with only the untrusted address; an explicit WithAttestedPort still wins.
func TestE2EAttestedPortDiscovery(t *testing.T) {
	untrustedPort, attested := freePort(t), freePort(t)
	srv := testserver.Start(t, func(c *server.Config) {
		c.UntrustedAddr = "127.0.0.1:" + strconv.Itoa(untrustedPort)
		c.AttestedAddr = "127.0.0.1:" + strconv.Itoa(attested)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quiet := client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation(), quiet)
	if err != nil {
		t.Fatalf("Connect with only the untrusted address: %v", err)
	}
	defer c.Close()
	if want := "127.0.0.1:" + strconv.Itoa(attested); c.AttestedAddr() != want {
		t.Errorf("attested address %s, want the reported %s", c.AttestedAddr(), want)
	}
	if info := c.ServerInfo(); info.AttestedPort != attested || info.UntrustedPort != untrustedPort {
		t.Errorf("reported ports %d/%d, want %d/%d", info.UntrustedPort, info.AttestedPort, untrustedPort, attested)
	}
	if _, err := c.ListModels(ctx); err != nil {
		t.Fatalf("a call over the discovered port: %v", err)
	}

	// Told otherwise (a port mapping, say), the client dials what it is told.
	closed := freePort(t)
	_, err = client.Connect(ctx, srv.UntrustedAddr, client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation(), quiet, client.WithAttestedPort(closed))
	var ce *client.ConnectError
	if !errors.As(err, &ce) || ce.Step != client.StepAttestedPort || ce.Addr != "127.0.0.1:"+strconv.Itoa(closed) {
		t.Fatalf("Connect with WithAttestedPort(%d): %v; want an attested-port error at that port", closed, err)
	}
}

// tokenIssuer signs EdDSA tokens that a server trusts through pub.
type tokenIssuer struct {
	key ed25519.PrivateKey
	pub string // PEM file of the public key
}

func newTokenIssuer(t *testing.T) *tokenIssuer {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "issuer.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tokenIssuer{key: key, pub: path}
}

func (i *tokenIssuer) token(t *testing.T, sub string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{
		Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	}).SignedString(i.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestE2ECatalogueTenancy: list and describe show a caller its own models
// and public ones, and never another tenant's private model, which
// DescribeModel reports exactly like a missing one.
func TestE2ECatalogueTenancy(t *testing.T) {
	iss := newTokenIssuer(t)
	srv := testserver.Start(t, func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{iss.pub}
	})
	alice := connect(t, srv, client.WithToken(iss.token(t, "alice")))
	bob := connect(t, srv, client.WithToken(iss.token(t, "bob")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := testserver.Model(t, "demo.onnx")
	for _, up := range []struct {
		c      *client.Client
		id     string
		public bool
	}{{alice, "alice-private", false}, {alice, "alice-public", true}, {bob, "bob-private", false}} {
		opts := []client.UploadOption{client.WithModelID(up.id)}
		if up.public {
			opts = append(opts, client.Public())
		}
		if _, err := up.c.UploadModel(ctx, model, opts...); err != nil {
			t.Fatalf("upload %s: %v", up.id, err)
		}
	}
	ids := func(c *client.Client) []string {
		list, err := c.ListModels(ctx)
		if err != nil {
			t.Fatalf("ListModels: %v", err)
		}
		var out []string
		for _, m := range list {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids(alice); !slices.Equal(got, []string{"alice-private", "alice-public"}) {
		t.Errorf("alice lists %v", got)
	}
	if got := ids(bob); !slices.Equal(got, []string{"alice-public", "bob-private"}) {
		t.Errorf("bob lists %v; he must never see alice-private", got)
	}

	// Describing another tenant's private model reads as a missing one.
	_, errPrivate := bob.DescribeModel(ctx, "alice-private")
	_, errMissing := bob.DescribeModel(ctx, "no-such-model-"+"x")
	if status.Code(errPrivate) != codes.NotFound {
		t.Fatalf("bob describing alice's private model: %v, want NotFound", errPrivate)
	}
	msgP, msgM := status.Convert(errPrivate).Message(), status.Convert(errMissing).Message()
	if want := `no model with id "alice-private" is loaded that you may use`; msgP != want {
		t.Errorf("message %q, want %q", msgP, want)
	}
	if want := `no model with id "no-such-model-x" is loaded that you may use`; msgM != want {
		t.Errorf("message %q, want %q", msgM, want)
	}

	// A public model of another tenant: described, owner withheld.
	pub, err := bob.DescribeModel(ctx, "alice-public")
	if err != nil {
		t.Fatal(err)
	}
	if pub.Owned || pub.Owner != "" || !pub.Public {
		t.Errorf("alice's public model as bob sees it: owned %t, owner %q, public %t", pub.Owned, pub.Owner, pub.Public)
	}
	own, err := alice.DescribeModel(ctx, "alice-private")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	if !own.Owned || own.Owner != "alice" || own.Public || own.Saved || own.Size != int64(len(model)) || string(own.Hash) != string(sum[:]) {
		t.Errorf("alice's own model: %+v", own)
	}
	if time.Since(own.LoadedAt) > time.Minute || time.Since(own.LoadedAt) < 0 {
		t.Errorf("loaded at %v", own.LoadedAt)
	}
	if len(own.Inputs) != 1 || own.Inputs[0].DType != tensor.F32 || len(own.Outputs) == 0 {
		t.Errorf("specs: inputs %v, outputs %v", own.Inputs, own.Outputs)
	}
}
