package snpkey

import (
	"fmt"

	labi "github.com/google/go-sev-guest/client/linuxabi"
	"golang.org/x/sys/unix"
)

// DevicePath is the SEV guest device of Linux.
const DevicePath = "/dev/sev-guest"

// LinuxDevice is /dev/sev-guest.
type LinuxDevice struct{ fd int }

// OpenDevice opens /dev/sev-guest.
func OpenDevice() (*LinuxDevice, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("snpkey: opening %s: %w", DevicePath, err)
	}
	return &LinuxDevice{fd: fd}, nil
}

// Close closes the device.
func (d *LinuxDevice) Close() error { return unix.Close(d.fd) }

// Ioctl issues a guest request.
func (d *LinuxDevice) Ioctl(command uintptr, req any) (uintptr, error) {
	r, ok := req.(*labi.SnpUserGuestRequest)
	if !ok {
		return 0, fmt.Errorf("snpkey: unsupported request %T", req)
	}
	abi := r.ABI()
	result, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), command, uintptr(abi.Pointer()))
	if err := abi.Finish(r); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return result, nil
}
