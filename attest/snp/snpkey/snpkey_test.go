package snpkey

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"testing"

	labi "github.com/google/go-sev-guest/client/linuxabi"
)

// fakeDevice answers MSG_KEY_REQ with a key that depends on the request,
// as the secure processor's does.
type fakeDevice struct {
	status uint32
	err    error
	zero   bool
	got    labi.SnpDerivedKeyReqABI
}

func (d *fakeDevice) Ioctl(cmd uintptr, req any) (uintptr, error) {
	if cmd != labi.IocSnpGetDerivedKey {
		return 0, errors.New("unexpected command")
	}
	r := req.(*labi.SnpUserGuestRequest)
	d.got = *r.ReqData.(*labi.SnpDerivedKeyReqABI)
	if d.err != nil {
		return 0, d.err
	}
	resp := r.RespData.(*labi.SnpDerivedKeyRespABI)
	resp.Status = d.status
	if !d.zero {
		for i := range resp.Data {
			resp.Data[i] = byte(i) ^ byte(d.got.GuestFieldSelect)
		}
	}
	return 0, nil
}

func TestSealingKey(t *testing.T) {
	d := &fakeDevice{}
	k1, err := SealingKey(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.got.RootKeySelect != 0 || d.got.GuestFieldSelect != fieldGuestPolicy|fieldMeasurement || d.got.Vmpl != 0 {
		t.Fatalf("request %+v: want the VCEK root, measurement and guest policy", d.got)
	}
	// The key is HKDF of the secure processor's, not the raw bytes.
	var raw [32]byte
	for i := range raw {
		raw[i] = byte(i) ^ byte(fieldGuestPolicy|fieldMeasurement)
	}
	want, _ := hkdf.Key(sha256.New, raw[:], nil, Label, 32)
	if !bytes.Equal(k1, want) || bytes.Equal(k1, raw[:]) {
		t.Fatalf("key %x, want HKDF of the derived key", k1)
	}
	k2, _ := SealingKey(&fakeDevice{}, 0)
	if !bytes.Equal(k1, k2) {
		t.Fatal("the same guest got two keys")
	}
}

func TestSealingKeyFailsClosed(t *testing.T) {
	for name, d := range map[string]Device{
		"no device":    nil,
		"ioctl error":  &fakeDevice{err: errors.New("EIO")},
		"bad status":   &fakeDevice{status: 0x16},
		"all-zero key": &fakeDevice{zero: true},
	} {
		if k, err := SealingKey(d, 0); !errors.Is(err, ErrDerive) || k != nil {
			t.Errorf("%s: %x, %v; want ErrDerive", name, k, err)
		}
	}
}
