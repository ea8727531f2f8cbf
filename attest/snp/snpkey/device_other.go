//go:build !linux

package snpkey

import "errors"

// DevicePath is the SEV guest device of Linux.
const DevicePath = "/dev/sev-guest"

// LinuxDevice is /dev/sev-guest; it exists only on Linux.
type LinuxDevice struct{}

// OpenDevice fails: SEV-SNP guests run Linux.
func OpenDevice() (*LinuxDevice, error) {
	return nil, errors.New("snpkey: /dev/sev-guest exists only on Linux")
}

// Close does nothing.
func (d *LinuxDevice) Close() error { return nil }

// Ioctl fails.
func (d *LinuxDevice) Ioctl(uintptr, any) (uintptr, error) {
	return 0, errors.New("snpkey: /dev/sev-guest exists only on Linux")
}
