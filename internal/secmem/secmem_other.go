//go:build !linux

package secmem

// alloc falls back to the Go heap where anonymous mappings are not used.
func alloc(size int) ([]byte, bool, error) { return make([]byte, size), true, nil }

func unmap([]byte) {}
