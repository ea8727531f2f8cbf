package secmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// alloc maps size bytes of private anonymous memory, excluded from core
// dumps.
func alloc(size int) ([]byte, bool, error) {
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, false, fmt.Errorf("secmem: mapping %d bytes: %w", size, err)
	}
	// Best effort: a kernel without MADV_DONTDUMP still gets a working buffer.
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP)
	return mem, false, nil
}

func unmap(mem []byte) { _ = unix.Munmap(mem) }
