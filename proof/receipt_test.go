package proof

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/identity"
)

// receiptRun is a signed run with a receipt, from one identity, with the
// values the receipt binds.
type receiptRun struct {
	id        *identity.Attested
	modelHash []byte
	inputs    []*securedexchange.TensorData
	outputs   []*securedexchange.TensorData
	nonce     []byte
}

func newReceiptRun(t *testing.T) *receiptRun {
	t.Helper()
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	return &receiptRun{
		id:        id,
		modelHash: ModelHash([]byte("model bytes")),
		inputs:    []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{2}}, BytesData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
		outputs: []*securedexchange.TensorData{
			{Info: &securedexchange.TensorInfo{Dims: []int32{2, 2}, IndexName: "y", DatumType: securedexchange.DatumTypeEnum_F32}, BytesData: make([]byte, 16)},
			{Info: &securedexchange.TensorInfo{Dims: []int32{1}, IndexName: "label", Index: 1, DatumType: securedexchange.DatumTypeEnum_I64}, BytesData: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
		},
		nonce: []byte("a nonce the verifier chose"),
	}
}

// receipt returns the receipt the server makes for r, on replica id.
func (r *receiptRun) receipt(replica []byte, source string) *securedexchange.Receipt {
	return &securedexchange.Receipt{ModelHash: r.modelHash, OutputHash: OutputHash(r.outputs), Nonce: r.nonce, ReplicaId: replica, ReplicaSource: source}
}

// payload returns the signed payload bytes of r with receipt rc (nil: a
// BlindAI 0.5-shaped payload).
func (r *receiptRun) payload(t *testing.T, rc *securedexchange.Receipt) []byte {
	t.Helper()
	return mustMarshal(t, &securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.New(issued)},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: InputHash(r.inputs), ModelId: "m", OutputTensors: r.outputs, InferenceTime: 1, Receipt: rc,
		}},
	})
}

// fullOptions asks to check every binding of r.
func (r *receiptRun) fullOptions() VerifyOptions {
	return VerifyOptions{ModelID: "m", ModelHash: r.modelHash, InputHash: InputHash(r.inputs), OutputHash: OutputHash(r.outputs), RequestNonce: r.nonce}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}

func wantMismatch(t *testing.T, err error, field string) {
	t.Helper()
	var me *MismatchError
	if !errors.As(err, &me) || me.Field != field {
		t.Fatalf("error %v: want a *MismatchError for %s", err, field)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error %q does not name %s", err, field)
	}
}

func checked(res *Result) map[string]bool {
	m := map[string]bool{}
	for _, b := range res.Bindings {
		m[b.Name] = b.Checked
	}
	return m
}

// Each binding of a run receipt: the proof verifies when every expected
// value is right, and fails naming the binding when one is changed.
func TestReceiptBindingsSimulation(t *testing.T) {
	r := newReceiptRun(t)
	pay := r.payload(t, r.receipt([]byte("random replica"), verifier.ReplicaSimulation))
	p := NewSimulation(r.id.DER, pay, r.id.Sign(pay))
	opts := r.fullOptions()
	opts.AllowSimulation = true
	res, err := Verify(p, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got := checked(res)
	for _, name := range []string{BindModelID, BindModelHash, BindInputHash, BindOutputHash, BindNonce} {
		if !got[name] {
			t.Errorf("binding %s not checked: %+v", name, res.Bindings)
		}
	}
	if got[BindReplica] || got[BindTime] {
		t.Errorf("a simulation proof's replica, or any issued_at, reported as checked: %+v", res.Bindings)
	}
	if len(res.Bindings) != 7 || !proto.Equal(res.Receipt, r.receipt([]byte("random replica"), verifier.ReplicaSimulation)) {
		t.Fatalf("result bindings %+v, receipt %v", res.Bindings, res.Receipt)
	}

	reshaped := proto.Clone(r.outputs[0]).(*securedexchange.TensorData)
	reshaped.Info.Dims = []int32{4}
	renamed := proto.Clone(r.outputs[0]).(*securedexchange.TensorData)
	renamed.Info.IndexName = "z"
	retyped := proto.Clone(r.outputs[0]).(*securedexchange.TensorData)
	retyped.Info.DatumType = securedexchange.DatumTypeEnum_I32
	tests := []struct {
		field  string
		change func(o *VerifyOptions)
	}{
		{BindModelID, func(o *VerifyOptions) { o.ModelID = "other" }},
		{BindModelHash, func(o *VerifyOptions) { o.ModelHash = flip(o.ModelHash) }},
		{BindInputHash, func(o *VerifyOptions) { o.InputHash = flip(o.InputHash) }},
		{BindOutputHash, func(o *VerifyOptions) { o.OutputHash = flip(o.OutputHash) }},
		{BindOutputHash, func(o *VerifyOptions) {
			o.OutputHash = OutputHash([]*securedexchange.TensorData{reshaped, r.outputs[1]})
		}},
		{BindOutputHash, func(o *VerifyOptions) {
			o.OutputHash = OutputHash([]*securedexchange.TensorData{renamed, r.outputs[1]})
		}},
		{BindOutputHash, func(o *VerifyOptions) {
			o.OutputHash = OutputHash([]*securedexchange.TensorData{retyped, r.outputs[1]})
		}},
		{BindOutputHash, func(o *VerifyOptions) {
			o.OutputHash = OutputHash([]*securedexchange.TensorData{r.outputs[1], r.outputs[0]})
		}},
		{BindOutputHash, func(o *VerifyOptions) { o.OutputHash = OutputHash(r.outputs[:1]) }},
		{BindNonce, func(o *VerifyOptions) { o.RequestNonce = flip(o.RequestNonce) }},
		{BindNonce, func(o *VerifyOptions) { o.RequestNonce = o.RequestNonce[:5] }},
	}
	for _, tc := range tests {
		o := opts
		tc.change(&o)
		_, err := Verify(p, o)
		wantMismatch(t, err, tc.field)
	}
}

// A receipt that contradicts its own payload is refused even when the
// signature is good: the server signed something inconsistent.
func TestReceiptInconsistent(t *testing.T) {
	r := newReceiptRun(t)
	tests := []struct {
		name   string
		change func(rc *securedexchange.Receipt)
		field  string // "": ErrBadReceipt
	}{
		{"output hash of other outputs", func(rc *securedexchange.Receipt) { rc.OutputHash = flip(rc.OutputHash) }, BindOutputHash},
		{"output hash missing", func(rc *securedexchange.Receipt) { rc.OutputHash = nil }, BindOutputHash},
		{"model hash short", func(rc *securedexchange.Receipt) { rc.ModelHash = rc.ModelHash[:31] }, ""},
		{"nonce too long", func(rc *securedexchange.Receipt) { rc.Nonce = make([]byte, attest.MaxNonceBytes+1) }, ""},
		{"replica id too long", func(rc *securedexchange.Receipt) { rc.ReplicaId = make([]byte, 65) }, ""},
		{"unknown replica source", func(rc *securedexchange.Receipt) { rc.ReplicaSource = "\x1b[2Jsgx" }, ""},
		{"replica source without id", func(rc *securedexchange.Receipt) { rc.ReplicaId = nil }, ""},
		{"replica id without source", func(rc *securedexchange.Receipt) { rc.ReplicaSource = "" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := r.receipt([]byte("x"), verifier.ReplicaSimulation)
			tc.change(rc)
			pay := r.payload(t, rc)
			_, err := Verify(NewSimulation(r.id.DER, pay, r.id.Sign(pay)), VerifyOptions{AllowSimulation: true})
			if tc.field == "" {
				if !errors.Is(err, ErrBadReceipt) {
					t.Fatalf("error %v, want ErrBadReceipt", err)
				}
				return
			}
			wantMismatch(t, err, tc.field)
		})
	}
	// An upload's receipt carries no model or output hash.
	sendPay := mustMarshal(t, &securedexchange.Payload{Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
		ModelHash: r.modelHash, ModelId: "m", Receipt: &securedexchange.Receipt{ModelHash: r.modelHash},
	}}})
	if _, err := Verify(NewSimulation(r.id.DER, sendPay, r.id.Sign(sendPay)), VerifyOptions{AllowSimulation: true}); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("upload receipt with a model hash: %v, want ErrBadReceipt", err)
	}
}

// A BlindAI 0.5-shaped payload (no receipt) still verifies, binds its
// outputs through the payload itself, and a binding only a receipt
// carries fails when asked for, naming it.
func TestNoReceipt(t *testing.T) {
	r := newReceiptRun(t)
	pay := r.payload(t, nil)
	p := NewSimulation(r.id.DER, pay, r.id.Sign(pay))
	base := VerifyOptions{AllowSimulation: true, ModelID: "m", InputHash: InputHash(r.inputs), OutputHash: OutputHash(r.outputs)}
	res, err := Verify(p, base)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Receipt != nil || !checked(res)[BindOutputHash] || checked(res)[BindNonce] || checked(res)[BindModelHash] {
		t.Fatalf("receipt %v, bindings %+v", res.Receipt, res.Bindings)
	}
	for _, b := range res.Bindings {
		if b.Name == BindReplica && !strings.Contains(b.Note, "no receipt") {
			t.Fatalf("replica note %q does not say there is no receipt", b.Note)
		}
	}
	o := base
	o.ModelHash = r.modelHash
	_, err = Verify(p, o)
	wantMismatch(t, err, BindModelHash)
	if !strings.Contains(err.Error(), "no receipt") {
		t.Fatalf("error %q does not say the proof has no receipt", err)
	}
	o = base
	o.RequestNonce = r.nonce
	_, err = Verify(p, o)
	wantMismatch(t, err, BindNonce)

	// The same bytes decode with the generated code: the receipt is an
	// extension that BlindAI 0.5 readers skip.
	var gen securedexchange.Payload
	full := r.payload(t, r.receipt([]byte("x"), "simulation"))
	if err := proto.Unmarshal(full, &gen); err != nil || gen.GetRunModelPayload().GetReceipt() == nil {
		t.Fatalf("generated code: %v, %v", err, gen.GetRunModelPayload().GetReceipt())
	}
}

// The receipt's replica id is checked against the proof's own hardware
// evidence: a receipt of another platform or without a replica fails; one
// of replica B with the evidence of replica A (a cluster) verifies with
// the replica not checked, or fails when the replica is required.
func TestReceiptReplicaHardware(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiptRun(t)
	b := sgxtest.NewBuilder(pki, now)
	b.ReportBody.ReportData = attest.ReportData(r.id.DER, nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	att := &untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: sgx.CollateralToProto(ev.Collateral), EnclaveHeldData: r.id.DER}
	// The replica id is the SHA-256 of the PCK certificate the quote
	// carries, as the test PKI issued it.
	pck := sha256.Sum256(ev.PCK.Raw)
	id, source, err := verifier.ReplicaID(&attest.Evidence{Type: attest.TypeSGXDCAP, Raw: ev.Quote})
	if err != nil || !bytes.Equal(id, pck[:]) || source != verifier.ReplicaSGXPCK {
		t.Fatalf("ReplicaID = %x, %q, %v; want %x", id, source, err, pck)
	}
	opts := r.fullOptions()
	opts.Policy, opts.Now, opts.TestRoot = anyPolicy(t), func() time.Time { return now }, pki.Root

	sign := func(rc *securedexchange.Receipt) *prooffiles.ResponseProof {
		pay := r.payload(t, rc)
		return New(att, pay, r.id.Sign(pay))
	}
	res, err := Verify(sign(r.receipt(id, source)), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !checked(res)[BindReplica] {
		t.Fatalf("replica not checked: %+v", res.Bindings)
	}
	// Every option-driven binding also fails on hardware proofs.
	for field, change := range map[string]func(*VerifyOptions){
		BindModelHash:  func(o *VerifyOptions) { o.ModelHash = flip(o.ModelHash) },
		BindInputHash:  func(o *VerifyOptions) { o.InputHash = flip(o.InputHash) },
		BindOutputHash: func(o *VerifyOptions) { o.OutputHash = flip(o.OutputHash) },
		BindNonce:      func(o *VerifyOptions) { o.RequestNonce = flip(o.RequestNonce) },
	} {
		o := opts
		change(&o)
		_, err := Verify(sign(r.receipt(id, source)), o)
		wantMismatch(t, err, field)
	}

	other := sha256.Sum256([]byte("the PCK certificate of another machine"))
	// Another replica of the same platform (a cluster): verifies, with the
	// replica reported as not checked, unless the replica is required.
	res, err = Verify(sign(r.receipt(other[:], source)), VerifyOptions{Policy: opts.Policy, Now: opts.Now, TestRoot: opts.TestRoot})
	if err != nil || checked(res)[BindReplica] {
		t.Fatalf("another replica of the same platform: %v, bindings %+v; want verified with the replica not checked", err, res)
	}
	_, err = Verify(sign(r.receipt(other[:], source)), VerifyOptions{Policy: opts.Policy, Now: opts.Now, TestRoot: opts.TestRoot, RequireReplica: true})
	wantMismatch(t, err, BindReplica)
	for name, rc := range map[string]*securedexchange.Receipt{
		"no replica":            r.receipt(nil, ""),
		"same id, other source": r.receipt(id, verifier.ReplicaTDXPCK),
		"simulation replica":    r.receipt([]byte("random"), verifier.ReplicaSimulation),
	} {
		// Even with no binding asked for.
		_, err := Verify(sign(rc), VerifyOptions{Policy: opts.Policy, Now: opts.Now, TestRoot: opts.TestRoot})
		if err == nil {
			t.Fatalf("%s: verified", name)
		}
		wantMismatch(t, err, BindReplica)
	}
}

// OutputHash follows its documented definition.
func TestOutputHashDefinition(t *testing.T) {
	outs := []*securedexchange.TensorData{
		{Info: &securedexchange.TensorInfo{IndexName: "y", DatumType: securedexchange.DatumTypeEnum_UNKNOWN, Dims: []int32{2, -1}}, BytesData: []byte{9, 8}},
		{},
	}
	want := []byte{
		0, 0, 0, 2, // outputs
		0, 0, 0, 1, 'y', // name
		0xff, 0xff, 0xff, 0xff, // datum_type -1
		0, 0, 0, 2, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, // dims
		0, 0, 0, 0, 0, 0, 0, 2, 9, 8, // bytes
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // empty output
	}
	sum := sha256.Sum256(want)
	if got := OutputHash(outs); !bytes.Equal(got, sum[:]) {
		t.Fatalf("OutputHash = %x, want %x", got, sum)
	}
}
