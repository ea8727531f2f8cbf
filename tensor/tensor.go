// Package tensor defines the typed tensors that cross Blindfold's wire: an
// element type, a shape and little-endian raw bytes. It is pure Go so that
// clients can use it without the engine.
package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// DType is a tensor element type. Its values are those of the wire enum
// securedexchange.DatumTypeEnum.
type DType int32

// The element types. F32 to Bool are BlindAI's; F16 and BF16 are Blindfold
// extensions.
const (
	F32  DType = 0
	F64  DType = 1
	I32  DType = 2
	I64  DType = 3
	U32  DType = 4
	U64  DType = 5
	U8   DType = 6
	U16  DType = 7
	I8   DType = 8
	I16  DType = 9
	Bool DType = 10
	F16  DType = 11
	BF16 DType = 12
)

var dtypeInfo = [...]struct {
	name string
	size int
}{
	F32: {"float32", 4}, F64: {"float64", 8}, I32: {"int32", 4}, I64: {"int64", 8},
	U32: {"uint32", 4}, U64: {"uint64", 8}, U8: {"uint8", 1}, U16: {"uint16", 2},
	I8: {"int8", 1}, I16: {"int16", 2}, Bool: {"bool", 1}, F16: {"float16", 2},
	BF16: {"bfloat16", 2},
}

// DTypes lists every supported element type.
func DTypes() []DType {
	out := make([]DType, len(dtypeInfo))
	for i := range dtypeInfo {
		out[i] = DType(i)
	}
	return out
}

// Valid reports whether d is a supported element type.
func (d DType) Valid() bool { return d >= 0 && int(d) < len(dtypeInfo) }

// String returns the NumPy-style name of d ("float32", "int64", ...).
func (d DType) String() string {
	if !d.Valid() {
		return fmt.Sprintf("dtype(%d)", int32(d))
	}
	return dtypeInfo[d].name
}

// Size returns the size in bytes of one element, or 0 for an invalid type.
func (d DType) Size() int {
	if !d.Valid() {
		return 0
	}
	return dtypeInfo[d].size
}

// ParseDType parses a name as returned by String (case-insensitive; "f32",
// "float", "i64" and similar short forms are accepted too).
func ParseDType(s string) (DType, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	aliases := map[string]DType{
		"f32": F32, "float": F32, "f64": F64, "double": F64, "i32": I32, "int": I32,
		"i64": I64, "long": I64, "u32": U32, "u64": U64, "u8": U8, "byte": U8,
		"u16": U16, "i8": I8, "i16": I16, "f16": F16, "half": F16, "bf16": BF16,
	}
	if d, ok := aliases[l]; ok {
		return d, nil
	}
	for _, d := range DTypes() {
		if d.String() == l {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor element type %q (allowed: %s)", s, allowedNames())
}

func allowedNames() string {
	names := make([]string, 0, len(dtypeInfo))
	for _, d := range DTypes() {
		names = append(names, d.String())
	}
	return strings.Join(names, ", ")
}

// Tensor is a named tensor with raw little-endian element bytes (bool is one
// byte per element, 0 or 1).
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// ErrTooLarge is returned when a shape's element count overflows.
var ErrTooLarge = errors.New("tensor: element count overflows int64")

// NumElements returns the product of shape. It fails on a negative dimension
// or on overflow. The empty shape (a scalar) has one element.
func NumElements(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor: dimension %d is negative (%d)", i, d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, ErrTooLarge
		}
		n *= d
	}
	return n, nil
}

// ByteSize returns the number of data bytes a tensor of this type and shape
// holds.
func ByteSize(d DType, shape []int64) (int64, error) {
	if !d.Valid() {
		return 0, fmt.Errorf("tensor: invalid element type %d", int32(d))
	}
	n, err := NumElements(shape)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/int64(d.Size()) {
		return 0, ErrTooLarge
	}
	return n * int64(d.Size()), nil
}

// Validate checks that t has a valid type and exactly the bytes its shape
// needs.
func (t Tensor) Validate() error {
	want, err := ByteSize(t.DType, t.Shape)
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %s%v needs %d bytes, has %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// Element is the set of Go types that map to a DType.
type Element interface {
	float32 | float64 | int32 | int64 | uint32 | uint64 | uint8 | uint16 | int8 | int16 | bool
}

// DTypeOf returns the DType of the Go element type T. uint16 maps to U16;
// use FromBits for F16 and BF16.
func DTypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return F32
	case float64:
		return F64
	case int32:
		return I32
	case int64:
		return I64
	case uint32:
		return U32
	case uint64:
		return U64
	case uint8:
		return U8
	case uint16:
		return U16
	case int8:
		return I8
	case int16:
		return I16
	default:
		return Bool
	}
}

// New makes a tensor of shape from values, encoding them little-endian.
func New[T Element](name string, shape []int64, values []T) (Tensor, error) {
	t := Tensor{Name: name, DType: DTypeOf[T](), Shape: append([]int64(nil), shape...)}
	n, err := NumElements(shape)
	if err != nil {
		return Tensor{}, err
	}
	if n != int64(len(values)) {
		return Tensor{}, fmt.Errorf("tensor %q: shape %v holds %d elements, got %d values", name, shape, n, len(values))
	}
	if raw, ok := asBytes(values); ok {
		t.Data = bytes.Clone(raw)
		if t.Data == nil {
			t.Data = []byte{}
		}
		return t, nil
	}
	t.Data = make([]byte, 0, int(n)*t.DType.Size())
	for _, v := range values {
		switch x := any(v).(type) {
		case float32:
			t.Data = binary.LittleEndian.AppendUint32(t.Data, math.Float32bits(x))
		case float64:
			t.Data = binary.LittleEndian.AppendUint64(t.Data, math.Float64bits(x))
		case int32:
			t.Data = binary.LittleEndian.AppendUint32(t.Data, uint32(x))
		case int64:
			t.Data = binary.LittleEndian.AppendUint64(t.Data, uint64(x))
		case uint32:
			t.Data = binary.LittleEndian.AppendUint32(t.Data, x)
		case uint64:
			t.Data = binary.LittleEndian.AppendUint64(t.Data, x)
		case uint8:
			t.Data = append(t.Data, x)
		case uint16:
			t.Data = binary.LittleEndian.AppendUint16(t.Data, x)
		case int8:
			t.Data = append(t.Data, byte(x))
		case int16:
			t.Data = binary.LittleEndian.AppendUint16(t.Data, uint16(x))
		case bool:
			b := byte(0)
			if x {
				b = 1
			}
			t.Data = append(t.Data, b)
		}
	}
	return t, nil
}

// FromBits makes an F16 or BF16 tensor from raw 16-bit patterns.
func FromBits(name string, d DType, shape []int64, bits []uint16) (Tensor, error) {
	if d != F16 && d != BF16 {
		return Tensor{}, fmt.Errorf("tensor: FromBits takes float16 or bfloat16, not %s", d)
	}
	t, err := New(name, shape, bits)
	t.DType = d
	return t, err
}

// Values decodes t's elements as T. T must match t.DType (uint16 also
// reads the raw bits of F16 and BF16).
func Values[T Element](t Tensor) ([]T, error) {
	want := DTypeOf[T]()
	if t.DType != want && !(want == U16 && (t.DType == F16 || t.DType == BF16)) {
		return nil, fmt.Errorf("tensor %q is %s, not %s", t.Name, t.DType, want)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	size := t.DType.Size()
	out := make([]T, len(t.Data)/size)
	if raw, ok := asBytes(out); ok {
		copy(raw, t.Data)
		return out, nil
	}
	for i := range out {
		b := t.Data[i*size:]
		var v any
		switch want {
		case F32:
			v = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case F64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case I32:
			v = int32(binary.LittleEndian.Uint32(b))
		case I64:
			v = int64(binary.LittleEndian.Uint64(b))
		case U32:
			v = binary.LittleEndian.Uint32(b)
		case U64:
			v = binary.LittleEndian.Uint64(b)
		case U8:
			v = b[0]
		case U16:
			v = binary.LittleEndian.Uint16(b)
		case I8:
			v = int8(b[0])
		case I16:
			v = int16(binary.LittleEndian.Uint16(b))
		case Bool:
			v = b[0] != 0
		}
		out[i] = v.(T)
	}
	return out, nil
}

// littleEndian reports whether this host stores numbers little-endian, as
// tensor bytes are.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// asBytes views a slice of numbers as its bytes, when their memory layout
// is the tensor encoding (little-endian host; not bool, whose Go values must
// be 0 or 1 and are checked one by one).
func asBytes[T Element](v []T) ([]byte, bool) {
	var z T
	if _, isBool := any(z).(bool); isBool || !littleEndian {
		return nil, false
	}
	if len(v) == 0 {
		return nil, true
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(z))), true
}
