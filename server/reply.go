package server

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

// The RunModel reply carries its outputs inside a serialized Payload inside
// the RunModelReply. Encoded the ordinary way, every output byte is copied
// twice (once into the payload, once more into the reply) and the gRPC
// codec holds a third buffer. runReply encodes the reply by hand instead,
// byte for byte as the generated code's deterministic marshalling would
// (a test and a fuzz target hold it to that), as a list of segments: the
// output tensors' own buffers are referenced, not copied. Unsigned, no
// output byte is copied before gRPC frames it; signed, the payload is put
// together once, because Ed25519 signs one contiguous message.
//
// The output buffers are zeroed when gRPC has written them (see
// clearingPool), not before: SendMsg returns before the transport is done
// with the bytes.

// segmentInline is the size below which a byte field is copied into the
// surrounding bytes rather than referenced as a segment of its own.
const segmentInline = 4 << 10

// runPayloadFields are the RunModelPayload fields other than the outputs.
type runPayloadFields struct {
	header          []byte // the encoded PayloadHeader
	inputHash       []byte
	modelID         string
	inferenceTime   uint64
	inferenceTimeNs uint64
}

// outputSegment is one output tensor: its encoded TensorInfo and its data.
type outputSegment struct {
	info []byte
	data []byte
}

// segments accumulates an encoding as small bytes copied into the current
// buffer and large byte fields referenced as segments of their own.
type segments struct {
	parts [][]byte
	cur   []byte
	size  int
}

func (s *segments) flush() {
	if len(s.cur) > 0 {
		s.parts = append(s.parts, s.cur)
		s.cur = nil
	}
}

func (s *segments) small(b []byte) {
	s.cur = append(s.cur, b...)
	s.size += len(b)
}

func (s *segments) tag(num protowire.Number, typ protowire.Type) {
	s.cur = protowire.AppendTag(s.cur, num, typ)
	s.size += protowire.SizeTag(num)
}

func (s *segments) varint(v uint64) {
	s.cur = protowire.AppendVarint(s.cur, v)
	s.size += protowire.SizeVarint(v)
}

// bytesField writes a length-delimited field; large values become a
// referenced segment.
func (s *segments) bytesField(num protowire.Number, b []byte, ref bool) {
	s.tag(num, protowire.BytesType)
	s.varint(uint64(len(b)))
	if ref && len(b) >= segmentInline {
		s.flush()
		s.parts = append(s.parts, b)
		s.size += len(b)
		return
	}
	s.small(b)
}

// bytes returns the whole encoding as one buffer.
func (s *segments) bytes() []byte {
	s.flush()
	out := make([]byte, 0, s.size)
	for _, p := range s.parts {
		out = append(out, p...)
	}
	return out
}

func tensorDataSize(o outputSegment) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(o.info))
	if len(o.data) > 0 {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(o.data))
	}
	return n
}

func runPayloadSize(f runPayloadFields, outs []outputSegment) int {
	n := 0
	if len(f.inputHash) > 0 {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(f.inputHash))
	}
	if f.modelID != "" {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(f.modelID))
	}
	for _, o := range outs {
		n += protowire.SizeTag(3) + protowire.SizeBytes(tensorDataSize(o))
	}
	if f.inferenceTime != 0 {
		n += protowire.SizeTag(4) + protowire.SizeVarint(f.inferenceTime)
	}
	if f.inferenceTimeNs != 0 {
		n += protowire.SizeTag(100) + protowire.SizeVarint(f.inferenceTimeNs)
	}
	return n
}

// payloadSize returns the size of the encoded Payload.
func payloadSize(f runPayloadFields, outs []outputSegment) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(f.header))
	return n + protowire.SizeTag(3) + protowire.SizeBytes(runPayloadSize(f, outs))
}

// appendPayload encodes Payload{header, run_model_payload} into s, with
// output data referenced when ref is set.
func appendPayload(s *segments, f runPayloadFields, outs []outputSegment, ref bool) {
	s.bytesField(1, f.header, false)
	s.tag(3, protowire.BytesType)
	s.varint(uint64(runPayloadSize(f, outs)))
	if len(f.inputHash) > 0 {
		s.bytesField(1, f.inputHash, false)
	}
	if f.modelID != "" {
		s.bytesField(2, []byte(f.modelID), false)
	}
	for _, o := range outs {
		s.tag(3, protowire.BytesType)
		s.varint(uint64(tensorDataSize(o)))
		s.bytesField(1, o.info, false)
		if len(o.data) > 0 {
			s.bytesField(2, o.data, ref)
		}
	}
	if f.inferenceTime != 0 {
		s.tag(4, protowire.VarintType)
		s.varint(f.inferenceTime)
	}
	if f.inferenceTimeNs != 0 {
		s.tag(100, protowire.VarintType)
		s.varint(f.inferenceTimeNs)
	}
}

// encodeOutputs prepares the outputs' segments from their wire form.
func encodeOutputs(tds []*securedexchange.TensorData) ([]outputSegment, error) {
	outs := make([]outputSegment, len(tds))
	for i, td := range tds {
		info, err := proto.MarshalOptions{Deterministic: true}.Marshal(td.GetInfo())
		if err != nil {
			return nil, err
		}
		outs[i] = outputSegment{info: info, data: td.GetBytesData()}
	}
	return outs, nil
}

// runReply is a RunModelReply ready to send (see the top of this file). It
// is sent with SendMsg; replyCodec encodes it.
type runReply struct {
	s    segments
	size int // the encoded reply's size
	// payload is the contiguous payload of a signed reply (nil unsigned).
	payload []byte
}

// newRunReply encodes the reply. With sign set, the payload is put
// together once and sign's signature of it goes in the reply.
func newRunReply(f runPayloadFields, outs []outputSegment, sign func([]byte) []byte) *runReply {
	r := &runReply{}
	psize := payloadSize(f, outs)
	if sign != nil {
		var p segments
		appendPayload(&p, f, outs, false)
		r.payload = p.bytes()
		sig := sign(r.payload)
		r.s.bytesField(1, r.payload, true)
		r.s.bytesField(2, sig, false)
	} else {
		r.s.tag(1, protowire.BytesType)
		r.s.varint(uint64(psize))
		appendPayload(&r.s, f, outs, true)
	}
	r.s.flush()
	r.size = r.s.size
	return r
}

// clearingPool is the mem.BufferPool of buffers that hold plaintext the
// server no longer needs once gRPC has written it: Put zeroes the buffer.
type clearingPool struct{}

func (clearingPool) Get(int) *[]byte { panic("server: clearingPool only frees") }
func (clearingPool) Put(b *[]byte)   { clear(*b) }

// buffers returns the reply as gRPC buffers, each zeroed when gRPC frees
// it: the referenced output data, a signed payload, and the small parts
// (which hold small outputs).
func (r *runReply) buffers() mem.BufferSlice {
	out := make(mem.BufferSlice, len(r.s.parts))
	for i := range r.s.parts {
		out[i] = mem.NewBuffer(&r.s.parts[i], clearingPool{})
	}
	return out
}

// replyCodec is the server's gRPC codec: the default protobuf codec, and
// runReply values encoded as they are.
type replyCodec struct{ encoding.CodecV2 }

// newReplyCodec wraps the registered protobuf codec.
func newReplyCodec() replyCodec {
	return replyCodec{encoding.GetCodecV2("proto")}
}

// Marshal encodes v.
func (c replyCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*runReply); ok {
		return r.buffers(), nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes data into v. A RunModelRequest is decoded by hand so
// that its tensor bytes alias one buffer made for the message instead of
// being copied out of it (see decodeRunRequest); everything else goes to
// the protobuf codec.
func (c replyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*securedexchange.RunModelRequest); ok {
		return decodeRunRequest(data.Materialize(), m)
	}
	return c.CodecV2.Unmarshal(data, v)
}

// decodeRunRequest decodes b into m exactly as proto.Unmarshal would
// (a fuzz target holds it to that), except that each TensorData's
// bytes_data aliases b rather than being copied: b must not be changed or
// reused while m is in use. b is the request's own buffer, made for it by
// Unmarshal, so the assembler may keep a tensor that arrives whole.
func decodeRunRequest(b []byte, m *securedexchange.RunModelRequest) error {
	m.Reset()
	var unknown []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return errFieldNumber
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			td := &securedexchange.TensorData{}
			if err := decodeTensorData(v, td); err != nil {
				return err
			}
			m.InputTensors = append(m.InputTensors, td)
			b = b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.Sign = v != 0
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if m.ClientInfo == nil {
				m.ClientInfo = &securedexchange.ClientInfo{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, m.ClientInfo); err != nil {
				return err
			}
			b = b[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return errInvalidUTF8
			}
			m.ModelId = string(v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			unknown = protowire.AppendTag(unknown, num, typ) // as proto does: the tag re-encoded
			unknown = append(unknown, b[:n]...)
			b = b[n:]
		}
	}
	if len(unknown) > 0 {
		m.ProtoReflect().SetUnknown(unknown)
	}
	return nil
}

var (
	errInvalidUTF8 = errors.New("proto: string field contains invalid UTF-8")
	errFieldNumber = errors.New("proto: invalid field number")
)

// decodeTensorData decodes one TensorData, bytes_data aliasing b.
func decodeTensorData(b []byte, td *securedexchange.TensorData) error {
	var unknown []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return errFieldNumber
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if td.Info == nil {
				td.Info = &securedexchange.TensorInfo{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, td.Info); err != nil {
				return err
			}
			b = b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			td.BytesData = v[:len(v):len(v)]
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			unknown = protowire.AppendTag(unknown, num, typ) // as proto does: the tag re-encoded
			unknown = append(unknown, b[:n]...)
			b = b[n:]
		}
	}
	if len(unknown) > 0 {
		td.ProtoReflect().SetUnknown(unknown)
	}
	return nil
}
