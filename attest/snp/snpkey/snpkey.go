// Package snpkey derives Blindfold's sealing key inside an SEV-SNP guest
// from the AMD secure processor's MSG_KEY_REQ (the SNP_GET_DERIVED_KEY
// ioctl of /dev/sev-guest), for the server side only.
//
// The key is derived from the chip's VCEK root and mixes in the guest's
// launch measurement and guest policy: the same image, launched with the
// same policy on the same chip, gets the same key after a restart, and no
// other image, policy or chip can get it. It does not mix in the TCB
// version, so a firmware update does not lose the models sealed before it
// (the price: a key derived under an older, vulnerable TCB stays valid).
// The secure processor's 32 bytes go through HKDF-SHA256 with a label of
// Blindfold's, so the key is used for nothing else.
package snpkey

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	labi "github.com/google/go-sev-guest/client/linuxabi"
)

// Device is the SEV guest device: Ioctl issues a request (go-sev-guest's
// fake devices implement it too).
type Device interface {
	Ioctl(command uintptr, req any) (uintptr, error)
}

// Guest field select bits of MSG_KEY_REQ (SEV-SNP firmware ABI).
const (
	fieldGuestPolicy = 1 << 0
	fieldMeasurement = 1 << 3
)

// Label is the HKDF info that makes the sealing key Blindfold's own.
const Label = "blindfold sealing key v1 (SEV-SNP MSG_KEY_REQ: VCEK root, measurement, guest policy)"

// ErrDerive means the secure processor did not derive a key.
var ErrDerive = errors.New("snpkey: MSG_KEY_REQ")

// SealingKey asks the secure processor for a key derived from the VCEK,
// the measurement and the guest policy, at VMPL vmpl (the guest's own, or
// higher), and returns 32 bytes of sealing key.
func SealingKey(d Device, vmpl uint32) ([]byte, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: no SEV guest device", ErrDerive)
	}
	resp := &labi.SnpDerivedKeyRespABI{}
	req := &labi.SnpUserGuestRequest{
		ReqData: &labi.SnpDerivedKeyReqABI{
			RootKeySelect:    0, // VCEK
			GuestFieldSelect: fieldGuestPolicy | fieldMeasurement,
			Vmpl:             vmpl,
		},
		RespData: resp,
	}
	result, err := d.Ioctl(labi.IocSnpGetDerivedKey, req)
	if err != nil {
		if req.FwErr != 0 {
			return nil, fmt.Errorf("%w: firmware error %#x: %v", ErrDerive, req.FwErr, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrDerive, err)
	}
	if result != uintptr(labi.EsOk) {
		return nil, fmt.Errorf("%w: %v", ErrDerive, &labi.SevEsErr{Result: labi.EsResult(result)})
	}
	if resp.Status != 0 {
		return nil, fmt.Errorf("%w: status %#x", ErrDerive, resp.Status)
	}
	if resp.Data == ([32]byte{}) {
		return nil, fmt.Errorf("%w: the secure processor returned an all-zero key", ErrDerive)
	}
	key, err := hkdf.Key(sha256.New, resp.Data[:], nil, Label, 32)
	clear(resp.Data[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDerive, err)
	}
	return key, nil
}
