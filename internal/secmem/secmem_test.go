package secmem

import (
	"bytes"
	"testing"
)

func TestBuffer(t *testing.T) {
	var want []byte
	b, err := New(10)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, i*37%1000+1)
		if err := b.Append(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	if !bytes.Equal(b.Bytes(), want) || b.Len() != len(want) {
		t.Fatalf("buffer holds %d bytes, want %d equal bytes", b.Len(), len(want))
	}
	held := b.mem
	b.Free()
	if b.Len() != 0 || b.Bytes() != nil && len(b.Bytes()) != 0 {
		t.Fatal("Free left bytes")
	}
	_ = held // unmapped: must not be touched
	if err := b.Append([]byte("again")); err != nil || string(b.Bytes()) != "again" {
		t.Fatalf("reuse after Free: %q %v", b.Bytes(), err)
	}
	b.Free()
}

func TestGrowExact(t *testing.T) {
	b, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	first := &b.mem[0]
	for i := 0; i < 16; i++ {
		b.Append(make([]byte, 64<<10))
	}
	if &b.mem[0] != first {
		t.Fatal("a buffer sized up front was moved while filling exactly")
	}
	if err := b.Grow(-1); err == nil {
		t.Fatal("negative growth accepted")
	}
}

func BenchmarkAppend(b *testing.B) {
	chunk := make([]byte, 256<<10)
	b.SetBytes(64 << 20)
	for b.Loop() {
		buf, _ := New(64 << 20)
		for i := 0; i < 256; i++ {
			buf.Append(chunk)
		}
		buf.Free()
	}
}

// BenchmarkAppendGoHeap is the same filling of a Go slice, for comparison.
func BenchmarkAppendGoHeap(b *testing.B) {
	chunk := make([]byte, 256<<10)
	b.SetBytes(64 << 20)
	for b.Loop() {
		buf := make([]byte, 0, 64<<20)
		for i := 0; i < 256; i++ {
			buf = append(buf, chunk...)
		}
		clear(buf)
	}
}
