package engine

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxgen/onnxpb"
)

// Field numbers in onnx.proto.
const (
	modelGraphField  = 7  // ModelProto.graph
	graphInputField  = 11 // GraphProto.input
	graphOutputField = 12 // GraphProto.output
)

// declaredDims returns, for each graph input and output of an ONNX model,
// the dim_param name of every dimension ("" for a fixed or unnamed one), or
// nil when the model declares no shape at all (unknown rank, which ONNX
// Runtime reports like rank 0).
// ONNX Runtime reports named dimensions as -1 and drops their names; the
// names tell which output dimensions follow which input dimensions. Only the
// graph's input and output declarations are decoded; initializers and nodes
// are skipped without copying.
func declaredDims(model []byte) (inputs, outputs map[string][]string, ok bool) {
	inputs, outputs = map[string][]string{}, map[string][]string{}
	ok = eachField(model, func(num protowire.Number, graph []byte) bool {
		if num != modelGraphField {
			return true
		}
		return eachField(graph, func(num protowire.Number, b []byte) bool {
			if num != graphInputField && num != graphOutputField {
				return true
			}
			var vi onnxpb.ValueInfoProto
			if err := proto.Unmarshal(b, &vi); err != nil {
				return false
			}
			shape := vi.GetType().GetTensorType().GetShape()
			var names []string // nil: no shape declared (unknown rank)
			if shape != nil {
				names = make([]string, len(shape.GetDim()))
			}
			dims := shape.GetDim()
			for i, d := range dims {
				names[i] = d.GetDimParam()
			}
			if num == graphInputField {
				inputs[vi.GetName()] = names
			} else {
				outputs[vi.GetName()] = names
			}
			return true
		})
	})
	return inputs, outputs, ok
}

// eachField calls f with each length-delimited field of the encoded message
// b, skipping other fields. It stops and reports false on malformed input or
// when f returns false.
func eachField(b []byte, f func(num protowire.Number, value []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if !f(num, v) {
			return false
		}
	}
	return true
}
