package proof

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/identity"
)

var issued = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a signed run and a signed send from one attested identity.
type fixture struct {
	id      *identity.Attested
	inputs  []*securedexchange.TensorData
	inHash  []byte
	model   []byte
	run     *prooffiles.ResponseProof
	send    *prooffiles.ResponseProof
	unsign  *prooffiles.ResponseProof // payload with an empty signature
	runPay  []byte
	sendPay []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{id: id, model: []byte("not really onnx, but bytes")}
	f.inputs = []*securedexchange.TensorData{
		{Info: &securedexchange.TensorInfo{Dims: []int32{2}, Index: 0}, BytesData: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Info: &securedexchange.TensorInfo{Dims: []int32{2}, Index: 0}, BytesData: []byte{9, 10}},
		{Info: &securedexchange.TensorInfo{Dims: []int32{1}, Index: 1}, BytesData: []byte{11}},
	}
	f.inHash = InputHash(f.inputs)
	f.runPay = mustMarshal(t, &securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.New(issued)},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: f.inHash, ModelId: "m1",
			OutputTensors: []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1}, IndexName: "y"}, BytesData: []byte{0, 0, 0x80, 0x3f}}},
		}},
	})
	f.sendPay = mustMarshal(t, &securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.New(issued)},
		Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
			ModelHash: ModelHash(f.model), ModelId: "m1",
		}},
	})
	f.run = NewSimulation(id.DER, f.runPay, id.Sign(f.runPay))
	f.send = NewSimulation(id.DER, f.sendPay, id.Sign(f.sendPay))
	f.unsign = NewSimulation(id.DER, f.runPay, nil)
	return f
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clone(p *prooffiles.ResponseProof) *prooffiles.ResponseProof {
	return proto.Clone(p).(*prooffiles.ResponseProof)
}

func TestHashes(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	if !bytes.Equal(ModelHash([]byte("abc")), sum[:]) {
		t.Fatal("ModelHash is not SHA-256")
	}
	inputs := []*securedexchange.TensorData{{BytesData: []byte("a")}, {BytesData: []byte("bc")}, {}}
	if !bytes.Equal(InputHash(inputs), sum[:]) {
		t.Fatal("InputHash is not SHA-256 over the concatenated bytes_data")
	}
	h := NewInputHasher()
	h.Write([]byte("ab"))
	h.Write([]byte("c"))
	if !bytes.Equal(h.Sum(), sum[:]) {
		t.Fatal("InputHasher disagrees with SHA-256")
	}
	if bytes.Equal(InputHash(inputs[1:]), sum[:]) {
		t.Fatal("InputHash ignores an input")
	}
}

func TestVerifySignature(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	msg := []byte("payload")
	sig := ed25519.Sign(key, msg)
	tests := []struct {
		name    string
		pub     ed25519.PublicKey
		msg     []byte
		sig     []byte
		wantErr bool
		isBad   bool
	}{
		{"valid", pub, msg, sig, false, false},
		{"other message", pub, []byte("payloaD"), sig, true, true},
		{"empty signature", pub, msg, nil, true, true},
		{"short signature", pub, msg, sig[:63], true, true},
		{"short key", pub[:31], msg, sig, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.pub, tc.msg, tc.sig)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrBadSignature) != tc.isBad {
				t.Fatalf("errors.Is(%v, ErrBadSignature) = %v", err, !tc.isBad)
			}
		})
	}
}

func TestVerifyValid(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		p     *prooffiles.ResponseProof
		opts  VerifyOptions
		kind  Kind
		mHash []byte
		iHash []byte
	}{
		{"run", f.run, VerifyOptions{AllowSimulation: true, InputHash: f.inHash, ModelID: "m1"}, KindRunModel, nil, f.inHash},
		{"run, cert given too", f.run, VerifyOptions{AllowSimulation: true, SimulationCertificate: f.id.DER}, KindRunModel, nil, f.inHash},
		{"send", f.send, VerifyOptions{AllowSimulation: true, ModelHash: ModelHash(f.model), ModelID: "m1"}, KindSendModel, ModelHash(f.model), nil},
		{"BlindAI-style: no attestation, cert from options",
			&prooffiles.ResponseProof{Payload: f.runPay, Signature: f.id.Sign(f.runPay)},
			VerifyOptions{AllowSimulation: true, SimulationCertificate: f.id.DER}, KindRunModel, nil, f.inHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.p, tc.opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Kind != tc.kind || res.ModelID != "m1" || !res.Simulation ||
				!bytes.Equal(res.ModelHash, tc.mHash) || !bytes.Equal(res.InputHash, tc.iHash) ||
				!res.IssuedAt.Equal(issued) || !bytes.Equal(res.Certificate, f.id.DER) ||
				!bytes.Equal(res.SigningKey, f.id.SigningPublicKey()) {
				t.Fatalf("unexpected result %+v", res)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	other, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	allow := VerifyOptions{AllowSimulation: true}
	withQuote := clone(f.run)
	withQuote.Attestation.Quote = []byte{3, 0, 2, 0}
	otherKey := NewSimulation(other.DER, f.runPay, f.id.Sign(f.runPay))
	notPayload := NewSimulation(f.id.DER, []byte{0xff, 0xff}, f.id.Sign([]byte{0xff, 0xff}))
	emptyPayload := NewSimulation(f.id.DER, []byte{}, f.id.Sign([]byte{}))
	tests := []struct {
		name     string
		p        *prooffiles.ResponseProof
		opts     VerifyOptions
		is       error
		mismatch string
	}{
		{"simulation without opt-in", f.run, VerifyOptions{}, ErrSimulationProof, ""},
		{"hardware evidence without a policy", withQuote, allow, ErrNoPolicy, ""},
		{"hardware evidence without a policy, simulation allowed", withQuote, VerifyOptions{AllowSimulation: true, SimulationCertificate: f.id.DER}, ErrNoPolicy, ""},
		{"malformed hardware evidence", withQuote, VerifyOptions{Policy: anyPolicy(t)}, ErrBadEvidence, ""},
		{"no certificate anywhere", &prooffiles.ResponseProof{Payload: f.runPay, Signature: f.id.Sign(f.runPay)}, allow, ErrNoCertificate, ""},
		{"certificate differs from expected", f.run, VerifyOptions{AllowSimulation: true, SimulationCertificate: other.DER}, ErrCertificateMismatch, ""},
		{"signed by another key", otherKey, allow, ErrBadSignature, ""},
		{"unsigned", f.unsign, allow, ErrBadSignature, ""},
		{"garbage payload", notPayload, allow, ErrMalformedPayload, ""},
		{"empty payload", emptyPayload, allow, ErrMalformedPayload, ""},
		{"wrong model id", f.run, VerifyOptions{AllowSimulation: true, ModelID: "m2"}, nil, "model_id"},
		{"changed input", f.run, VerifyOptions{AllowSimulation: true, InputHash: InputHash(append(f.inputs[:2:2], &securedexchange.TensorData{BytesData: []byte{12}}))}, nil, "input_hash"},
		{"reordered input", f.run, VerifyOptions{AllowSimulation: true, InputHash: InputHash([]*securedexchange.TensorData{f.inputs[2], f.inputs[0], f.inputs[1]})}, nil, "input_hash"},
		{"wrong model hash", f.send, VerifyOptions{AllowSimulation: true, ModelHash: ModelHash([]byte("other"))}, nil, "model_hash"},
		{"model hash asked of a run proof", f.run, VerifyOptions{AllowSimulation: true, ModelHash: ModelHash(f.model)}, nil, "model_hash"},
		{"input hash asked of a send proof", f.send, VerifyOptions{AllowSimulation: true, InputHash: f.inHash}, nil, "input_hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.p, tc.opts)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", res)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			if tc.mismatch != "" {
				var me *MismatchError
				if !errors.As(err, &me) || me.Field != tc.mismatch {
					t.Fatalf("error %v is not a mismatch of %s", err, tc.mismatch)
				}
			}
		})
	}
}

// Flipping any single byte of the payload or the signature must fail.
func TestVerifyEveryByteFlip(t *testing.T) {
	f := newFixture(t)
	opts := VerifyOptions{AllowSimulation: true, InputHash: f.inHash, ModelID: "m1"}
	for _, field := range []string{"payload", "signature"} {
		n := len(f.run.Payload)
		if field == "signature" {
			n = len(f.run.Signature)
		}
		for i := 0; i < n; i++ {
			p := clone(f.run)
			if field == "payload" {
				p.Payload[i] ^= 0x01
			} else {
				p.Signature[i] ^= 0x80
			}
			if _, err := Verify(p, opts); err == nil {
				t.Fatalf("%s byte %d flipped: proof still verifies", field, i)
			} else if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("%s byte %d flipped: error %v is not ErrBadSignature", field, i, err)
			}
		}
	}
	if _, err := Verify(f.run, opts); err != nil {
		t.Fatalf("the original no longer verifies: %v", err)
	}
}

func TestFileRoundTrip(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		p    *prooffiles.ResponseProof
	}{
		{"simulation run", f.run},
		{"simulation send", f.send},
		{"hardware-shaped", New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: []byte{1, 2}, Collateral: &untrusted.SgxCollateral{Version: 3, TcbInfo: "{}"}, EnclaveHeldData: f.id.DER}, f.runPay, f.id.Sign(f.runPay))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".proof")
			if err := WriteFile(path, tc.p); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.p) {
				t.Fatalf("read back %v, wrote %v", got, tc.p)
			}
			raw, _ := os.ReadFile(path)
			direct, err := Unmarshal(raw)
			if err != nil || !proto.Equal(direct, tc.p) {
				t.Fatalf("Unmarshal of the file: %v", err)
			}
		})
	}
	// The saved simulation proof verifies from the file alone.
	got, err := ReadFile(filepath.Join(dir, "simulation run.proof"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(got, VerifyOptions{AllowSimulation: true, InputHash: f.inHash}); err != nil {
		t.Fatal(err)
	}
}

func TestReadFileRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
	}{
		{"not protobuf", []byte{0xff, 0xff, 0xff}},
		{"empty file", nil},
		{"no payload", mustMarshal(t, &prooffiles.ResponseProof{Signature: []byte{1}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if p, err := ReadFile(path); err == nil {
				t.Fatalf("ReadFile accepted %v", p)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindSendModel: "send_model", KindRunModel: "run_model", Kind(9): "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}
