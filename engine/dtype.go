package engine

import (
	"fmt"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/blindfold-ai/blindfold/tensor"
)

// dtypeOps holds, for one element type, its ONNX Runtime enum value and the
// typed helpers needed to move data across the binding. The scalar helpers
// are nil for float16 and bfloat16, which the binding's typed scalars do
// not cover.
type dtypeOps struct {
	ort ort.TensorElementDataType
	// newScalar makes a rank-0 input from one element's bytes.
	newScalar func(b []byte) (ort.Value, error)
	// emptyScalar makes a rank-0 output for ONNX Runtime to fill.
	emptyScalar func() (ort.Value, error)
	// scalarBytes returns the bytes of a value made by emptyScalar.
	scalarBytes func(v ort.Value) ([]byte, bool)
	// tensorBytes returns the bytes of an output that the binding
	// allocated (a *ort.Tensor[T]), without copying: the binding has
	// already copied them into Go memory.
	tensorBytes func(v ort.Value) ([]byte, bool)
}

func opsFor[T ort.TensorData](t ort.TensorElementDataType) dtypeOps {
	return dtypeOps{
		ort: t,
		newScalar: func(b []byte) (ort.Value, error) {
			var v T
			if _, isBool := any(v).(bool); isBool { // any non-zero byte is true
				return ort.NewScalar(any(b[0] != 0).(T))
			}
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v)), b)
			return ort.NewScalar(v)
		},
		emptyScalar: func() (ort.Value, error) { return ort.NewEmptyScalar[T]() },
		scalarBytes: func(v ort.Value) ([]byte, bool) {
			s, ok := v.(*ort.Scalar[T])
			if !ok {
				return nil, false
			}
			x := s.GetData()
			return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x))...), true
		},
		tensorBytes: func(v ort.Value) ([]byte, bool) {
			t, ok := v.(*ort.Tensor[T])
			if !ok {
				return nil, false
			}
			return asBytes(t.GetData()), true
		},
	}
}

// asBytes views s's memory as bytes (host order, which is little-endian on
// every platform Open accepts).
func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}

var dtypes = map[tensor.DType]dtypeOps{
	tensor.F32:  opsFor[float32](ort.TensorElementDataTypeFloat),
	tensor.F64:  opsFor[float64](ort.TensorElementDataTypeDouble),
	tensor.I32:  opsFor[int32](ort.TensorElementDataTypeInt32),
	tensor.I64:  opsFor[int64](ort.TensorElementDataTypeInt64),
	tensor.U32:  opsFor[uint32](ort.TensorElementDataTypeUint32),
	tensor.U64:  opsFor[uint64](ort.TensorElementDataTypeUint64),
	tensor.U8:   opsFor[uint8](ort.TensorElementDataTypeUint8),
	tensor.U16:  opsFor[uint16](ort.TensorElementDataTypeUint16),
	tensor.I8:   opsFor[int8](ort.TensorElementDataTypeInt8),
	tensor.I16:  opsFor[int16](ort.TensorElementDataTypeInt16),
	tensor.Bool: opsFor[bool](ort.TensorElementDataTypeBool),
	tensor.F16:  {ort: ort.TensorElementDataTypeFloat16},
	tensor.BF16: {ort: ort.TensorElementDataTypeBFloat16},
}

// fromORT maps an ONNX Runtime element type to a tensor.DType.
func fromORT(t ort.TensorElementDataType) (tensor.DType, bool) {
	for d, o := range dtypes {
		if o.ort == t {
			return d, true
		}
	}
	return 0, false
}

// ortTypeName names an ONNX Runtime element type the way ONNX does
// ("string", "complex64", ...), for error messages.
func ortTypeName(t ort.TensorElementDataType) string {
	names := map[ort.TensorElementDataType]string{
		ort.TensorElementDataTypeUndefined:      "undefined",
		ort.TensorElementDataTypeString:         "string",
		ort.TensorElementDataTypeComplex64:      "complex64",
		ort.TensorElementDataTypeComplex128:     "complex128",
		ort.TensorElementDataTypeFloat8E4M3FN:   "float8e4m3fn",
		ort.TensorElementDataTypeFloat8E4M3FNUZ: "float8e4m3fnuz",
		ort.TensorElementDataTypeFloat8E5M2:     "float8e5m2",
		ort.TensorElementDataTypeFloat8E5M2FNUZ: "float8e5m2fnuz",
		ort.TensorElementDataTypeUint4:          "uint4",
		ort.TensorElementDataTypeInt4:           "int4",
	}
	if n, ok := names[t]; ok {
		return n
	}
	if d, ok := fromORT(t); ok {
		return d.String()
	}
	return fmt.Sprintf("element type %d", int(t))
}
