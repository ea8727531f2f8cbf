// Package wire encodes and decodes the few BlindAI 0.5 messages that carry
// tensor bytes without copying those bytes: decoded tensor bytes alias the
// message's buffer, and encoded messages reference the tensors' buffers.
// Every function here gives exactly what the generated protobuf code gives
// (the package's fuzz targets hold it to that); only the copies differ.
package wire

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

var (
	errInvalidUTF8 = errors.New("proto: string field contains invalid UTF-8")
	errFieldNumber = errors.New("proto: invalid field number")
)

// fieldFunc decodes the value of one known field; it returns false for a
// field it does not know (kept as an unknown field).
type fieldFunc func(num protowire.Number, typ protowire.Type, v []byte, x uint64) (known bool, err error)

// decode walks the fields of b, calling f for each length-delimited or
// varint field and keeping the others, and the fields f does not know, as
// unknown fields of m, as proto.Unmarshal does.
func decode(b []byte, m proto.Message, f fieldFunc) error {
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
		known := false
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			ok, err := f(num, typ, v, 0)
			if err != nil {
				return err
			}
			if known = ok; known {
				b = b[n:]
			}
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			ok, err := f(num, typ, nil, x)
			if err != nil {
				return err
			}
			if known = ok; known {
				b = b[n:]
			}
		}
		if known {
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		unknown = protowire.AppendTag(unknown, num, typ) // as proto does: the tag re-encoded
		unknown = append(unknown, b[:n]...)
		b = b[n:]
	}
	if len(unknown) > 0 {
		// Appended, as proto does when a message field appears again and
		// merges into the message decoded before.
		r := m.ProtoReflect()
		old := r.GetUnknown()
		r.SetUnknown(append(old[:len(old):len(old)], unknown...))
	}
	return nil
}

// merge decodes v into *m (made if nil), merging as proto does when a
// singular message field appears more than once.
func merge[T any, P interface {
	*T
	proto.Message
}](v []byte, m *P) error {
	if *m == nil {
		*m = P(new(T))
	}
	return proto.UnmarshalOptions{Merge: true}.Unmarshal(v, *m)
}

func utf8String(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errInvalidUTF8
	}
	return string(v), nil
}

// alias returns v with its capacity cut to its length, so that an append
// to it can never write into the rest of the buffer.
func alias(v []byte) []byte { return v[:len(v):len(v)] }

// DecodeTensorData decodes b into td; bytes_data aliases b.
func DecodeTensorData(b []byte, td *securedexchange.TensorData) error {
	td.Reset()
	return decode(b, td, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (bool, error) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return true, merge(v, &td.Info)
		case num == 2 && typ == protowire.BytesType:
			td.BytesData = alias(v)
			return true, nil
		}
		return false, nil
	})
}

// DecodeRunRequest decodes b into m as proto.Unmarshal would, except that
// each tensor's bytes_data aliases b: b must not change while m is in use.
func DecodeRunRequest(b []byte, m *securedexchange.RunModelRequest) error {
	m.Reset()
	return decode(b, m, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) (bool, error) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			td := &securedexchange.TensorData{}
			if err := DecodeTensorData(v, td); err != nil {
				return true, err
			}
			m.InputTensors = append(m.InputTensors, td)
			return true, nil
		case num == 2 && typ == protowire.VarintType:
			m.Sign = x != 0
			return true, nil
		case num == 3 && typ == protowire.BytesType:
			return true, merge(v, &m.ClientInfo)
		case num == 4 && typ == protowire.BytesType:
			s, err := utf8String(v)
			m.ModelId = s
			return true, err
		}
		return false, nil
	})
}

// DecodeRunReply decodes b into m; payload and signature alias b.
func DecodeRunReply(b []byte, m *securedexchange.RunModelReply) error {
	m.Reset()
	return decode(b, m, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (bool, error) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Payload = alias(v)
			return true, nil
		case num == 2 && typ == protowire.BytesType:
			m.Signature = alias(v)
			return true, nil
		}
		return false, nil
	})
}

// DecodePayload decodes b into p; the output tensors' bytes of a run
// payload alias b.
func DecodePayload(b []byte, p *securedexchange.Payload) error {
	p.Reset()
	return decode(b, p, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (bool, error) {
		if typ != protowire.BytesType {
			return false, nil
		}
		switch num {
		case 1:
			return true, merge(v, &p.Header)
		case 2:
			// A oneof member: a second occurrence merges into the first
			// only if it is the same member.
			sm, ok := p.Payload.(*securedexchange.Payload_SendModelPayload)
			if !ok {
				sm = &securedexchange.Payload_SendModelPayload{}
			}
			if err := merge(v, &sm.SendModelPayload); err != nil {
				return true, err
			}
			p.Payload = sm
			return true, nil
		case 3:
			rm, ok := p.Payload.(*securedexchange.Payload_RunModelPayload)
			if !ok {
				rm = &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{}}
			}
			if err := decodeRunPayload(v, rm.RunModelPayload); err != nil {
				return true, err
			}
			p.Payload = rm
			return true, nil
		}
		return false, nil
	})
}

// decodeRunPayload merges b into rp, outputs aliasing b.
func decodeRunPayload(b []byte, rp *securedexchange.RunModelPayload) error {
	return decode(b, rp, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) (bool, error) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			rp.InputHash = alias(v)
			return true, nil
		case num == 2 && typ == protowire.BytesType:
			s, err := utf8String(v)
			rp.ModelId = s
			return true, err
		case num == 3 && typ == protowire.BytesType:
			td := &securedexchange.TensorData{}
			if err := DecodeTensorData(v, td); err != nil {
				return true, err
			}
			rp.OutputTensors = append(rp.OutputTensors, td)
			return true, nil
		case num == 4 && typ == protowire.VarintType:
			rp.InferenceTime = x
			return true, nil
		case num == 100 && typ == protowire.VarintType:
			rp.InferenceTimeNs = x
			return true, nil
		case num == 101 && typ == protowire.BytesType:
			return true, merge(v, &rp.Receipt)
		}
		return false, nil
	})
}
