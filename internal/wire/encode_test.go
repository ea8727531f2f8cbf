package wire

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

// generatedReply is what the generated code encodes for a reply.
func generatedReply(t testing.TB, header *securedexchange.PayloadHeader, rp *securedexchange.RunModelPayload, key ed25519.PrivateKey) []byte {
	t.Helper()
	payload, err := deterministic.Marshal(&securedexchange.Payload{Header: header, Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: rp}})
	if err != nil {
		t.Fatal(err)
	}
	reply := &securedexchange.RunModelReply{Payload: payload}
	if key != nil {
		reply.Signature = ed25519.Sign(key, payload)
	}
	b, err := deterministic.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func handReply(t testing.TB, header *securedexchange.PayloadHeader, rp *securedexchange.RunModelPayload, key ed25519.PrivateKey) []byte {
	t.Helper()
	f := RunPayload{Header: header, InputHash: rp.InputHash, ModelID: rp.ModelId, InferenceTime: rp.InferenceTime, InferenceTimeNs: rp.InferenceTimeNs, Receipt: rp.Receipt}
	var sign func([]byte) []byte
	if key != nil {
		sign = func(b []byte) []byte { return ed25519.Sign(key, b) }
	}
	e, psize, err := RunReply(f, rp.OutputTensors, sign)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Bytes()
	if len(got) != e.Len() {
		t.Fatalf("Len %d, encoded %d bytes", e.Len(), len(got))
	}
	var r securedexchange.RunModelReply
	if err := proto.Unmarshal(got, &r); err != nil || len(r.Payload) != psize {
		t.Fatalf("payload size %d, reported %d (%v)", len(r.Payload), psize, err)
	}
	if n := e.Buffers().Len(); n != len(got) {
		t.Fatalf("buffers hold %d bytes, want %d", n, len(got))
	}
	return got
}

func randomTensors(r *rand.Rand, sizes []int) []*securedexchange.TensorData {
	var out []*securedexchange.TensorData
	for range r.IntN(4) {
		dims := make([]int32, r.IntN(4))
		for j := range dims {
			dims[j] = int32(r.IntN(70000)) - 1
		}
		data := make([]byte, sizes[r.IntN(len(sizes))])
		for j := range data {
			data[j] = byte(j * 7)
		}
		td := &securedexchange.TensorData{BytesData: data}
		if r.IntN(8) != 0 {
			td.Info = &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(r.IntN(13)), Index: int32(r.IntN(3)), IndexName: []string{"", "y", "logits"}[r.IntN(3)]}
		}
		out = append(out, td)
	}
	return out
}

func randomBytes(r *rand.Rand, n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var sizes = []int{0, 1, 100, InlineBelow - 1, InlineBelow, 70000, 1 << 20}

func randomRun(r *rand.Rand) (*securedexchange.PayloadHeader, *securedexchange.RunModelPayload) {
	rp := &securedexchange.RunModelPayload{OutputTensors: randomTensors(r, sizes)}
	if r.IntN(2) == 0 {
		rp.InputHash = make([]byte, 32)
		for i := range rp.InputHash {
			rp.InputHash[i] = byte(r.Uint32())
		}
	}
	if r.IntN(4) != 0 {
		rp.ModelId = []string{"m", "résumé-名前", string(make([]byte, 300))}[r.IntN(3)]
	}
	if r.IntN(3) != 0 {
		rp.InferenceTime = uint64(r.IntN(1 << 20))
	}
	if r.IntN(4) != 0 {
		rp.InferenceTimeNs = r.Uint64() >> r.IntN(64)
	}
	switch r.IntN(4) {
	case 1:
		rp.Receipt = &securedexchange.Receipt{} // present, empty
	case 2, 3:
		rp.Receipt = &securedexchange.Receipt{
			ModelHash: randomBytes(r, 32), OutputHash: randomBytes(r, 32), Nonce: randomBytes(r, r.IntN(65)),
			ReplicaId: randomBytes(r, []int{0, 16, 32, 64}[r.IntN(4)]), ReplicaSource: []string{"", "sgx-pck-sha256", "simulation"}[r.IntN(3)],
		}
	}
	var h *securedexchange.PayloadHeader
	switch r.IntN(3) {
	case 1:
		h = &securedexchange.PayloadHeader{}
	case 2:
		h = &securedexchange.PayloadHeader{IssuedAt: timestamppb.New(time.Unix(r.Int64N(1<<33), r.Int64N(1e9)))}
	}
	return h, rp
}

// The hand-encoded reply is byte for byte what the generated code encodes,
// signed and unsigned.
func TestRunReplyMatchesGenerated(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		h, rp := randomRun(r)
		for _, k := range []ed25519.PrivateKey{nil, key} {
			if got, want := handReply(t, h, rp, k), generatedReply(t, h, rp, k); !bytes.Equal(got, want) {
				t.Fatalf("case %d (signed %v): hand-encoded reply differs from the generated code's (%d vs %d bytes)", i, k != nil, len(got), len(want))
			}
		}
	}
}

// FuzzRunReply holds the reply encoder to the generated code.
func FuzzRunReply(f *testing.F) {
	f.Add(uint64(1), uint64(2), true)
	f.Add(uint64(7), uint64(9), false)
	_, key, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, a, b uint64, signed bool) {
		h, rp := randomRun(rand.New(rand.NewPCG(a, b)))
		k := key
		if !signed {
			k = nil
		}
		if got, want := handReply(t, h, rp, k), generatedReply(t, h, rp, k); !bytes.Equal(got, want) {
			t.Fatalf("hand-encoded reply differs from the generated code's (%d vs %d bytes)", len(got), len(want))
		}
	})
}

// FuzzRunRequest holds the request encoder to the generated code.
func FuzzRunRequest(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		m := &securedexchange.RunModelRequest{InputTensors: randomTensors(r, sizes), Sign: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			m.ModelId = "model"
		}
		if r.IntN(2) == 0 {
			m.ClientInfo = &securedexchange.ClientInfo{UserAgent: "blindfold", UserAgentVersion: "0.1"}
		}
		e, err := RunRequest(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := deterministic.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Bytes(); !bytes.Equal(got, want) || e.Len() != len(want) {
			t.Fatalf("hand-encoded request differs from the generated code's (%d vs %d bytes)", len(got), len(want))
		}
	})
}

func sameBuffer(p, b []byte) bool {
	return len(p) > 0 && len(b) > 0 && &p[0] == &b[0]
}

// Large tensors are referenced, not copied; a reply's buffers are zeroed
// when gRPC frees them, a request's are not (they are the caller's).
func TestEncodersReference(t *testing.T) {
	data := bytes.Repeat([]byte{0xAB}, 1<<20)
	td := []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1 << 18}}, BytesData: data}}
	e, _, err := RunReply(RunPayload{ModelID: "m"}, td, nil)
	if err != nil {
		t.Fatal(err)
	}
	copied := 0
	referenced := false
	for _, p := range e.Parts() {
		if sameBuffer(p, data) {
			referenced = true
		} else {
			copied += len(p)
		}
	}
	if !referenced || copied > 64 {
		t.Fatalf("reply: referenced %v, %d bytes copied for a 1 MiB output; want only the framing copied", referenced, copied)
	}
	req, err := RunRequest(&securedexchange.RunModelRequest{ModelId: "m", InputTensors: td})
	if err != nil {
		t.Fatal(err)
	}
	req.Buffers().Free()
	if data[0] != 0xAB {
		t.Fatal("a request's buffers were zeroed: they are the caller's")
	}
	e.Buffers().Free()
	if !bytes.Equal(data, make([]byte, len(data))) {
		t.Fatal("the reply's output buffer was not zeroed when gRPC freed it")
	}
}

// BenchmarkRunReply encodes a reply with one 4 MiB output, with the
// generated code (the payload marshalled, then the reply around it) and
// with RunReply, unsigned and signed. copies/B is the bytes written into
// new buffers per output byte: for RunReply, every buffer of the encoding
// that is not the output's own.
func BenchmarkRunReply(b *testing.B) {
	data := make([]byte, 4<<20)
	outs := []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1024, 1024}}, BytesData: data}}
	header := &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}
	_, key, _ := ed25519.GenerateKey(nil)
	sign := func(p []byte) []byte { return ed25519.Sign(key, p) }
	b.Run("generated", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		var copied int
		for b.Loop() {
			payload, _ := deterministic.Marshal(&securedexchange.Payload{Header: header, Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{ModelId: "m", OutputTensors: outs}}})
			reply, _ := deterministic.Marshal(&securedexchange.RunModelReply{Payload: payload})
			copied += len(payload) + len(reply)
		}
		b.ReportMetric(float64(copied)/float64(b.N)/float64(len(data)), "copies/B")
	})
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("hand/signed=%v", signed), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var s func([]byte) []byte
			if signed {
				s = sign
			}
			var copied int
			for b.Loop() {
				e, _, err := RunReply(RunPayload{Header: header, ModelID: "m"}, outs, s)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range e.Parts() {
					if !sameBuffer(p, data) {
						copied += len(p)
					}
				}
			}
			b.ReportMetric(float64(copied)/float64(b.N)/float64(len(data)), "copies/B")
		})
	}
}
