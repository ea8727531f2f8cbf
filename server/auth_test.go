package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

type issuer struct {
	es  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
	dir string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	var pemData []byte
	for _, pub := range []crypto.PublicKey{es.Public(), ed.Public()} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.pem"), pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return &issuer{es: es, ed: ed, dir: dir}
}

func (i *issuer) token(t *testing.T, method jwt.SigningMethod, sub string, exp time.Duration) string {
	t.Helper()
	claims := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(exp))}
	var key any = i.es
	if method == jwt.SigningMethodEdDSA {
		key = i.ed
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearer(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func startAuthServer(t *testing.T, iss *issuer, extra ...testserver.Option) (*testserver.Server, *blindai) {
	opts := append([]testserver.Option{func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{filepath.Join(iss.dir, "keys.pem")}
	}}, extra...)
	ts := testserver.Start(t, opts...)
	return ts, connectLikeBlindAI(t, ts)
}

func TestOwnership(t *testing.T) {
	iss := newIssuer(t)
	_, b := startAuthServer(t, iss)
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	bob := bearer(iss.token(t, jwt.SigningMethodEdDSA, "bob", time.Hour))
	model := testserver.Model(t, "mlp.onnx")
	in := []tensor.Tensor{f32(t, []int64{1, 4})}

	if _, _, _, err := b.upload(alice, model, "private", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.run(alice, "private", in, false); err != nil {
		t.Fatalf("owner cannot run own model: %v", err)
	}
	// Another subject's private model answers exactly like a missing one:
	// no existence oracle.
	_, _, _, errPrivate := b.run(bob, "private", in, false)
	_, _, _, errMissing := b.run(bob, "no-such-model", in, false)
	wantStatus(t, errPrivate, codes.NotFound, `no model with id "private" that you may run`)
	wantStatus(t, errMissing, codes.NotFound, `no model with id "no-such-model" that you may run`)
	_, err := b.ex.DeleteModel(bob, &securedexchange.DeleteModelRequest{ModelId: "private"})
	wantStatus(t, err, codes.NotFound, `you have no model with id "private"`)

	// Ids are per owner: bob's "private" is his own, not a squat on alice's.
	if _, _, _, err := b.upload(bob, model, "private", false); err != nil {
		t.Fatalf("bob cannot use an id alice uses: %v", err)
	}
	if _, _, _, err := b.upload(alice, model, "private", false); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("alice re-uploading her own id: %v, want AlreadyExists", err)
	}
	if _, err := b.ex.DeleteModel(bob, &securedexchange.DeleteModelRequest{ModelId: "private"}); err != nil {
		t.Fatalf("bob deleting his own model: %v", err)
	}
	if _, _, _, err := b.run(alice, "private", in, false); err != nil {
		t.Fatalf("alice's model went with bob's delete: %v", err)
	}

	// A public model: anyone authenticated runs it, only the owner deletes it.
	stream, err := b.ex.SendModel(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.SendModelRequest{Data: model, Length: uint64(len(model)), ModelId: "shared", Public: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.run(bob, "shared", in, false); err != nil {
		t.Fatalf("another subject cannot run a public model: %v", err)
	}
	_, err = b.ex.DeleteModel(bob, &securedexchange.DeleteModelRequest{ModelId: "shared"})
	wantStatus(t, err, codes.NotFound, `you have no model with id "shared"`)
	// Public ids are one namespace: bob cannot publish another "shared".
	stream, err = b.ex.SendModel(bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.SendModelRequest{Data: model, Length: uint64(len(model)), ModelId: "shared", Public: true}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.CloseAndRecv()
	wantStatus(t, err, codes.AlreadyExists, "public models share one namespace")
	for _, id := range []string{"private", "shared"} {
		if _, err := b.ex.DeleteModel(alice, &securedexchange.DeleteModelRequest{ModelId: id}); err != nil {
			t.Fatalf("owner cannot delete %s: %v", id, err)
		}
	}
}

func TestBadTokens(t *testing.T) {
	iss := newIssuer(t)
	_, b := startAuthServer(t, iss)
	other := newIssuer(t) // keys the server does not know
	claims := jwt.RegisteredClaims{Subject: "mallory", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Subject: "x"}).SignedString(iss.es)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(iss.es)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("a shared secret"))
	good := iss.token(t, jwt.SigningMethodES256, "alice", time.Hour)
	tests := []struct {
		name string
		ctx  context.Context
		msg  string
	}{
		{"no token", context.Background(), "requires a bearer token"},
		{"expired", bearer(iss.token(t, jwt.SigningMethodES256, "alice", -time.Hour)), "expired"},
		{"wrong signer", bearer(other.token(t, jwt.SigningMethodES256, "alice", time.Hour)), "signature"},
		{"alg none", bearer(none), "invalid token"},
		{"HS256", bearer(hs), "invalid token"},
		{"no exp", bearer(noExp), "exp"},
		{"no sub", bearer(noSub), "no sub"},
		{"garbage", bearer("not.a.jwt"), "malformed"},
		{"flipped signature", bearer(good[:len(good)-2] + flip(good[len(good)-2:])), "invalid token"},
		{"not bearer", metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic abc"), "Bearer"},
		{"two tokens", metadata.AppendToOutgoingContext(bearer(good), "accesstoken", iss.token(t, jwt.SigningMethodEdDSA, "bob", time.Hour)), "two different tokens"},
	}
	model := testserver.Model(t, "mlp.onnx")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := b.upload(tt.ctx, model, "m", false)
			wantStatus(t, err, codes.Unauthenticated, tt.msg)
			_, _, _, err = b.run(tt.ctx, "m", []tensor.Tensor{f32(t, []int64{1, 4})}, false)
			wantStatus(t, err, codes.Unauthenticated, tt.msg)
			_, err = b.ex.DeleteModel(tt.ctx, &securedexchange.DeleteModelRequest{ModelId: "m"})
			wantStatus(t, err, codes.Unauthenticated, tt.msg)
		})
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestBlindAITokenPlaces: a BlindAI 0.5 client sends its token as
// accesstoken metadata and in SendModelRequest.jwt.
func TestBlindAITokenPlaces(t *testing.T) {
	iss := newIssuer(t)
	_, b := startAuthServer(t, iss)
	tok := iss.token(t, jwt.SigningMethodEdDSA, "carol", time.Hour)
	model := testserver.Model(t, "mlp.onnx")
	stream, err := b.ex.SendModel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.SendModelRequest{Data: model, Length: uint64(len(model)), ModelId: "m", Jwt: tok}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("token in SendModelRequest.jwt refused: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "accesstoken", tok)
	if _, _, _, err := b.run(ctx, "m", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err != nil {
		t.Fatalf("accesstoken metadata refused: %v", err)
	}
	if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "m"}); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectLimits(t *testing.T) {
	iss := newIssuer(t)
	_, b := startAuthServer(t, iss, func(c *server.Config) {
		c.RateLimit = 1
		c.RateBurst = 3
		c.MaxConcurrentPerSubject = 1
	})
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	bob := bearer(iss.token(t, jwt.SigningMethodES256, "bob", time.Hour))
	if _, _, _, err := b.upload(alice, testserver.Model(t, "mlp.onnx"), "m", false); err != nil {
		t.Fatal(err)
	}
	// Concurrency: an open stream holds alice's only slot.
	open, err := b.ex.RunModel(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Send(&securedexchange.RunModelRequest{ModelId: "m"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_, err = b.ex.DeleteModel(alice, &securedexchange.DeleteModelRequest{ModelId: "nope"})
	wantStatus(t, err, codes.ResourceExhausted, "in flight")
	// Another subject is not affected.
	_, err = b.ex.DeleteModel(bob, &securedexchange.DeleteModelRequest{ModelId: "nope"})
	wantStatus(t, err, codes.NotFound, "nope")
	open.CloseAndRecv()
	// Rate: burst 3 used by upload, run stream, failed delete; the next is refused.
	var last error
	for i := 0; i < 3; i++ {
		_, last = b.ex.DeleteModel(alice, &securedexchange.DeleteModelRequest{ModelId: "nope"})
	}
	if !strings.Contains(last.Error(), "rate limit") {
		t.Fatalf("after the burst: %v, want a rate limit error", last)
	}
}
