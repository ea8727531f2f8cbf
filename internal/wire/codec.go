package wire

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
)

// Codec is a gRPC codec for Blindfold's streams: the registered protobuf
// codec, except that an *Encoded is sent as it is, and RunModelRequest and
// RunModelReply are decoded with their tensor bytes aliasing one buffer
// made for the message (copied once out of gRPC's buffers) instead of
// being copied again. Install it with grpc.ForceServerCodecV2 or
// grpc.ForceCodecV2.
type Codec struct{ encoding.CodecV2 }

// NewCodec wraps the registered protobuf codec.
func NewCodec() Codec { return Codec{encoding.GetCodecV2("proto")} }

// Marshal encodes v.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*Encoded); ok {
		return e.Buffers(), nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes data into v.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *securedexchange.RunModelRequest:
		return DecodeRunRequest(data.Materialize(), m)
	case *securedexchange.RunModelReply:
		return DecodeRunReply(data.Materialize(), m)
	}
	return c.CodecV2.Unmarshal(data, v)
}

// NonceMetadata is the gRPC metadata key of a request's nonce (hex), which
// the server puts in a signed reply's receipt.
const NonceMetadata = "blindfold-nonce"
