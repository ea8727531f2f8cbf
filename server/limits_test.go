package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

func slowModel(t *testing.T, steps int) ([]byte, []tensor.Tensor) {
	t.Helper()
	const n = 512
	m, err := onnxgen.Slow(n, steps)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{n, n}, make([]float32, n*n))
	return m, []tensor.Tensor{x}
}

// TestRunCap: with one inference slot and a short queue wait, a second run
// while the first is busy gets RESOURCE_EXHAUSTED promptly, and the server
// serves again once the slot is free.
func TestRunCap(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) {
		c.MaxConcurrentRuns = 1
		c.RunQueueTimeout = server.Duration(100 * time.Millisecond)
	})
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	model, in := slowModel(t, 2000) // seconds, even with AVX-512
	if _, _, _, err := b.upload(ctx, model, "slow", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.upload(ctx, testserver.Model(t, "mlp.onnx"), "mlp", false); err != nil {
		t.Fatal(err)
	}
	busyCtx, cancelBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.run(busyCtx, "slow", in, false)
	}()
	time.Sleep(300 * time.Millisecond) // the slow run holds the slot
	start := time.Now()
	_, _, _, err := b.run(ctx, "mlp", []tensor.Tensor{f32(t, []int64{1, 4})}, false)
	waited := time.Since(start)
	wantStatus(t, err, codes.ResourceExhausted, "max_concurrent_runs")
	if waited > 2*time.Second {
		t.Fatalf("refusal took %v; it must come after the queue wait, promptly", waited)
	}
	cancelBusy() // the slow run is cancelled inside the engine, freeing the slot
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, _, err := b.run(ctx, "mlp", []tensor.Tensor{f32(t, []int64{1, 4})}, false)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not recover after the busy run ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadlineInsideEngine: a deadline shorter than the inference ends the
// run with DEADLINE_EXCEEDED, well before the inference would finish.
func TestDeadlineInsideEngine(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	model, in := slowModel(t, 2000)
	if _, _, _, err := b.upload(context.Background(), model, "slow", false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, _, err := b.run(ctx, "slow", in, false)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status %v (%v), want DeadlineExceeded", status.Code(err), err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the run went on for %v after a 300ms deadline", d)
	}
	// The server still serves, and the engine is free again.
	if _, _, _, err := b.upload(context.Background(), testserver.Model(t, "mlp.onnx"), "mlp", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.run(context.Background(), "mlp", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err != nil {
		t.Fatal(err)
	}
}

// TestConnectionLimits: a silent TCP connection is closed after the
// handshake timeout; the attested port refuses TLS 1.2; a message over
// max_message_bytes and outputs over max_reply_bytes get RESOURCE_EXHAUSTED.
func TestConnectionLimits(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) {
		c.HandshakeTimeout = server.Duration(500 * time.Millisecond)
		c.MaxMessageBytes = 64 << 10
		c.MaxReplyBytes = 4 << 10
	})
	conn, err := net.Dial("tcp", ts.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent connection closed after %v", d)
	}

	if _, err := tls.Dial("tcp", ts.AttestedAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("the attested port accepted TLS 1.2")
	}

	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	model := testserver.Model(t, "identity_float32.onnx")
	stream, _ := b.ex.SendModel(ctx)
	stream.Send(&securedexchange.SendModelRequest{Data: make([]byte, 100<<10), ModelId: "big-chunk"})
	_, err = stream.CloseAndRecv()
	wantStatus(t, err, codes.ResourceExhausted, "larger than max")

	if _, _, _, err := b.upload(ctx, model, "id", false); err != nil {
		t.Fatal(err)
	}
	small, _ := tensor.New("x", []int64{10, 3}, make([]float32, 30))
	if _, _, _, err := b.run(ctx, "id", []tensor.Tensor{small}, false); err != nil {
		t.Fatal(err)
	}
	large, _ := tensor.New("x", []int64{1000, 3}, make([]float32, 3000)) // 12 KB out
	_, _, _, err = b.run(ctx, "id", []tensor.Tensor{large}, false)
	wantStatus(t, err, codes.ResourceExhausted, "max_reply_bytes")
}

// TestRunsPerSubject: with authentication, one subject flooding the
// server holds at most its share of the slots; another subject still gets
// one at once.
func TestRunsPerSubject(t *testing.T) {
	iss := newIssuer(t)
	_, b := startAuthServer(t, iss, func(c *server.Config) {
		c.MaxConcurrentRuns = 2 // max_runs_per_subject 0: three quarters of 2, so 1
		c.RunQueueTimeout = server.Duration(200 * time.Millisecond)
	})
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	bob := bearer(iss.token(t, jwt.SigningMethodES256, "bob", time.Hour))
	model, in := slowModel(t, 2000)
	for _, who := range []context.Context{alice, bob} {
		if _, _, _, err := b.upload(who, model, "slow", false); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := b.upload(who, testserver.Model(t, "mlp.onnx"), "mlp", false); err != nil {
			t.Fatal(err)
		}
	}
	busy, cancelBusy := context.WithCancel(alice)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.run(busy, "slow", in, false)
	}()
	defer func() { cancelBusy(); wg.Wait() }()
	time.Sleep(300 * time.Millisecond) // alice's slow run holds her one slot
	// Alice's second run waits for her own slot, and is refused: she
	// holds her share even though a server slot is free.
	_, _, _, err := b.run(alice, "mlp", []tensor.Tensor{f32(t, []int64{1, 4})}, false)
	wantStatus(t, err, codes.ResourceExhausted, "max_runs_per_subject")
	// Bob's run gets the free slot at once.
	if _, _, _, err := b.run(bob, "mlp", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err != nil {
		t.Fatalf("bob's run while alice floods: %v", err)
	}
}

// TestUploadChunkRules: a later chunk naming another id says which id the
// upload has and where it came from; a flood of empty chunks is refused.
func TestUploadChunkRules(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	model := testserver.Model(t, "mlp.onnx")
	send := func(reqs ...*securedexchange.SendModelRequest) error {
		stream, err := b.ex.SendModel(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				break
			}
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	err := send(&securedexchange.SendModelRequest{ModelName: "named", Length: uint64(len(model)), Data: model[:10]},
		&securedexchange.SendModelRequest{ModelId: "other", Data: model[10:]})
	wantStatus(t, err, codes.InvalidArgument, `a later chunk names model id "other", but this upload's model id is "named" (the first chunk's model_name)`)
	// The same id repeated in later chunks is fine, as BlindAI sends it.
	if err := send(&securedexchange.SendModelRequest{ModelName: "named", Length: uint64(len(model)), Data: model[:10]},
		&securedexchange.SendModelRequest{ModelName: "named", ModelId: "named", Data: model[10:]}); err != nil {
		t.Fatalf("an upload repeating its id: %v", err)
	}
	reqs := []*securedexchange.SendModelRequest{{ModelId: "empties", Length: uint64(len(model)), Data: model[:10]}}
	for range 65 {
		reqs = append(reqs, &securedexchange.SendModelRequest{})
	}
	wantStatus(t, send(reqs...), codes.InvalidArgument, "chunks without model bytes")
}

// TestMaxConnections: past max_connections a new connection is not
// accepted (its TLS handshake gets no answer) until one closes.
func TestMaxConnections(t *testing.T) {
	ts := testserver.Start(t, func(c *server.Config) { c.MaxConnections = 1 })
	hold, err := net.Dial("tcp", ts.UntrustedAddr)
	if err != nil {
		t.Fatal(err)
	}
	handshake := func() error {
		c, err := net.Dial("tcp", ts.UntrustedAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
	}
	time.Sleep(100 * time.Millisecond) // the held connection is accepted
	if err := handshake(); err == nil {
		t.Fatal("a second connection was served past max_connections = 1")
	}
	hold.Close()
	deadline := time.Now().Add(10 * time.Second)
	for handshake() != nil {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after the first closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
