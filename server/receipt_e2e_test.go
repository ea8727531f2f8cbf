package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
)

// TestReceipts runs a BlindAI 0.5-shaped client (generated stubs only)
// against a real server: signed replies carry a receipt that binds the
// model, the outputs, the request nonce and the replica, which package
// proof verifies; changing any one expected value fails naming it.
func TestReceipts(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	if b.info.ReplicaSource != verifier.ReplicaSimulation || len(b.info.ReplicaId) != 16 {
		t.Fatalf("server info replica %q:%x, want a 16-byte simulation id", b.info.ReplicaSource, b.info.ReplicaId)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := testserver.Model(t, "mlp.onnx")
	modelHash := sha256.Sum256(model)
	nonce := []byte("nonce chosen by a verifier")
	withNonce := metadata.AppendToOutgoingContext(ctx, "blindfold-nonce", hex.EncodeToString(nonce))

	up, upPayload, upSig, err := b.upload(withNonce, model, "mlp", true)
	if err != nil {
		t.Fatal(err)
	}
	if rc := up.GetReceipt(); rc == nil || !bytes.Equal(rc.Nonce, nonce) || !bytes.Equal(rc.ReplicaId, b.info.ReplicaId) || len(rc.ModelHash) != 0 || len(rc.OutputHash) != 0 {
		t.Fatalf("upload receipt %v", rc)
	}
	cert := ts.AttestedCertificateDER()
	if _, err := proof.Verify(proof.NewSimulation(cert, upPayload, upSig), proof.VerifyOptions{AllowSimulation: true, ModelHash: modelHash[:], RequestNonce: nonce}); err != nil {
		t.Fatalf("upload proof: %v", err)
	}

	inputs := randomInputs(t, rand.New(rand.NewPCG(3, 4)), modelSpecs(t, ts.Runtime, model), 2)
	run, payload, sig, err := b.run(withNonce, "mlp", inputs, true)
	if err != nil {
		t.Fatal(err)
	}
	rc := run.GetReceipt()
	if rc == nil || !bytes.Equal(rc.ModelHash, modelHash[:]) || !bytes.Equal(rc.Nonce, nonce) ||
		!bytes.Equal(rc.ReplicaId, b.info.ReplicaId) || rc.ReplicaSource != verifier.ReplicaSimulation {
		t.Fatalf("run receipt %v", rc)
	}
	sameOutputs(t, run.OutputTensors, direct(t, ts.Runtime, model, inputs))
	p := proof.NewSimulation(cert, payload, sig)
	opts := proof.VerifyOptions{
		AllowSimulation: true, ModelID: "mlp", ModelHash: modelHash[:], InputHash: run.InputHash,
		OutputHash: proof.OutputHash(run.OutputTensors), RequestNonce: nonce,
	}
	res, err := proof.Verify(p, opts)
	if err != nil {
		t.Fatalf("run proof: %v", err)
	}
	for _, bd := range res.Bindings {
		want := bd.Name != proof.BindReplica && bd.Name != proof.BindTime
		if bd.Checked != want {
			t.Errorf("binding %s checked %v, want %v (%s)", bd.Name, bd.Checked, want, bd.Note)
		}
	}
	inHash := sha256.Sum256(inputs[0].Data)
	for field, change := range map[string]func(o *proof.VerifyOptions){
		proof.BindModelHash: func(o *proof.VerifyOptions) {
			h := sha256.Sum256(testserver.Model(t, "cnn.onnx"))
			o.ModelHash = h[:]
		},
		proof.BindInputHash:  func(o *proof.VerifyOptions) { o.InputHash = sha256.New().Sum(nil) },
		proof.BindOutputHash: func(o *proof.VerifyOptions) { o.OutputHash = proof.OutputHash(run.OutputTensors[:0]) },
		proof.BindNonce:      func(o *proof.VerifyOptions) { o.RequestNonce = []byte("another nonce") },
	} {
		o := opts
		change(&o)
		_, err := proof.Verify(p, o)
		var me *proof.MismatchError
		if !errors.As(err, &me) || me.Field != field {
			t.Errorf("%s changed: %v, want a mismatch of %s", field, err, field)
		}
	}
	if !bytes.Equal(run.InputHash, inHash[:]) {
		t.Fatal("input hash is not SHA-256 of the input bytes")
	}

	// Without a nonce the receipt has none; unsigned, there is no receipt.
	run, _, _, err = b.run(ctx, "mlp", inputs, true)
	if err != nil || run.GetReceipt() == nil || len(run.GetReceipt().Nonce) != 0 {
		t.Fatalf("signed run without a nonce: %v, receipt %v", err, run.GetReceipt())
	}
	run, _, _, err = b.run(withNonce, "mlp", inputs, false)
	if err != nil || run.GetReceipt() != nil {
		t.Fatalf("unsigned run: %v, receipt %v", err, run.GetReceipt())
	}
}

// A malformed or oversize request nonce is refused with InvalidArgument,
// for runs and uploads alike.
func TestReceiptNonceRefused(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	model := testserver.Model(t, "mlp.onnx")
	inputs := randomInputs(t, rand.New(rand.NewPCG(5, 6)), modelSpecs(t, ts.Runtime, model), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, _, err := b.upload(ctx, model, "mlp", false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values []string
		msg    string
	}{
		{"not hex", []string{"zz"}, "not hex"},
		{"odd length", []string{"abc"}, "not hex"},
		{"empty", []string{""}, "1 to 64 bytes"},
		{"65 bytes", []string{strings.Repeat("ab", 65)}, "1 to 64 bytes"},
		{"huge", []string{strings.Repeat("a", 4096)}, "1 to 64 bytes"},
		{"twice", []string{"01", "02"}, "appears 2 times"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{}
			for _, v := range tc.values {
				kv = append(kv, "blindfold-nonce", v)
			}
			c := metadata.AppendToOutgoingContext(ctx, kv...)
			_, _, _, runErr := b.run(c, "mlp", inputs, true)
			_, _, _, upErr := b.upload(c, model, "other", true)
			for what, err := range map[string]error{"run": runErr, "upload": upErr} {
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "blindfold-nonce") {
					t.Errorf("%s: %v, want InvalidArgument saying %q", what, err, tc.msg)
				}
			}
		})
	}
	// The longest nonce is accepted.
	c := metadata.AppendToOutgoingContext(ctx, "blindfold-nonce", strings.Repeat("AB", 64))
	if run, _, _, err := b.run(c, "mlp", inputs, true); err != nil || !bytes.Equal(run.GetReceipt().GetNonce(), bytes.Repeat([]byte{0xab}, 64)) {
		t.Fatalf("64-byte nonce: %v, receipt %v", err, run.GetReceipt())
	}
}

// A hardware replica's receipts name the platform of the evidence it
// serves (SHA-256 of the PCK certificate of its latest quote); a signed
// request that finds no evidence to learn it from fails with UNAVAILABLE
// before anything is stored or run.
func TestReceiptReplicaHardware(t *testing.T) {
	now := time.Now()
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	att := attesttest.NewAttester(pki, now)
	att.Err = errors.New("quoting enclave busy")
	ts := testserver.StartHardware(t, att)
	b := connectLikeBlindAI(t, ts)
	if len(b.info.ReplicaId) != 0 {
		t.Fatalf("replica %x reported before any evidence", b.info.ReplicaId)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := testserver.Model(t, "mlp.onnx")
	if _, _, _, err := b.upload(ctx, model, "mlp", true); status.Code(err) != codes.Unavailable {
		t.Fatalf("signed upload without evidence: %v, want Unavailable", err)
	}
	inputs := randomInputs(t, rand.New(rand.NewPCG(7, 8)), modelSpecs(t, ts.Runtime, model), 1)
	if _, _, _, err := b.run(ctx, "mlp", inputs, false); status.Code(err) != codes.NotFound {
		t.Fatalf("the failed signed upload kept the model: run gave %v, want NotFound", err)
	}
	if _, _, _, err := b.upload(ctx, model, "mlp", false); err != nil {
		t.Fatalf("unsigned upload: %v", err)
	}
	if _, _, _, err := b.run(ctx, "mlp", inputs, true); status.Code(err) != codes.Unavailable {
		t.Fatalf("signed run without evidence: %v, want Unavailable", err)
	}

	att.Err = nil
	quote := quoteOf(ctx, t, ts)
	pck := sha256.Sum256(firstCertificate(t, quote))
	run, _, _, err := b.run(ctx, "mlp", inputs, true)
	if err != nil {
		t.Fatal(err)
	}
	if rc := run.GetReceipt(); rc.GetReplicaSource() != verifier.ReplicaSGXPCK || !bytes.Equal(rc.GetReplicaId(), pck[:]) {
		t.Fatalf("receipt replica %s:%x, want %s:%x (the PCK certificate of the quote served)", rc.GetReplicaSource(), rc.GetReplicaId(), verifier.ReplicaSGXPCK, pck)
	}
	if info := connectLikeBlindAI(t, ts).info; !bytes.Equal(info.ReplicaId, pck[:]) || info.ReplicaSource != verifier.ReplicaSGXPCK {
		t.Fatalf("server info replica %s:%x, want %x", info.ReplicaSource, info.ReplicaId, pck)
	}
}

// quoteOf asks the untrusted port (its certificate pinned) for a quote.
func quoteOf(ctx context.Context, t *testing.T, ts *testserver.Server) []byte {
	t.Helper()
	pemBytes, err := os.ReadFile(ts.HostCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in the host certificate file")
	}
	conn, err := grpc.NewClient(ts.UntrustedAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "blindai-srv"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply, err := untrusted.NewAttestationClient(conn).GetSgxQuoteWithCollateral(ctx, &untrusted.GetSgxQuoteWithCollateralRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return reply.GetQuote()
}

// firstCertificate returns the DER of the first PEM certificate in a
// quote's bytes (the PCK leaf of its certification data).
func firstCertificate(t *testing.T, quote []byte) []byte {
	t.Helper()
	i := bytes.Index(quote, []byte("-----BEGIN CERTIFICATE-----"))
	if i < 0 {
		t.Fatal("no PEM certificate in the quote")
	}
	block, _ := pem.Decode(quote[i:])
	if block == nil {
		t.Fatal("the quote's PEM certificate does not decode")
	}
	return block.Bytes
}

// truncatedQuote issues evidence whose quote stops after its body, so that
// no PCK certificate, and no replica id, can be read from it.
type truncatedQuote struct{ *attesttest.Attester }

func (a truncatedQuote) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	ev, err := a.Attester.Evidence(ctx, reportData)
	if err != nil {
		return nil, err
	}
	ev.Raw = ev.Raw[:48+384]
	return ev, nil
}

// A replica whose own evidence cannot give its id refuses signed requests
// with UNAVAILABLE, and does not issue a quote for each of them: concurrent
// requests share one issuance, and later ones within replicaRetry get the
// remembered failure.
func TestReceiptReplicaFailureRemembered(t *testing.T) {
	now := time.Now()
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	att := attesttest.NewAttester(pki, now)
	ts := testserver.StartHardware(t, truncatedQuote{att})
	b := connectLikeBlindAI(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := testserver.Model(t, "mlp.onnx")
	if _, _, _, err := b.upload(ctx, model, "mlp", false); err != nil {
		t.Fatal(err)
	}
	inputs := randomInputs(t, rand.New(rand.NewPCG(9, 10)), modelSpecs(t, ts.Runtime, model), 1)
	before, _ := att.Calls()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, _, _, err := b.run(ctx, "mlp", inputs, true)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "cannot") {
			t.Fatalf("signed run by a replica that cannot name itself: %v, want Unavailable", err)
		}
	}
	if _, _, _, err := b.run(ctx, "mlp", inputs, true); status.Code(err) != codes.Unavailable {
		t.Fatalf("later signed run: %v, want Unavailable", err)
	}
	if after, _ := att.Calls(); after-before != 1 {
		t.Fatalf("9 signed runs issued %d quotes, want 1", after-before)
	}
	// Unsigned runs need no receipt.
	if _, _, _, err := b.run(ctx, "mlp", inputs, false); err != nil {
		t.Fatalf("unsigned run: %v", err)
	}
}

// blockingAttester, once armed, holds every Evidence call until release
// is closed (or the call's context ends).
type blockingAttester struct {
	*attesttest.Attester
	armed   *atomic.Bool
	release chan struct{}
}

func (a blockingAttester) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if !a.armed.Load() {
		return a.Attester.Evidence(ctx, reportData)
	}
	select {
	case <-a.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return a.Attester.Evidence(ctx, reportData)
}

// waitingForReplicaID counts the server's goroutines inside replicaID.
func waitingForReplicaID() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "server.(*Server).replicaID(")
}

// A signed request waiting for another to learn the replica id gives up at
// its own deadline instead of staying until the other's evidence comes.
func TestReceiptReplicaWaitBoundedByDeadline(t *testing.T) {
	now := time.Now()
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	att := blockingAttester{attesttest.NewAttester(pki, now), new(atomic.Bool), make(chan struct{})}
	defer func() {
		select {
		case <-att.release:
		default:
			close(att.release)
		}
	}()
	ts := testserver.StartHardware(t, att) // ready: its first evidence passed
	att.armed.Store(true)
	b := connectLikeBlindAI(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := testserver.Model(t, "mlp.onnx")
	if _, _, _, err := b.upload(ctx, model, "mlp", false); err != nil {
		t.Fatal(err)
	}
	inputs := randomInputs(t, rand.New(rand.NewPCG(11, 12)), modelSpecs(t, ts.Runtime, model), 1)
	first := make(chan error, 1)
	go func() {
		_, _, _, err := b.run(ctx, "mlp", inputs, true)
		first <- err
	}()
	for waitingForReplicaID() == 0 { // the first request is issuing
		if ctx.Err() != nil {
			t.Fatal("the first signed request never asked for evidence")
		}
		time.Sleep(5 * time.Millisecond)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, _, _, err := b.run(short, "mlp", inputs, true); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("signed run waiting for another's evidence: %v, want DeadlineExceeded", err)
	}
	// Its handler has given up too: only the first request is left inside.
	deadline := time.Now().Add(5 * time.Second)
	for waitingForReplicaID() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := waitingForReplicaID(); n != 1 {
		t.Fatalf("%d requests inside replicaID once the second gave up, want 1 (the one issuing)", n)
	}
	close(att.release)
	if err := <-first; err != nil {
		t.Fatalf("the request that issued evidence: %v", err)
	}
}
