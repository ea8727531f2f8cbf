//go:build cgo

package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestHardwareReceipts runs signed requests with a request nonce against
// a hardware-mode server and verifies the proofs offline: every binding is
// checked, the replica against the proof's own evidence; changing any one
// expected value, or pairing a receipt with evidence of another platform,
// fails naming the binding.
func TestHardwareReceipts(t *testing.T) {
	srv, att := hardwareServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := hwConnect(ctx, t, srv, att)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	model := testserver.Model(t, "mlp.onnx")
	nonce := []byte("verifier's nonce")
	up, err := c.UploadModel(ctx, model, client.WithModelID("mlp"), client.Sign(), client.WithRequestNonce(nonce))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	x, err := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, "mlp", []tensor.Tensor{x}, client.Sign(), client.WithRequestNonce(nonce))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	dir := t.TempDir()
	runProof, sendProof := filepath.Join(dir, "run.proof"), filepath.Join(dir, "send.proof")
	if err := res.SaveProof(runProof); err != nil {
		t.Fatal(err)
	}
	if err := up.SaveProof(sendProof); err != nil {
		t.Fatal(err)
	}
	rp := res.Payload.GetRunModelPayload()
	opts := proof.VerifyOptions{
		Policy: attesttest.Policy(attesttest.MREnclave()), Now: func() time.Time { return hwNow }, TestRoot: att.PKI.Root,
		ModelID: "mlp", ModelHash: proof.ModelHash(model), InputHash: res.InputHash, OutputHash: proof.OutputHash(rp.GetOutputTensors()), RequestNonce: nonce,
	}
	for _, file := range []string{runProof, sendProof} {
		p, err := proof.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		if file == sendProof {
			o.InputHash, o.OutputHash = nil, nil
		}
		r, err := proof.Verify(p, o)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// The replica is the platform of the evidence the client verified
		// at Connect: SHA-256 of its PCK certificate.
		ev, _, err := proof.Evidence(p)
		if err != nil {
			t.Fatal(err)
		}
		id, source, err := verifier.ReplicaID(ev)
		if err != nil || source != verifier.ReplicaSGXPCK || !bytes.Equal(r.Receipt.GetReplicaId(), id) {
			t.Fatalf("%s: receipt replica %x, evidence's %x (%v)", file, r.Receipt.GetReplicaId(), id, err)
		}
		for _, b := range r.Bindings {
			want := b.Name != proof.BindTime && !(file == sendProof && (b.Name == proof.BindInputHash || b.Name == proof.BindOutputHash))
			if b.Checked != want {
				t.Errorf("%s: binding %s checked %v, want %v (%s)", file, b.Name, b.Checked, want, b.Note)
			}
		}
	}

	p, err := proof.ReadFile(runProof)
	if err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("another input"))
	for field, change := range map[string]func(o *proof.VerifyOptions){
		proof.BindModelHash:  func(o *proof.VerifyOptions) { o.ModelHash = proof.ModelHash(testserver.Model(t, "cnn.onnx")) },
		proof.BindInputHash:  func(o *proof.VerifyOptions) { o.InputHash = other[:] },
		proof.BindOutputHash: func(o *proof.VerifyOptions) { o.OutputHash = other[:] },
		proof.BindNonce:      func(o *proof.VerifyOptions) { o.RequestNonce = []byte("replayed") },
	} {
		o := opts
		change(&o)
		_, err := proof.Verify(p, o)
		var me *proof.MismatchError
		if !errors.As(err, &me) || me.Field != field {
			t.Errorf("%s changed: %v, want a mismatch of %s", field, err, field)
		}
	}

	// The test TEE issues a new PCK certificate with each evidence, so to
	// a verifier each evidence is another platform. A second connection
	// makes the server learn the second one; a run on the first connection
	// then carries a receipt of "replica B" while its proof holds the
	// evidence of "replica A" (asked again over the attested connection,
	// the server names yet another platform, so the client cannot find B's).
	c2, err := hwConnect(ctx, t, srv, att)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	res, err = c.Run(ctx, "mlp", []tensor.Tensor{x}, client.Sign())
	if err != nil {
		t.Fatal(err)
	}
	// By default such a proof verifies (a replica holding the same key
	// served it), with the replica not checked; required, it fails.
	v, err := proof.Verify(res.Proof(), proof.VerifyOptions{Policy: opts.Policy, Now: opts.Now, TestRoot: opts.TestRoot})
	if err != nil {
		t.Fatalf("receipt of another replica: %v, want verified with the replica not checked", err)
	}
	for _, b := range v.Bindings {
		if b.Name == proof.BindReplica && b.Checked {
			t.Fatalf("receipt of another replica: the replica is reported checked: %+v", b)
		}
	}
	_, err = proof.Verify(res.Proof(), proof.VerifyOptions{Policy: opts.Policy, Now: opts.Now, TestRoot: opts.TestRoot, RequireReplica: true})
	var me *proof.MismatchError
	if !errors.As(err, &me) || me.Field != proof.BindReplica {
		t.Fatalf("receipt of another replica, replica required: %v, want a mismatch of %s", err, proof.BindReplica)
	}
}

// A request nonce reaches the server and comes back in the signed
// receipt; a nonce of the wrong size is refused before anything is sent.
func TestRequestNonceChecked(t *testing.T) {
	srv := testserver.Start(t)
	c := connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.UploadModel(ctx, testserver.Model(t, "mlp.onnx"), client.WithModelID("mlp")); err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if _, err := c.Run(ctx, "mlp", []tensor.Tensor{x}, client.Sign(), client.WithRequestNonce(make([]byte, 65))); err == nil {
		t.Fatal("a 65-byte request nonce was accepted")
	}
	if _, err := c.Run(ctx, "mlp", []tensor.Tensor{x}, client.Sign(), client.WithRequestNonce([]byte{})); err == nil {
		t.Fatal("an empty request nonce was accepted (as none)")
	}
	res, err := c.Run(ctx, "mlp", []tensor.Tensor{x}, client.Sign(), client.WithRequestNonce([]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Payload.GetRunModelPayload().GetReceipt().GetNonce(); !bytes.Equal(got, []byte{1}) {
		t.Fatalf("receipt nonce %x", got)
	}
}
