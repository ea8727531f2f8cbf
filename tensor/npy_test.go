package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// npyBytes builds a .npy stream by hand: version, header dict (padded with
// spaces and a newline to a 64-byte boundary when pad is true) and data.
func npyBytes(major byte, dict string, pad bool, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	lenSize := 2
	if major > 1 {
		lenSize = 4
	}
	h := dict
	if pad {
		total := 8 + lenSize + len(dict) + 1
		h += strings.Repeat(" ", (64-total%64)%64)
		h += "\n"
	}
	if lenSize == 2 {
		_ = binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func TestWriteNPYMatchesNumPy(t *testing.T) {
	// np.save of np.array([1, 2, 3], dtype='<i8') writes exactly this:
	// version 1.0, header length 118 (0x76), 128 bytes before the data.
	want := []byte("\x93NUMPY\x01\x00\x76\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }")
	want = append(want, bytes.Repeat([]byte(" "), 128-1-len(want))...)
	want = append(want, '\n')
	want = append(want, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0)
	tt, err := New("x", []int64{3}, []int64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := WriteNPY(&got, tt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteNPY wrote\n%q\nwant\n%q", got.Bytes(), want)
	}
}

func TestNPYRoundTripAllTypes(t *testing.T) {
	shapes := [][]int64{{}, {0}, {3}, {2, 3}, {1, 2, 1, 2}}
	for _, d := range DTypes() {
		if d == BF16 {
			continue
		}
		for _, shape := range shapes {
			n, _ := ByteSize(d, shape)
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*7 + 1)
				if d == Bool {
					data[i] = byte(i % 2)
				}
			}
			in := Tensor{Name: "t", DType: d, Shape: shape, Data: data}
			var buf bytes.Buffer
			if err := WriteNPY(&buf, in); err != nil {
				t.Fatalf("%s%v: WriteNPY: %v", d, shape, err)
			}
			if (buf.Len()-len(data))%64 != 0 {
				t.Errorf("%s%v: data starts at %d, not 64-aligned", d, shape, buf.Len()-len(data))
			}
			out, err := ReadNPY(&buf, "t")
			if err != nil {
				t.Fatalf("%s%v: ReadNPY: %v", d, shape, err)
			}
			if out.DType != d || !equalShape(out.Shape, shape) || !bytes.Equal(out.Data, data) || out.Name != "t" {
				t.Errorf("%s%v: round trip gave %s%v name %q data %v", d, shape, out.DType, out.Shape, out.Name, out.Data)
			}
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadNPYAccepts(t *testing.T) {
	f32 := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40} // 1.0, 2.0
	tests := []struct {
		name  string
		in    []byte
		dtype DType
		shape []int64
	}{
		{"v1 f32", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", true, f32), F32, []int64{2}},
		{"v2", npyBytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", true, f32), F32, []int64{2}},
		{"v3", npyBytes(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", true, f32), F32, []int64{1, 2}},
		{"double quotes, no trailing comma, no padding", npyBytes(1, `{"shape": (2,), "descr": "<f4", "fortran_order": False}`, false, f32), F32, []int64{2}},
		{"key order free", npyBytes(1, "{'fortran_order': False, 'shape': (2,), 'descr': '<f4'}", true, f32), F32, []int64{2}},
		{"scalar", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", true, make([]byte, 8)), F64, []int64{}},
		{"u1 with |", npyBytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", true, []byte{1, 2, 3}), U8, []int64{3}},
		{"u1 with <", npyBytes(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }", true, []byte{1, 2, 3}), U8, []int64{3}},
		{"i1", npyBytes(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1,), }", true, []byte{0xff}), I8, []int64{1}},
		{"bool", npyBytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", true, []byte{1, 0}), Bool, []int64{2}},
		{"f16", npyBytes(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", true, []byte{0, 0x3c}), F16, []int64{1}},
		{"zero dim", npyBytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 5), }", true, nil), I64, []int64{0, 5}},
		{"u2", npyBytes(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }", true, []byte{1, 0}), U16, []int64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadNPY(bytes.NewReader(tc.in), "x")
			if err != nil {
				t.Fatalf("ReadNPY: %v", err)
			}
			if got.DType != tc.dtype || !equalShape(got.Shape, tc.shape) {
				t.Fatalf("got %s%v, want %s%v", got.DType, got.Shape, tc.dtype, tc.shape)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Values survive.
	got, err := ReadNPY(bytes.NewReader(tests[0].in), "x")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Values[float32](got)
	if err != nil || len(v) != 2 || v[0] != 1 || v[1] != 2 {
		t.Fatalf("values %v, %v; want [1 2]", v, err)
	}
}

func TestReadNPYRefuses(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	data := make([]byte, 8)
	tests := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		{"empty", nil, "preamble"},
		{"bad magic", append([]byte("\x93NUMPX\x01\x00"), npyBytes(1, ok, true, data)[8:]...), "magic"},
		{"version 4", npyBytes(4, ok, true, data), "version 4.0"},
		{"version 1.1", func() []byte { b := npyBytes(1, ok, true, data); b[7] = 1; return b }(), "version 1.1"},
		{"short header", npyBytes(1, ok, true, data)[:20], "header"},
		{"fortran", npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", true, data), "fortran_order"},
		{"big endian", npyBytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", true, data), "big-endian"},
		{"native order", npyBytes(1, "{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }", true, data), "native byte order"},
		{"| on multibyte", npyBytes(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", true, data), "byte order"},
		{"object", npyBytes(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", true, data), "not a supported type"},
		{"complex", npyBytes(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", true, data), "not a supported type"},
		{"structured", npyBytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", true, data), "structured"},
		{"short data", npyBytes(1, ok, true, data[:7]), "needs 8"},
		{"trailing data", npyBytes(1, ok, true, append(data, 0)), "trailing"},
		{"missing key", npyBytes(1, "{'descr': '<f4', 'shape': (2,), }", true, data), "lacks key \"fortran_order\""},
		{"extra key", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", true, data), "unexpected key"},
		{"duplicate key", npyBytes(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", true, data), "twice"},
		{"one-tuple without comma", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", true, data), "trailing comma"},
		{"negative dim", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", true, data), "non-negative"},
		{"shape list", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", true, data), "tuple"},
		{"fortran not bool", npyBytes(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", true, data), "True or False"},
		{"text after dict", npyBytes(1, ok+" x", true, data), "after the dict"},
		{"not a dict", npyBytes(1, "['descr']", true, data), "dict"},
		{"overflowing shape", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", true, data), "overflow"},
		{"huge shape, little data", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", true, data), "needs 8000000000000"},
		{"bool not 0/1", npyBytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", true, []byte{1, 2}), "must be 0 or 1"},
		{"latin-1 byte", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\xe9", false, data), "not ASCII"},
		{"v2 huge header length", func() []byte {
			b := npyBytes(2, ok, true, data)
			binary.LittleEndian.PutUint32(b[8:], 1<<30)
			return b
		}(), "exceeds the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadNPY(bytes.NewReader(tc.in), "in.npy")
			if err == nil {
				t.Fatalf("ReadNPY accepted %q", tc.in)
			}
			var ne *NPYError
			if !errors.As(err, &ne) || ne.Name != "in.npy" {
				t.Errorf("error %v is not an *NPYError naming the input", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestWriteNPYRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   Tensor
		want error
		sub  string
	}{
		{"bfloat16", Tensor{DType: BF16, Shape: []int64{1}, Data: []byte{0, 0}}, ErrBFloat16NPY, "bfloat16"},
		{"bad length", Tensor{Name: "a", DType: F32, Shape: []int64{2}, Data: []byte{0}}, nil, "needs 8 bytes"},
		{"invalid dtype", Tensor{DType: DType(99), Shape: []int64{1}, Data: []byte{0}}, nil, "no .npy descriptor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteNPY(&buf, tc.in)
			if err == nil {
				t.Fatal("WriteNPY succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.sub) {
				t.Errorf("error %q does not mention %q", err, tc.sub)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes on failure", buf.Len())
			}
		})
	}
}

func TestAsBits(t *testing.T) {
	in, err := FromBits("h", BF16, []int64{2}, []uint16{0x3f80, 0x4000})
	if err != nil {
		t.Fatal(err)
	}
	b := AsBits(in)
	if b.DType != U16 || in.DType != BF16 {
		t.Fatalf("AsBits gave %s (input now %s)", b.DType, in.DType)
	}
	b.Data[0] = 0xff
	if in.Data[0] == 0xff {
		t.Fatal("AsBits shares data with its input")
	}
	var buf bytes.Buffer
	if err := WriteNPY(&buf, AsBits(in)); err != nil {
		t.Fatal(err)
	}
	f, err := New("f", []int64{1}, []float32{1})
	if err != nil {
		t.Fatal(err)
	}
	if got := AsBits(f); got.DType != F32 {
		t.Fatalf("AsBits changed a float32 tensor to %s", got.DType)
	}
}

func FuzzReadNPY(f *testing.F) {
	f.Add(npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", true, make([]byte, 8)))
	f.Add(npyBytes(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (1, 2), }", true, []byte{0, 1}))
	f.Add(npyBytes(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", true, make([]byte, 8)))
	f.Add(npyBytes(1, "{'descr': '>f4', 'fortran_order': True, 'shape': (0,), }", true, nil))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ReadNPY(bytes.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("ReadNPY returned an invalid tensor: %v", err)
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, got); err != nil {
			t.Fatalf("WriteNPY of a tensor ReadNPY accepted: %v", err)
		}
		again, err := ReadNPY(&buf, "fuzz")
		if err != nil {
			t.Fatalf("ReadNPY of WriteNPY output: %v", err)
		}
		if again.DType != got.DType || !equalShape(again.Shape, got.Shape) || !bytes.Equal(again.Data, got.Data) {
			t.Fatalf("round trip changed %s%v to %s%v", got.DType, got.Shape, again.DType, again.Shape)
		}
	})
}
