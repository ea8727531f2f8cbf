package engine

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxpb"
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

// More field numbers in onnx.proto.
const (
	graphInitializerField       = 5  // GraphProto.initializer
	graphSparseInitializerField = 15 // GraphProto.sparse_initializer
	tensorNameField             = 8  // TensorProto.name
	sparseValuesField           = 1  // SparseTensorProto.values
	valueInfoTypeField          = 2  // ValueInfoProto.type
	typeTensorField             = 1  // TypeProto.tensor_type
	typeSequenceField           = 4  // TypeProto.sequence_type
	typeMapField                = 5  // TypeProto.map_type
	typeSparseTensorField       = 8  // TypeProto.sparse_tensor_type
	typeOptionalField           = 9  // TypeProto.optional_type
)

// modelIO reads a model's graph inputs (those not backed by an initializer)
// and outputs from its bytes, as ONNX Runtime would describe them: names,
// value kinds, element types and dimensions (-1 for a named or unknown one,
// none for an undeclared shape). It decodes only the small input and output
// declarations and the initializers' names; the weights are skipped without
// copying, so reading the description costs no second load of the model.
func modelIO(model []byte) (inputs, outputs []ort.InputOutputInfo, err error) {
	var ins, outs [][]byte
	initialized := map[string]bool{}
	graphs := 0
	ok := eachField(model, func(num protowire.Number, graph []byte) bool {
		if num != modelGraphField {
			return true
		}
		graphs++
		return eachField(graph, func(num protowire.Number, b []byte) bool {
			switch num {
			case graphInputField:
				ins = append(ins, b)
			case graphOutputField:
				outs = append(outs, b)
			case graphInitializerField:
				return eachString(b, tensorNameField, func(s string) { initialized[s] = true })
			case graphSparseInitializerField:
				return eachField(b, func(num protowire.Number, values []byte) bool {
					if num != sparseValuesField {
						return true
					}
					return eachString(values, tensorNameField, func(s string) { initialized[s] = true })
				})
			}
			return true
		})
	})
	if !ok || graphs != 1 {
		return nil, nil, errors.New("not an ONNX model: its protobuf encoding does not hold exactly one graph")
	}
	for _, b := range ins {
		info, err := valueInfo(b)
		if err != nil {
			return nil, nil, err
		}
		if !initialized[info.Name] {
			inputs = append(inputs, info)
		}
	}
	for _, b := range outs {
		info, err := valueInfo(b)
		if err != nil {
			return nil, nil, err
		}
		outputs = append(outputs, info)
	}
	return inputs, outputs, nil
}

// eachString calls f with each string value of field want in message b.
func eachString(b []byte, want protowire.Number, f func(string)) bool {
	return eachField(b, func(num protowire.Number, v []byte) bool {
		if num == want {
			f(string(v))
		}
		return true
	})
}

// valueInfo describes one ValueInfoProto.
func valueInfo(b []byte) (ort.InputOutputInfo, error) {
	var vi onnxpb.ValueInfoProto
	if err := proto.Unmarshal(b, &vi); err != nil {
		return ort.InputOutputInfo{}, fmt.Errorf("malformed input or output declaration: %w", err)
	}
	info := ort.InputOutputInfo{Name: vi.GetName(), OrtValueType: ort.ONNXTypeUnknown}
	if info.Name == "" {
		return info, errors.New("an input or output has no name")
	}
	eachField(b, func(num protowire.Number, typ []byte) bool {
		if num != valueInfoTypeField {
			return true
		}
		return eachField(typ, func(num protowire.Number, _ []byte) bool {
			switch num {
			case typeTensorField:
				info.OrtValueType = ort.ONNXTypeTensor
			case typeSequenceField:
				info.OrtValueType = ort.ONNXTypeSequence
			case typeMapField:
				info.OrtValueType = ort.ONNXTypeMap
			case typeSparseTensorField:
				info.OrtValueType = ort.ONNXTypeSparseTensor
			case typeOptionalField:
				info.OrtValueType = ort.ONNXTypeOptional
			}
			return true
		})
	})
	if info.OrtValueType != ort.ONNXTypeTensor {
		return info, nil
	}
	tt := vi.GetType().GetTensorType()
	info.DataType = ort.TensorElementDataType(tt.GetElemType())
	for _, d := range tt.GetShape().GetDim() {
		if _, fixed := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); fixed {
			info.Dimensions = append(info.Dimensions, d.GetDimValue())
		} else {
			info.Dimensions = append(info.Dimensions, -1)
		}
	}
	return info, nil
}
