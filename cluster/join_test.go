package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/identity"
)

func startPeer(t *testing.T, id *Identity, att Attestor) string {
	t.Helper()
	p, err := NewPeer(id, att, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(l)
	t.Cleanup(p.Close)
	return l.Addr().String()
}

func sim(t *testing.T, secret string) *Simulation {
	t.Helper()
	s, err := NewSimulation([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJoinHandsOverTheIdentity(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, sim(t, "0123456789abcdef-secret"))
	got, err := JoinAddr(context.Background(), addr, sim(t, "0123456789abcdef-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Attested.DER, id.Attested.DER) {
		t.Error("joiner got another certificate")
	}
	if !bytes.Equal(got.SealingKey, id.SealingKey) || !got.Attested.SigningKey.Equal(id.Attested.SigningKey) {
		t.Error("joiner got other keys")
	}
	msg := []byte("reply")
	if !bytes.Equal(got.Attested.Sign(msg), id.Attested.Sign(msg)) {
		t.Error("signatures differ")
	}
	got.Zero()
	if !bytes.Equal(got.SealingKey, make([]byte, SealingKeySize)) {
		t.Error("Zero left the sealing key")
	}
}

func TestJoinRefusedWithAnotherSecret(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, sim(t, "0123456789abcdef-secret"))
	got, err := JoinAddr(context.Background(), addr, sim(t, "another-secret-0123456789"))
	if !errors.Is(err, ErrRefused) || got != nil {
		t.Fatalf("join with another secret: %v, %v; want ErrRefused", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := Join(ctx, []string{addr}, sim(t, "another-secret-0123456789"), nil); !errors.Is(err, ErrRefused) || errors.Is(err, ErrNoPeerAnswered) {
		t.Fatalf("Join: %v; want ErrRefused, and not ErrNoPeerAnswered (a peer that refuses has answered)", err)
	}
}

// TestJoinNoPeerAnswered: Join says ErrNoPeerAnswered only when no peer
// answered at all (nothing listening), which is what lets a
// join-or-bootstrap replica bootstrap; a listener that accepts and then
// fails the handshake, or completes it and stalls, has answered.
func TestJoinNoPeerAnswered(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, then hangs up before TLS
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = Join(ctx, []string{nobody}, sim(t, "0123456789abcdef-secret"), nil)
	if !errors.Is(err, ErrNoPeerAnswered) {
		t.Fatalf("Join with no peer: %v; want ErrNoPeerAnswered", err)
	}
	// A peer port that accepts connections but fails the handshake (a
	// replica at its connection limit looks like this) has answered.
	ctxSilent, cancelSilent := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelSilent()
	if _, err := Join(ctxSilent, []string{nobody, silent.Addr().String()}, sim(t, "0123456789abcdef-secret"), nil); err == nil || errors.Is(err, ErrNoPeerAnswered) {
		t.Fatalf("Join with a listener that hangs up before TLS: %v; want an error that is not ErrNoPeerAnswered", err)
	}
	// A peer that completes the TLS handshake and then stalls has
	// answered: a slow peer must not make a join-or-bootstrap replica
	// start a second cluster.
	stallID, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	stalling, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{stallID.Certificate}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer stalling.Close()
	go func() {
		for {
			c, err := stalling.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				time.Sleep(3 * time.Second)
				c.Close()
			}()
		}
	}()
	ctxStall, cancelStall := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelStall()
	if _, err := Join(ctxStall, []string{nobody, stalling.Addr().String()}, sim(t, "0123456789abcdef-secret"), nil); err == nil || errors.Is(err, ErrNoPeerAnswered) {
		t.Fatalf("Join with a peer that stalls after the handshake: %v; want an error that is not ErrNoPeerAnswered", err)
	}
	// One answering peer among unreachable ones: no longer "no peer".
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	refusing := startPeer(t, id, sim(t, "0123456789abcdef-secret"))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	_, err = Join(ctx2, []string{nobody, refusing}, sim(t, "another-secret-0123456789"), nil)
	if errors.Is(err, ErrNoPeerAnswered) || !errors.Is(err, ErrRefused) {
		t.Fatalf("Join with a refusing peer: %v; want ErrRefused only", err)
	}
}

// impostor answers a join with the right shape but proves itself with
// another secret: the joiner must not take its keys.
type impostor struct{ Attestor }

func (i impostor) Check(context.Context, *Proof, [64]byte) error { return nil } // lets anyone join

func TestJoinerRefusesAnImpostorPeer(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, impostor{sim(t, "impostor-secret-0123456789")})
	got, err := JoinAddr(context.Background(), addr, sim(t, "0123456789abcdef-secret"))
	if !errors.Is(err, ErrRefused) || got != nil {
		t.Fatalf("joining an impostor: %v, %v; want ErrRefused", got, err)
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := NewSimulation([]byte("short")); err == nil {
		t.Fatal("a 5-byte join secret was accepted")
	}
}

func TestBundleRejectsMismatchedParts(t *testing.T) {
	a, _ := NewIdentity()
	b, _ := NewIdentity()
	m := *a.Attested
	m.SigningKey = b.Attested.SigningKey
	mixed := &Identity{Attested: &m, SealingKey: a.SealingKey}
	enc, err := mixed.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unmarshalIdentity(enc); err == nil {
		t.Fatal("a bundle whose signing key is not the certificate's was accepted")
	}
	enc, _ = a.marshal()
	if _, err := unmarshalIdentity(enc[:len(enc)-1]); err == nil {
		t.Fatal("a truncated bundle was accepted")
	}
}
