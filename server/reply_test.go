package server

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

// encodedReply puts the reply's segments together.
func encodedReply(r *runReply) []byte {
	var out []byte
	for _, p := range r.s.parts {
		out = append(out, p...)
	}
	return out
}

// generatedReply is what the generated code encodes for the same reply.
func generatedReply(t testing.TB, rp *securedexchange.RunModelPayload, issued *timestamppb.Timestamp, key ed25519.PrivateKey) []byte {
	t.Helper()
	det := proto.MarshalOptions{Deterministic: true}
	payload, err := det.Marshal(&securedexchange.Payload{
		Header:  &securedexchange.PayloadHeader{IssuedAt: issued},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: rp},
	})
	if err != nil {
		t.Fatal(err)
	}
	reply := &securedexchange.RunModelReply{Payload: payload}
	if key != nil {
		reply.Signature = ed25519.Sign(key, payload)
	}
	b, err := det.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handReply encodes the same reply with runReply.
func handReply(t testing.TB, rp *securedexchange.RunModelPayload, issued *timestamppb.Timestamp, key ed25519.PrivateKey) []byte {
	t.Helper()
	header, err := proto.MarshalOptions{Deterministic: true}.Marshal(&securedexchange.PayloadHeader{IssuedAt: issued})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := encodeOutputs(rp.OutputTensors)
	if err != nil {
		t.Fatal(err)
	}
	f := runPayloadFields{header: header, inputHash: rp.InputHash, modelID: rp.ModelId, inferenceTime: rp.InferenceTime, inferenceTimeNs: rp.InferenceTimeNs}
	var sign func([]byte) []byte
	if key != nil {
		sign = func(b []byte) []byte { return ed25519.Sign(key, b) }
	}
	r := newRunReply(f, segs, sign)
	got := encodedReply(r)
	if len(got) != r.size {
		t.Fatalf("size %d, encoded %d bytes", r.size, len(got))
	}
	if n := r.buffers().Len(); n != len(got) {
		t.Fatalf("buffers hold %d bytes, want %d", n, len(got))
	}
	return got
}

func randomRunPayload(r *rand.Rand) *securedexchange.RunModelPayload {
	rp := &securedexchange.RunModelPayload{}
	if r.IntN(2) == 0 {
		rp.InputHash = make([]byte, 32)
		for i := range rp.InputHash {
			rp.InputHash[i] = byte(r.Uint32())
		}
	}
	if r.IntN(4) != 0 {
		rp.ModelId = []string{"m", "résumé-名前", string(make([]byte, 300))}[r.IntN(3)]
	}
	for range r.IntN(4) {
		dims := make([]int32, r.IntN(4))
		for j := range dims {
			dims[j] = int32(r.IntN(70000)) - 1
		}
		data := make([]byte, []int{0, 1, 100, segmentInline - 1, segmentInline, 70000, 1 << 20}[r.IntN(7)])
		for j := range data {
			data[j] = byte(j * 7)
		}
		rp.OutputTensors = append(rp.OutputTensors, &securedexchange.TensorData{
			Info:      &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(r.IntN(13)), Index: int32(r.IntN(3)), IndexName: []string{"", "y", "logits"}[r.IntN(3)]},
			BytesData: data,
		})
	}
	if r.IntN(3) != 0 {
		rp.InferenceTime = uint64(r.IntN(1 << 20))
	}
	if r.IntN(4) != 0 {
		rp.InferenceTimeNs = r.Uint64() >> r.IntN(64)
	}
	return rp
}

// The hand-encoded reply is byte for byte what the generated code encodes,
// signed and unsigned.
func TestRunReplyMatchesGenerated(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		rp := randomRunPayload(r)
		issued := timestamppb.New(timestamppb.Now().AsTime().Add(-1e9 * time.Duration(r.IntN(1000))))
		for _, k := range []ed25519.PrivateKey{nil, key} {
			want := generatedReply(t, rp, issued, k)
			got := handReply(t, rp, issued, k)
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d (signed %v): hand-encoded reply differs from the generated code's (%d vs %d bytes)", i, k != nil, len(got), len(want))
			}
		}
	}
}

// Large outputs are referenced, not copied, in an unsigned reply; and each
// buffer is zeroed when gRPC frees it.
func TestRunReplyReferencesOutputs(t *testing.T) {
	data := bytes.Repeat([]byte{0xAB}, 1<<20)
	segs := []outputSegment{{info: []byte{8, 1}, data: data}}
	rr := newRunReply(runPayloadFields{modelID: "m"}, segs, nil)
	found := false
	for _, p := range rr.s.parts {
		if len(p) > 0 && &p[0] == &data[0] {
			found = true
		}
	}
	if !found {
		t.Fatal("the output buffer was copied, not referenced")
	}
	copied := 0
	for _, p := range rr.s.parts {
		if len(p) == 0 || &p[0] != &data[0] {
			copied += len(p)
		}
	}
	if copied > 64 {
		t.Fatalf("%d bytes copied for a 1 MiB output; want only the framing", copied)
	}
	bufs := rr.buffers()
	bufs.Free()
	if !bytes.Equal(data, make([]byte, len(data))) {
		t.Fatal("the output buffer was not zeroed when gRPC freed it")
	}
}

// FuzzRunReply holds the hand encoder to the generated code on fuzzed
// payloads.
func FuzzRunReply(f *testing.F) {
	f.Add(uint64(1), uint64(2), true)
	f.Add(uint64(7), uint64(9), false)
	_, key, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, a, b uint64, signed bool) {
		r := rand.New(rand.NewPCG(a, b))
		rp := randomRunPayload(r)
		issued := timestamppb.New(time.Unix(int64(a>>34), int64(b%1e9)))
		k := key
		if !signed {
			k = nil
		}
		if got, want := handReply(t, rp, issued, k), generatedReply(t, rp, issued, k); !bytes.Equal(got, want) {
			t.Fatalf("hand-encoded reply differs from the generated code's (%d vs %d bytes)", len(got), len(want))
		}
	})
}

// FuzzDecodeRunRequest holds the hand decoder to proto.Unmarshal on the
// same bytes: both fail, or both give equal messages.
func FuzzDecodeRunRequest(f *testing.F) {
	for _, m := range []*securedexchange.RunModelRequest{
		{},
		{ModelId: "m", Sign: true, InputTensors: []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1, 4}, IndexName: "x"}, BytesData: []byte{1, 2, 3, 4}}}},
		{InputTensors: []*securedexchange.TensorData{{}, {BytesData: make([]byte, 100)}}, ClientInfo: &securedexchange.ClientInfo{UserAgent: "blindai_python", UserAgentVersion: "0.5.0"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe, 0x12, 0x00, 0x22, 0x01, 0x80})                   // bytes, then bad UTF-8 model id
	f.Add([]byte{0x0a, 0x06, 0x0a, 0x02, 0x08, 0x01, 0x0a, 0x00, 0x0a, 0x02, 0x08, 0x02, 0x28, 0x07}) // infos to merge; unknown field
	f.Fuzz(func(t *testing.T, b []byte) {
		var want securedexchange.RunModelRequest
		werr := proto.Unmarshal(b, &want)
		var got securedexchange.RunModelRequest
		gerr := decodeRunRequest(bytes.Clone(b), &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v; hand decoder: %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(&want, &got) {
			t.Fatalf("messages differ:\ngenerated %v\nhand      %v", &want, &got)
		}
	})
}

// The hand decoder aliases tensor bytes into the message's buffer.
func TestDecodeRunRequestAliases(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 1<<16)
	b, _ := proto.Marshal(&securedexchange.RunModelRequest{ModelId: "m", InputTensors: []*securedexchange.TensorData{{BytesData: data}}})
	var m securedexchange.RunModelRequest
	if err := decodeRunRequest(b, &m); err != nil {
		t.Fatal(err)
	}
	got := m.InputTensors[0].BytesData
	if !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	if p := &got[0]; uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(&b[0])) || uintptr(unsafe.Pointer(p)) >= uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b)) {
		t.Fatal("bytes_data was copied, not aliased")
	}
}
