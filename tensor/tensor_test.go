package tensor

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

// roundTrip checks that New encodes values exactly as encoding/binary does
// (little-endian) and that Values decodes them back.
func roundTrip[T Element](t *testing.T, values []T) {
	t.Helper()
	shape := []int64{int64(len(values))}
	tt, err := New("x", shape, values)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := binary.Write(&want, binary.LittleEndian, values); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tt.Data, want.Bytes()) {
		t.Fatalf("%s: New wrote % x, want % x", tt.DType, tt.Data, want.Bytes())
	}
	if err := tt.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := Values[T](tt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, values) && len(values) > 0 {
		t.Fatalf("%s: Values = %v, want %v", tt.DType, back, values)
	}
}

func TestNewValuesAllTypes(t *testing.T) {
	roundTrip(t, []float32{0, -1.5, float32(math.Inf(1)), math.SmallestNonzeroFloat32, math.MaxFloat32})
	roundTrip(t, []float64{0, -2.25, math.Inf(-1), math.MaxFloat64})
	roundTrip(t, []int32{0, -1, math.MinInt32, math.MaxInt32})
	roundTrip(t, []int64{0, -1, math.MinInt64, math.MaxInt64})
	roundTrip(t, []uint32{0, 1, math.MaxUint32})
	roundTrip(t, []uint64{0, 1, math.MaxUint64})
	roundTrip(t, []uint8{0, 1, 255})
	roundTrip(t, []uint16{0, 1, 65535})
	roundTrip(t, []int8{0, -1, -128, 127})
	roundTrip(t, []int16{0, -1, -32768, 32767})
	roundTrip(t, []bool{true, false, true})
	roundTrip(t, []float32{})
}

func TestNewDoesNotAlias(t *testing.T) {
	v := []float32{1, 2}
	tt, _ := New("x", []int64{2}, v)
	v[0] = 9
	if got, _ := Values[float32](tt); got[0] != 1 {
		t.Fatal("the tensor shares memory with the values it was made from")
	}
	got, _ := Values[float32](tt)
	got[1] = 9
	if again, _ := Values[float32](tt); again[1] != 2 {
		t.Fatal("Values shares memory with the tensor")
	}
}

func TestNewValuesErrors(t *testing.T) {
	if _, err := New("x", []int64{2, 2}, []int32{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "holds 4 elements") {
		t.Fatalf("shape mismatch: %v", err)
	}
	if _, err := New("x", []int64{-1}, []int32{}); err == nil {
		t.Fatal("negative dimension accepted")
	}
	tt, _ := New("x", []int64{2}, []int32{1, 2})
	if _, err := Values[float32](tt); err == nil || !strings.Contains(err.Error(), "is int32, not float32") {
		t.Fatalf("type mismatch: %v", err)
	}
	tt.Data = tt.Data[:7]
	if _, err := Values[int32](tt); err == nil {
		t.Fatal("short data accepted")
	}
	half, err := FromBits("h", F16, []int64{1}, []uint16{0x3c00})
	if err != nil || half.DType != F16 {
		t.Fatal(err)
	}
	if bits, err := Values[uint16](half); err != nil || bits[0] != 0x3c00 {
		t.Fatalf("float16 bits: %v %v", bits, err)
	}
	if _, err := FromBits("h", F32, []int64{1}, []uint16{1}); err == nil {
		t.Fatal("FromBits accepted float32")
	}
}

func TestParseDType(t *testing.T) {
	for _, d := range DTypes() {
		got, err := ParseDType(strings.ToUpper(d.String()))
		if err != nil || got != d {
			t.Errorf("ParseDType(%q) = %v, %v", d, got, err)
		}
	}
	if _, err := ParseDType("complex64"); err == nil || !strings.Contains(err.Error(), "float32") {
		t.Fatalf("unknown type: %v (the error must list the allowed ones)", err)
	}
	if DType(99).Valid() || DType(99).Size() != 0 || DType(-1).String() != "dtype(-1)" {
		t.Fatal("invalid dtype reported as valid")
	}
	if n, err := ByteSize(F64, []int64{1 << 62}); err == nil {
		t.Fatalf("overflow accepted: %d", n)
	}
}
