package tensor

import (
	"bytes"
	"testing"
)

const benchElems = 1 << 20 // 4 MiB of float32

func BenchmarkNewFloat32(b *testing.B) {
	v := make([]float32, benchElems)
	b.SetBytes(4 * benchElems)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New("x", []int64{benchElems}, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValuesFloat32(b *testing.B) {
	t, _ := New("x", []int64{benchElems}, make([]float32, benchElems))
	b.SetBytes(4 * benchElems)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Values[float32](t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNPYRoundTrip(b *testing.B) {
	t, _ := New("x", []int64{1024, benchElems / 1024}, make([]float32, benchElems))
	var buf bytes.Buffer
	b.SetBytes(4 * benchElems)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := WriteNPY(&buf, t); err != nil {
			b.Fatal(err)
		}
		if _, err := ReadNPY(&buf, "x"); err != nil {
			b.Fatal(err)
		}
	}
}
