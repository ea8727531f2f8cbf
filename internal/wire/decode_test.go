package wire

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

// same checks that the hand decoder and proto.Unmarshal agree on b: both
// fail, or both give equal messages.
func same[M proto.Message](t *testing.T, b []byte, newM func() M, hand func([]byte, M) error) {
	t.Helper()
	want, got := newM(), newM()
	werr := proto.Unmarshal(b, want)
	gerr := hand(bytes.Clone(b), got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("proto.Unmarshal: %v; hand decoder: %v", werr, gerr)
	}
	if werr == nil && !proto.Equal(want, got) {
		t.Fatalf("messages differ:\ngenerated %v\nhand      %v", want, got)
	}
}

func seeds(f *testing.F, msgs ...proto.Message) {
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe, 0x12, 0x00, 0x22, 0x01, 0x80})
	f.Add([]byte{0x0a, 0x06, 0x0a, 0x02, 0x08, 0x01, 0x0a, 0x00, 0x0a, 0x02, 0x08, 0x02, 0x28, 0x07})
	f.Add([]byte("\x8a\xff\x00\x00"))
	f.Add([]byte("\x98\xf8\xf8\xf80\xf8\xf80"))
}

var tensor1 = &securedexchange.TensorData{Info: &securedexchange.TensorInfo{Dims: []int32{1, 4}, IndexName: "x", DatumType: 3}, BytesData: []byte{1, 2, 3, 4}}

func FuzzDecodeRunRequest(f *testing.F) {
	seeds(f, &securedexchange.RunModelRequest{},
		&securedexchange.RunModelRequest{ModelId: "m", Sign: true, InputTensors: []*securedexchange.TensorData{tensor1}},
		&securedexchange.RunModelRequest{InputTensors: []*securedexchange.TensorData{{}, {BytesData: make([]byte, 100)}}, ClientInfo: &securedexchange.ClientInfo{UserAgent: "blindai_python"}})
	f.Fuzz(func(t *testing.T, b []byte) {
		same(t, b, func() *securedexchange.RunModelRequest { return &securedexchange.RunModelRequest{} }, DecodeRunRequest)
	})
}

func FuzzDecodeRunReply(f *testing.F) {
	seeds(f, &securedexchange.RunModelReply{Payload: []byte("p"), Signature: make([]byte, 64)})
	f.Fuzz(func(t *testing.T, b []byte) {
		same(t, b, func() *securedexchange.RunModelReply { return &securedexchange.RunModelReply{} }, DecodeRunReply)
	})
}

func FuzzDecodePayload(f *testing.F) {
	seeds(f,
		&securedexchange.Payload{Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}, Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: make([]byte, 32), ModelId: "m", OutputTensors: []*securedexchange.TensorData{tensor1, {}}, InferenceTime: 3, InferenceTimeNs: 3000000,
			Receipt: &securedexchange.Receipt{ModelHash: make([]byte, 32), OutputHash: make([]byte, 32), Nonce: []byte("n"), ReplicaId: make([]byte, 32), ReplicaSource: "sgx-pck-sha256"}}}},
		&securedexchange.Payload{Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{Receipt: &securedexchange.Receipt{}}}},
		&securedexchange.Payload{Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{ModelHash: make([]byte, 32), ModelId: "m",
			TensorInputs: []*securedexchange.TensorInfo{tensor1.Info}}}})
	// Both members of the oneof, in both orders, and a member twice.
	f.Add([]byte{0x1a, 0x02, 0x20, 0x01, 0x12, 0x02, 0x22, 0x00, 0x1a, 0x03, 0x12, 0x01, 0x6d})
	f.Add([]byte{0x1a, 0x02, 0x20, 0x01, 0x1a, 0x04, 0x12, 0x01, 0x6d, 0x38, 0x1a, 0x02, 0x28, 0x07})
	// A receipt twice (the second merges into the first), and field 101
	// with the wrong wire type (kept as an unknown field).
	f.Add([]byte{0x1a, 0x0f, 0xaa, 0x06, 0x03, 0x1a, 0x01, 0x6e, 0xaa, 0x06, 0x03, 0x2a, 0x01, 0x73, 0xa8, 0x06, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		same(t, b, func() *securedexchange.Payload { return &securedexchange.Payload{} }, DecodePayload)
	})
}

func within(p, b []byte) bool {
	s := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	x := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return x >= s && x < s+uintptr(len(b))
}

// Tensor bytes alias the message's buffer in every decoder.
func TestDecodersAlias(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 1<<16)
	td := &securedexchange.TensorData{Info: tensor1.Info, BytesData: data}
	req, _ := proto.Marshal(&securedexchange.RunModelRequest{ModelId: "m", InputTensors: []*securedexchange.TensorData{td}})
	var m securedexchange.RunModelRequest
	if err := DecodeRunRequest(req, &m); err != nil || !bytes.Equal(m.InputTensors[0].BytesData, data) || !within(m.InputTensors[0].BytesData, req) {
		t.Fatalf("request: %v; tensor bytes not aliased", err)
	}
	payload, _ := proto.Marshal(&securedexchange.Payload{Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{OutputTensors: []*securedexchange.TensorData{td}}}})
	reply, _ := proto.Marshal(&securedexchange.RunModelReply{Payload: payload, Signature: make([]byte, 64)})
	var r securedexchange.RunModelReply
	if err := DecodeRunReply(reply, &r); err != nil || !within(r.Payload, reply) || !within(r.Signature, reply) {
		t.Fatalf("reply: %v; payload not aliased", err)
	}
	var p securedexchange.Payload
	if err := DecodePayload(r.Payload, &p); err != nil {
		t.Fatal(err)
	}
	out := p.GetRunModelPayload().GetOutputTensors()[0].BytesData
	if !bytes.Equal(out, data) || !within(out, reply) {
		t.Fatal("payload: output bytes not aliased")
	}
	if cap(out) != len(out) {
		t.Fatal("an aliased field's capacity reaches past it")
	}
}
