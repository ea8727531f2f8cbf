// Package bufpool keeps the large buffers that hold tensors on the server
// (assembled inputs, outputs the engine writes into) for reuse once they
// are done with. A buffer is zeroed when it is given back, as the server
// zeroes plaintext it no longer needs anyway, so a buffer taken from the
// pool needs no second zeroing, and requests that carry megabytes leave no
// garbage for the collector.
//
// Sizes fall into classes, four to each power of two from MinSize to
// MaxSize, so a buffer's capacity is at most a quarter above what was
// asked for; Size says what a request for n bytes holds. Smaller and
// larger requests are allocated as usual and never kept.
//
// Put keeps only buffers that Get handed out and that are still out: it
// knows them by their first byte. Anything else it is given, it zeroes (its
// length only) and leaves to the garbage collector, so handing Put a
// buffer the pool does not own is safe. Giving back the same buffer twice
// is not: once it is out again, the second Put would take it from its new
// holder. Each buffer has one owner that gives it back once.
package bufpool

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	// MinSize is the smallest size kept: below it, the allocator's own
	// size classes serve well.
	MinSize = 1 << minShift
	// MaxSize is the largest size kept.
	MaxSize = 1 << maxShift
	// Alignment is the alignment of every buffer Get returns, as ONNX
	// Runtime wants for tensors it reads in place.
	Alignment = 64

	steps    = 4 // classes per power of two
	minShift = 16
	maxShift = 30
	classes  = (maxShift-minShift)*steps + 1
)

var (
	pools [classes]sync.Pool // of *[]byte, zeroed, full class length
	out   sync.Map           // *byte (first byte) → loan, for buffers out
	nOut  atomic.Int64       // entries in out
)

// loan is a buffer out of the pool: its class and the length handed out.
type loan struct{ idx, n int }

// class returns the index and size of the smallest class that holds n
// bytes, or ok false outside [MinSize, MaxSize].
func class(n int) (idx, size int, ok bool) {
	if n < MinSize || n > MaxSize {
		return 0, 0, false
	}
	shift := bits.Len(uint(n)) - 1 // 2^shift <= n < 2^(shift+1)
	step := 1 << (shift - 2)       // a quarter of 2^shift
	j := (n - 1<<shift + step - 1) / step
	if j == steps {
		shift, j = shift+1, 0
	}
	return (shift-minShift)*steps + j, 1<<shift + j*(1<<(shift-2)), true
}

// Size returns what Get(n) holds: n rounded up to its class, or n when no
// class holds it.
func Size(n int) int {
	if _, size, ok := class(n); ok {
		return size
	}
	return n
}

// Get returns a zeroed buffer of length and capacity n, aligned to
// Alignment. Give it back with Put, once, when nothing reads or writes it
// any more: until then the pool keeps a reference to it.
func Get(n int) []byte {
	idx, size, ok := class(n)
	if !ok {
		return alignedMake(n)
	}
	var b []byte
	if p, _ := pools[idx].Get().(*[]byte); p != nil {
		b = *p
	} else {
		b = make([]byte, size)
		if !aligned(b) { // large objects start on a page boundary: not expected
			return alignedMake(n)
		}
	}
	out.Store(unsafe.SliceData(b), loan{idx, n})
	nOut.Add(1)
	return b[:n:n]
}

// Put zeroes b. When b is a buffer Get handed out (and b starts where it
// starts), the whole buffer goes back to the pool for a later Get;
// otherwise b is left to the garbage collector.
func Put(b []byte) {
	if cap(b) == 0 {
		return
	}
	v, ok := out.LoadAndDelete(unsafe.SliceData(b))
	if !ok {
		clear(b)
		return
	}
	nOut.Add(-1)
	l := v.(loan)
	shift := minShift + l.idx/steps
	full := unsafe.Slice(unsafe.SliceData(b), 1<<shift+l.idx%steps*(1<<(shift-2)))
	clear(full[:l.n]) // past n it was never within reach: Get capped it at n
	pools[l.idx].Put(&full)
}

// Outstanding returns how many buffers Get handed out that were not given
// back: a count that should come back to where it was once requests end.
func Outstanding() int { return int(nOut.Load()) }

func aligned(b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%Alignment == 0
}

// alignedMake allocates a zeroed buffer of n bytes aligned to Alignment,
// outside the pool.
func alignedMake(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	raw := make([]byte, n+Alignment-1)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (Alignment - 1))
	return raw[off : off+n : off+n]
}
