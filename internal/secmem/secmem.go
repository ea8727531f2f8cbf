// Package secmem holds plaintext that must not linger: a growable byte
// buffer kept outside the Go heap (anonymous memory mappings on Linux),
// excluded from core dumps, zeroed and returned to the operating system
// as soon as it is freed.
//
// Keeping large plaintext (an uploaded model) off the Go heap has two more
// effects: the garbage collector's pacing does not scale with it (a 1 GB
// live buffer would otherwise let 1 GB of short-lived garbage pile up before
// a collection), and its memory leaves the process at Free instead of at
// some later collection.
package secmem

import (
	"errors"
	"fmt"
)

// ErrTooLarge is returned when a buffer would pass its limit.
var ErrTooLarge = errors.New("secmem: buffer limit reached")

// Buffer is a growable byte buffer outside the Go heap. The zero value is an
// empty buffer. It is not safe for concurrent use.
type Buffer struct {
	mem  []byte // the mapping; len(mem) is the capacity
	n    int    // bytes in use
	heap bool   // mem came from the Go heap (mapping unavailable)
}

// New returns a buffer with room for capacity bytes.
func New(capacity int) (*Buffer, error) {
	b := &Buffer{}
	if err := b.Grow(capacity); err != nil {
		return nil, err
	}
	return b, nil
}

// Len returns the number of bytes in the buffer.
func (b *Buffer) Len() int { return b.n }

// Bytes returns the buffer's bytes. They stay valid until the next Append,
// Grow or Free.
func (b *Buffer) Bytes() []byte { return b.mem[:b.n:b.n] }

// Grow makes room for n more bytes.
func (b *Buffer) Grow(n int) error {
	if n < 0 {
		return fmt.Errorf("secmem: negative growth %d", n)
	}
	need := b.n + n
	if need <= len(b.mem) {
		return nil
	}
	size := max(need, 2*len(b.mem), 64<<10)
	mem, heap, err := alloc(size)
	if err != nil {
		return err
	}
	copy(mem, b.mem[:b.n])
	b.release()
	b.mem, b.heap = mem, heap
	return nil
}

// Append adds p to the buffer, growing it as needed.
func (b *Buffer) Append(p []byte) error {
	if err := b.Grow(len(p)); err != nil {
		return err
	}
	b.n += copy(b.mem[b.n:], p)
	return nil
}

// Free zeroes the bytes in use and returns the buffer's memory. The buffer is empty
// afterwards and may be reused.
func (b *Buffer) Free() {
	b.release()
	b.mem, b.n, b.heap = nil, 0, false
}

func (b *Buffer) release() {
	if b.mem == nil {
		return
	}
	// Only the bytes in use were ever written: the rest of the mapping is
	// still the kernel's zero pages (or a fresh, zeroed heap slice), and
	// touching it would make the whole capacity resident just to zero it.
	clear(b.mem[:b.n])
	if !b.heap {
		unmap(b.mem)
	}
}
