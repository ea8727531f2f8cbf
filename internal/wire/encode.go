package wire

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/bufpool"
)

// InlineBelow is the size below which a bytes field is copied into the
// surrounding bytes of an encoding rather than referenced as a buffer of
// its own.
const InlineBelow = 4 << 10

// Encoded is a message encoded as a list of buffers: small ones holding
// tags, lengths and small fields, and the large bytes fields' own buffers,
// referenced rather than copied. Send it with SendMsg on a stream whose
// codec is Codec.
type Encoded struct {
	parts [][]byte
	cur   []byte
	size  int
	// zero makes Buffers zero each buffer when gRPC frees it.
	zero bool
}

// Len returns the encoded size in bytes.
func (e *Encoded) Len() int { return e.size }

// Bytes returns the encoding as one buffer (a copy).
func (e *Encoded) Bytes() []byte {
	e.flush()
	out := make([]byte, 0, e.size)
	for _, p := range e.parts {
		out = append(out, p...)
	}
	return out
}

// Parts returns the encoding's buffers, in order (referenced, not copied).
func (e *Encoded) Parts() [][]byte { return e.parts }

func (e *Encoded) flush() {
	if len(e.cur) > 0 {
		e.parts = append(e.parts, e.cur)
		e.cur = nil
	}
}

func (e *Encoded) tag(num protowire.Number, typ protowire.Type) {
	e.cur = protowire.AppendTag(e.cur, num, typ)
	e.size += protowire.SizeTag(num)
}

func (e *Encoded) varint(v uint64) {
	e.cur = protowire.AppendVarint(e.cur, v)
	e.size += protowire.SizeVarint(v)
}

func (e *Encoded) varintField(num protowire.Number, v uint64) {
	e.tag(num, protowire.VarintType)
	e.varint(v)
}

// bytesField writes a length-delimited field; with ref, a large value is
// referenced as a buffer of its own.
func (e *Encoded) bytesField(num protowire.Number, b []byte, ref bool) {
	e.tag(num, protowire.BytesType)
	e.varint(uint64(len(b)))
	e.size += len(b)
	if ref && len(b) >= InlineBelow {
		e.flush()
		e.parts = append(e.parts, b)
		return
	}
	e.cur = append(e.cur, b...)
}

// zeroingPool is the mem.BufferPool of buffers that hold plaintext nobody
// needs once gRPC has written it: Put zeroes the buffer and gives it to
// bufpool for reuse.
type zeroingPool struct{}

func (zeroingPool) Get(int) *[]byte { panic("wire: zeroingPool only frees") }
func (zeroingPool) Put(b *[]byte)   { bufpool.Put(*b) }

// Buffers returns the encoding as gRPC buffers. gRPC frees them once it has
// written them (SendMsg returns before that); with zeroing asked for at
// encoding, each is then zeroed.
func (e *Encoded) Buffers() mem.BufferSlice {
	out := make(mem.BufferSlice, len(e.parts))
	for i := range e.parts {
		if e.zero {
			out[i] = mem.NewBuffer(&e.parts[i], zeroingPool{})
		} else {
			out[i] = mem.SliceBuffer(e.parts[i])
		}
	}
	return out
}

// RunPayload holds the fields of a run reply's Payload other than the
// output tensors.
type RunPayload struct {
	Header          *securedexchange.PayloadHeader
	InputHash       []byte
	ModelID         string
	InferenceTime   uint64
	InferenceTimeNs uint64
	// Receipt is Blindfold's receipt (field 101), or nil.
	Receipt *securedexchange.Receipt
}

// parts holds the pieces of a run payload encoded ahead: the header, the
// outputs' infos and the receipt.
type parts struct {
	header  []byte
	outs    []output
	receipt []byte
}

type output struct {
	info    []byte
	hasInfo bool
	data    []byte
}

func tensorDataSize(o output) int {
	n := 0
	if o.hasInfo {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(o.info))
	}
	if len(o.data) > 0 {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(o.data))
	}
	return n
}

func (f *RunPayload) runSize(pt *parts) int {
	outs := pt.outs
	n := 0
	if len(f.InputHash) > 0 {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(f.InputHash))
	}
	if f.ModelID != "" {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(f.ModelID))
	}
	for _, o := range outs {
		n += protowire.SizeTag(3) + protowire.SizeBytes(tensorDataSize(o))
	}
	if f.InferenceTime != 0 {
		n += protowire.SizeTag(4) + protowire.SizeVarint(f.InferenceTime)
	}
	if f.InferenceTimeNs != 0 {
		n += protowire.SizeTag(100) + protowire.SizeVarint(f.InferenceTimeNs)
	}
	if f.Receipt != nil {
		n += protowire.SizeTag(101) + protowire.SizeBytes(len(pt.receipt))
	}
	return n
}

func (f *RunPayload) size(pt *parts) int {
	n := 0
	if f.Header != nil {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(pt.header))
	}
	return n + protowire.SizeTag(3) + protowire.SizeBytes(f.runSize(pt))
}

func (f *RunPayload) encode(e *Encoded, pt *parts, ref bool) {
	if f.Header != nil {
		e.bytesField(1, pt.header, false)
	}
	e.tag(3, protowire.BytesType)
	e.varint(uint64(f.runSize(pt)))
	if len(f.InputHash) > 0 {
		e.bytesField(1, f.InputHash, false)
	}
	if f.ModelID != "" {
		e.bytesField(2, []byte(f.ModelID), false)
	}
	for _, o := range pt.outs {
		e.tag(3, protowire.BytesType)
		e.varint(uint64(tensorDataSize(o)))
		if o.hasInfo {
			e.bytesField(1, o.info, false)
		}
		if len(o.data) > 0 {
			e.bytesField(2, o.data, ref)
		}
	}
	if f.InferenceTime != 0 {
		e.varintField(4, f.InferenceTime)
	}
	if f.InferenceTimeNs != 0 {
		e.varintField(100, f.InferenceTimeNs)
	}
	if f.Receipt != nil {
		e.bytesField(101, pt.receipt, false)
	}
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// RunReply encodes the RunModelReply whose payload is the Payload of f and
// the output tensors, byte for byte as the generated code's deterministic
// marshalling of the two nested messages would. Unsigned (sign nil), the
// outputs' bytes are referenced, not copied; signed, the payload is put
// together once and sign's signature of those exact bytes goes in the
// reply, and the outputs' own buffers are the caller's again. Every buffer
// the reply references is zeroed once gRPC has written it (and given to
// bufpool, which keeps those it handed out). PayloadSize is the size of
// the payload.
func RunReply(f RunPayload, outputs []*securedexchange.TensorData, sign func([]byte) []byte) (e *Encoded, payloadSize int, err error) {
	pt := &parts{}
	if f.Header != nil {
		if pt.header, err = deterministic.Marshal(f.Header); err != nil {
			return nil, 0, err
		}
	}
	if f.Receipt != nil {
		if pt.receipt, err = deterministic.Marshal(f.Receipt); err != nil {
			return nil, 0, err
		}
	}
	outs := make([]output, len(outputs))
	for i, td := range outputs {
		info, err := deterministic.Marshal(td.GetInfo())
		if err != nil {
			return nil, 0, err
		}
		outs[i] = output{info: info, hasInfo: td.GetInfo() != nil, data: td.GetBytesData()}
	}
	pt.outs = outs
	e = &Encoded{zero: true}
	payloadSize = f.size(pt)
	if sign != nil {
		p := &Encoded{}
		f.encode(p, pt, true)
		payload := p.Bytes() // the one copy of the outputs
		e.bytesField(1, payload, true)
		e.bytesField(2, sign(payload), false)
	} else {
		e.tag(1, protowire.BytesType)
		e.varint(uint64(payloadSize))
		f.encode(e, pt, true)
	}
	e.flush()
	return e, payloadSize, nil
}

// RunRequest encodes one RunModelRequest message, byte for byte as the
// generated code would, with the tensors' bytes referenced, not copied.
// The buffers are not zeroed (they are the caller's).
func RunRequest(m *securedexchange.RunModelRequest) (*Encoded, error) {
	e := &Encoded{}
	for _, td := range m.GetInputTensors() {
		var info []byte
		if td.Info != nil {
			var err error
			if info, err = deterministic.Marshal(td.Info); err != nil {
				return nil, err
			}
		}
		n := 0
		if td.Info != nil {
			n += protowire.SizeTag(1) + protowire.SizeBytes(len(info))
		}
		if len(td.BytesData) > 0 {
			n += protowire.SizeTag(2) + protowire.SizeBytes(len(td.BytesData))
		}
		e.tag(1, protowire.BytesType)
		e.varint(uint64(n))
		if td.Info != nil {
			e.bytesField(1, info, false)
		}
		if len(td.BytesData) > 0 {
			e.bytesField(2, td.BytesData, true)
		}
	}
	if m.Sign {
		e.varintField(2, 1)
	}
	if m.ClientInfo != nil {
		ci, err := deterministic.Marshal(m.ClientInfo)
		if err != nil {
			return nil, err
		}
		e.bytesField(3, ci, false)
	}
	if m.ModelId != "" {
		e.bytesField(4, []byte(m.ModelId), false)
	}
	e.flush()
	return e, nil
}
