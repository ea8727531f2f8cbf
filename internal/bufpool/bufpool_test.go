package bufpool

import (
	"bytes"
	"testing"
	"unsafe"
)

func TestClasses(t *testing.T) {
	// Every size in the range maps to the smallest class that holds it, at
	// most a quarter above it; classes grow strictly.
	prev := 0
	for idx := 0; idx < classes; idx++ {
		shift := minShift + idx/steps
		size := 1<<shift + idx%steps*(1<<(shift-2))
		if size <= prev {
			t.Fatalf("class %d: size %d not above %d", idx, size, prev)
		}
		for _, n := range []int{prev + 1, size - 1, size} {
			if n < MinSize {
				continue
			}
			i, s, ok := class(n)
			if !ok || i != idx || s != size {
				t.Errorf("class(%d) = %d, %d, %v; want %d, %d", n, i, s, ok, idx, size)
			}
			if s > n+n/4 {
				t.Errorf("class(%d) = %d: more than a quarter above", n, s)
			}
		}
		prev = size
	}
	if prev != MaxSize {
		t.Errorf("last class %d, want MaxSize %d", prev, MaxSize)
	}
	for _, n := range []int{0, 1, MinSize - 1, MaxSize + 1} {
		if _, _, ok := class(n); ok {
			t.Errorf("class(%d) ok, want no class", n)
		}
		if Size(n) != n {
			t.Errorf("Size(%d) = %d", n, Size(n))
		}
	}
}

func TestGetPutReuses(t *testing.T) {
	base := Outstanding()
	const n = 100_000 // class 114688
	b := Get(n)
	if len(b) != n || cap(b) != n || uintptr(unsafe.Pointer(&b[0]))%Alignment != 0 {
		t.Fatalf("Get(%d): len %d cap %d at %p", n, len(b), cap(b), &b[0])
	}
	if !bytes.Equal(b, make([]byte, n)) {
		t.Fatal("Get returned a buffer that is not zeroed")
	}
	if Outstanding() != base+1 {
		t.Fatalf("Outstanding = %d, want %d", Outstanding(), base+1)
	}
	for i := range b {
		b[i] = 0xAA
	}
	p := &b[0]
	Put(b)
	if Outstanding() != base {
		t.Fatalf("Outstanding after Put = %d, want %d", Outstanding(), base)
	}
	if !bytes.Equal(b, make([]byte, n)) {
		t.Fatal("Put did not zero the buffer")
	}
	// The same class comes back zeroed (whether or not the pool kept this
	// very buffer: sync.Pool may drop it).
	c := Get(Size(n) - 1)
	defer Put(c)
	if !bytes.Equal(c, make([]byte, len(c))) {
		t.Fatal("a reused buffer is not zeroed")
	}
	if &c[0] == p {
		t.Logf("the pool handed the same buffer out again")
	}
}

func TestPutForeign(t *testing.T) {
	base := Outstanding()
	// A buffer the pool did not hand out, of a class's exact size: zeroed
	// and not kept (so it is never handed to anyone else).
	f := make([]byte, MinSize)
	for i := range f {
		f[i] = 1
	}
	Put(f)
	if !bytes.Equal(f, make([]byte, len(f))) {
		t.Fatal("a foreign buffer was not zeroed")
	}
	for range 100 {
		g := Get(MinSize)
		if &g[0] == &f[0] {
			t.Fatal("the pool handed out a buffer it did not own")
		}
		defer Put(g)
	}
	// Part of a pooled buffer that does not start where it starts is
	// foreign too: zeroed (its length only) and the buffer stays out.
	b := Get(MinSize)
	for i := range b {
		b[i] = 2
	}
	Put(b[8:16])
	if Outstanding() != base+101 {
		t.Fatalf("Outstanding = %d, want %d", Outstanding(), base+101)
	}
	if !bytes.Equal(b[8:16], make([]byte, 8)) || b[0] != 2 || b[16] != 2 {
		t.Fatal("Put of a part zeroed the wrong bytes")
	}
	Put(b)
	// Small and huge sizes are plain allocations, never counted.
	s := Get(100)
	if len(s) != 100 || uintptr(unsafe.Pointer(&s[0]))%Alignment != 0 {
		t.Fatalf("Get(100): len %d at %p", len(s), &s[0])
	}
	Put(s)
	Put(nil)
	if Outstanding() != base+100 {
		t.Fatalf("Outstanding = %d, want %d", Outstanding(), base+100)
	}
}

func BenchmarkGetPut4MiB(b *testing.B) {
	b.SetBytes(4 << 20)
	for b.Loop() {
		buf := Get(4 << 20)
		buf[0] = 1
		Put(buf)
	}
}

func BenchmarkMake4MiB(b *testing.B) {
	b.SetBytes(4 << 20)
	for b.Loop() {
		buf := make([]byte, 4<<20)
		buf[0] = 1
		clear(buf)
	}
}
