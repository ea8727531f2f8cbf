package engine

import "unsafe"

// Alignment is the address alignment of the buffers the engine hands to
// ONNX Runtime. Its CPU kernels pick vectorised code paths by address, and
// float reductions then sum in a different order: the same input at another
// alignment can differ in the last bit. With every buffer aligned, equal
// inputs always give equal outputs, bit for bit.
const Alignment = 64

// aligned returns b if it starts on an Alignment boundary, else a copy of b
// that does. Go places allocations of 32 KiB and more on page boundaries, so
// large tensors are used in place; small ones are copied, cheaply.
func aligned(b []byte) []byte {
	if len(b) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%Alignment == 0 {
		return b
	}
	c := alignedBuffer(len(b))
	copy(c, b)
	return c
}

// alignedBuffer returns a zeroed slice of n bytes that starts on an
// Alignment boundary.
func alignedBuffer(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	raw := make([]byte, n+Alignment-1)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (Alignment - 1))
	return raw[off : off+n : off+n]
}

// backing returns b, or for an empty tensor a small buffer that stands in
// for it: ONNX Runtime accepts a buffer at least as large as the tensor
// (zero bytes here), but the binding refuses an empty one. Nothing is read
// from or written to it.
func backing(b []byte) []byte {
	if len(b) == 0 {
		return alignedBuffer(Alignment)[:Alignment:Alignment]
	}
	return b
}
