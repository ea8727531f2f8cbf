package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

func rep(c byte, n int) string { return strings.Repeat(string(c), n) }

var (
	mrtdA = rep('a', 96)
	mrtdB = rep('b', 96)
	measA = rep('c', 96)
)

const sgxTop = `mr_enclave = "` + "0000000000000000000000000000000000000000000000000000000000000001" + `"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`

func TestSectionsParse(t *testing.T) {
	tdxOnly := "[tdx]\nmrtd = [\"" + mrtdA + "\", \"" + mrtdB + "\"]\nrtmr1 = [\"" + rep('1', 96) + "\"]\nmr_servicetd = \"" + rep('5', 96) + "\"\n"
	p, err := Parse([]byte(tdxOnly))
	if err != nil {
		t.Fatal(err)
	}
	if p.HasSGX() || p.SNP != nil || p.TDX == nil || len(p.TDX.MRTD) != 2 || len(p.TDX.RTMR[1]) != 1 {
		t.Fatalf("parsed %+v", p)
	}
	// TOML round trip.
	q, err := Parse(p.TOML())
	if err != nil {
		t.Fatalf("%v\n%s", err, p.TOML())
	}
	if len(q.TDX.MRTD) != 2 || q.TDX.RTMR[1][0] != p.TDX.RTMR[1][0] || p.TDX.MRServiceTD == nil || q.TDX.MRServiceTD == nil || *q.TDX.MRServiceTD != *p.TDX.MRServiceTD || p.TDX.MRServiceTD[0] != 0x55 {
		t.Fatalf("round trip lost values:\n%s", p.TOML())
	}

	// Several platforms at once, SGX top level (BlindAI keys) with [snp]:
	// not a BlindAI 0.5 policy any more.
	all := sgxTop + "\n[snp]\nmeasurement = [\"" + measA + "\"]\nmin_tcb_snp = 8\nmin_firmware = \"1.55\"\n" + "\n" + tdxOnly
	p, err = Parse([]byte(all))
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasSGX() || p.BlindAI05 || p.SNP == nil || p.TDX == nil || p.SNP.MinTCB.SNP != 8 || p.SNP.MinFirmware != [2]uint8{1, 55} {
		t.Fatalf("parsed %+v", p)
	}
	if _, err := Parse(p.TOML()); err != nil {
		t.Fatalf("%v\n%s", err, p.TOML())
	}

	// [sgx] section.
	p, err = Parse([]byte("[sgx]\n" + sgxTop))
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasSGX() || p.BlindAI05 {
		t.Fatalf("[sgx]: %+v", p)
	}
	// BlindAI 0.5 top-level file is unchanged.
	p, err = Parse([]byte(sgxTop))
	if err != nil || !p.BlindAI05 {
		t.Fatalf("BlindAI 0.5 policy: %+v %v", p, err)
	}
}

func TestSectionsRefused(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"nothing", "", "accepts no platform"},
		{"both sgx forms", sgxTop + "[sgx]\n" + sgxTop, "both at the top level and in [sgx]"},
		{"tdx without mrtd", "[tdx]\nrtmr0 = [\"" + mrtdA + "\"]\n", "tdx.mrtd is required"},
		{"tdx short hash", "[tdx]\nmrtd = [\"abcd\"]\n", "tdx.mrtd"},
		{"tdx duplicate", "[tdx]\nmrtd = [\"" + mrtdA + "\", \"" + mrtdA + "\"]\n", "twice"},
		{"tdx debug attributes", "[tdx]\nmrtd = [\"" + mrtdA + "\"]\ntd_attributes = \"0x1\"\ntd_attributes_mask = \"0x1\"\n", "DEBUG"},
		{"tdx attributes without mask", "[tdx]\nmrtd = [\"" + mrtdA + "\"]\ntd_attributes = \"0x0\"\n", "go together"},
		{"tdx unknown key", "[tdx]\nmrtd = [\"" + mrtdA + "\"]\nallow_debug = true\n", "unknown keys"},
		{"snp without measurement", "[snp]\nmin_tcb_snp = 1\n", "snp.measurement is required"},
		{"snp bad firmware", "[snp]\nmeasurement = [\"" + measA + "\"]\nmin_firmware = \"1\"\n", "snp.min_firmware"},
		{"snp level out of range", "[snp]\nmeasurement = [\"" + measA + "\"]\nmin_tcb_tee = 256\n", "snp.min_tcb_tee"},
		{"snp vmpl out of range", "[snp]\nmeasurement = [\"" + measA + "\"]\nvmpl = 4\n", "snp.vmpl"},
		{"snp unknown key", "[snp]\nmeasurement = [\"" + measA + "\"]\nallow_debug = true\n", "unknown keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func h48(c byte) (h [48]byte) {
	for i := range h {
		h[i] = c
	}
	return
}

// TestTDXCheck: a result that passes, then each policy field broken in
// turn fails with that field's key.
func TestTDXCheck(t *testing.T) {
	attrs, mask := uint64(0x10000000), uint64(0xffffffff)
	xfam, xmask := uint64(0xe7), uint64(0xffff)
	min := [16]byte{3, 0, 5}
	cfg, own, ocfg, svc := h48(7), h48(8), h48(9), h48(0x5c)
	pol := &TDX{
		MRTD:         [][48]byte{h48(0xa), h48(0xb)},
		RTMR:         [4][][48]byte{{h48(0x10)}, {h48(0x11)}, {h48(0x12)}, {h48(0x13)}},
		MRSEAM:       [][48]byte{h48(0x5e)},
		TDAttributes: &attrs, TDAttributesMask: &mask,
		XFAM: &xfam, XFAMMask: &xmask,
		MinTEETCBSVN: &min,
		MRConfigID:   &cfg, MROwner: &own, MROwnerConfig: &ocfg,
		MRServiceTD: &svc,
	}
	good := func() *tdx.Result {
		return &tdx.Result{
			MRTD: h48(0xb), RTMR: [4][48]byte{h48(0x10), h48(0x11), h48(0x12), h48(0x13)}, MRSEAM: h48(0x5e),
			TDAttributes: attrs, XFAM: xfam, TEETCBSVN: [16]byte{3, 1, 5},
			MRConfigID: cfg, MROwner: own, MROwnerConfig: ocfg,
			BodyType: tdx.BodyTD15, MRServiceTD: svc,
		}
	}
	if err := pol.Check(good()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key    Key
		mutate func(r *tdx.Result)
	}{
		{KeyTDXDebug, func(r *tdx.Result) { r.TDAttributes |= tdx.AttrDebug }},
		{KeyTDXMRTD, func(r *tdx.Result) { r.MRTD[0] ^= 1 }},
		{KeyTDXRTMR0, func(r *tdx.Result) { r.RTMR[0][47] ^= 1 }},
		{KeyTDXRTMR1, func(r *tdx.Result) { r.RTMR[1][0] ^= 1 }},
		{KeyTDXRTMR2, func(r *tdx.Result) { r.RTMR[2][0] ^= 1 }},
		{KeyTDXRTMR3, func(r *tdx.Result) { r.RTMR[3][0] ^= 1 }},
		{KeyTDXMRSEAM, func(r *tdx.Result) { r.MRSEAM[3] ^= 1 }},
		{KeyTDXAttributes, func(r *tdx.Result) { r.TDAttributes |= 1 << 28 >> 1 }},
		{KeyTDXXFAM, func(r *tdx.Result) { r.XFAM ^= 2 }},
		{KeyTDXMinTEETCBSVN, func(r *tdx.Result) { r.TEETCBSVN[2] = 4 }},
		{KeyTDXMRConfigID, func(r *tdx.Result) { r.MRConfigID[0] ^= 1 }},
		{KeyTDXMROwner, func(r *tdx.Result) { r.MROwner[0] ^= 1 }},
		{KeyTDXMROwnerConfig, func(r *tdx.Result) { r.MROwnerConfig[0] ^= 1 }},
		{KeyTDXMRServiceTD, func(r *tdx.Result) { r.MRServiceTD[0] ^= 1 }},
		// A TDX 1.0 body has no MRSERVICETD to match the pinned value.
		{KeyTDXMRServiceTD, func(r *tdx.Result) { r.BodyType, r.MRServiceTD = tdx.BodyTD10, [48]byte{} }},
	} {
		r := good()
		tc.mutate(r)
		var me *MismatchError
		if err := pol.Check(r); !errors.As(err, &me) || me.Field != tc.key {
			t.Errorf("%s: Check = %v, want a mismatch on it", tc.key, err)
		}
	}
}

// TestSNPCheck: a result that passes, then each policy field broken in
// turn fails with that field's key.
func TestSNPCheck(t *testing.T) {
	hd := [32]byte{1}
	fam, img := [16]byte{2}, [16]byte{3}
	vmpl := uint32(0)
	pol := &SNP{
		Measurement: [][48]byte{h48(0xc)},
		MinTCB:      snp.TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115},
		MinFirmware: [2]uint8{1, 55},
		HostData:    &hd, FamilyID: &fam, ImageID: &img, VMPL: &vmpl,
	}
	good := func() *snp.Result {
		return &snp.Result{
			Measurement: h48(0xc), ReportedTCB: snp.TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115},
			FirmwareMajor: 1, FirmwareMinor: 55, HostData: hd, FamilyID: fam, ImageID: img, GuestPolicy: 0x30000,
		}
	}
	if err := pol.Check(good()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key    Key
		mutate func(r *snp.Result)
	}{
		{KeySNPDebug, func(r *snp.Result) { r.GuestPolicy |= snp.PolicyDebug }},
		{KeySNPMigrationMA, func(r *snp.Result) { r.GuestPolicy |= snp.PolicyMigrateMA }},
		{KeySNPMeasurement, func(r *snp.Result) { r.Measurement[0] ^= 1 }},
		{KeySNPMinTCB, func(r *snp.Result) { r.ReportedTCB.Bootloader = 2 }},
		{KeySNPMinTCB, func(r *snp.Result) { r.ReportedTCB.SNP = 7 }},
		{KeySNPMinTCB, func(r *snp.Result) { r.ReportedTCB.Microcode = 114 }},
		{KeySNPMinFirmware, func(r *snp.Result) { r.FirmwareMinor = 54 }},
		{KeySNPMinFirmware, func(r *snp.Result) { r.FirmwareMajor = 0; r.FirmwareMinor = 99 }},
		{KeySNPHostData, func(r *snp.Result) { r.HostData[31] = 1 }},
		{KeySNPFamilyID, func(r *snp.Result) { r.FamilyID[0] = 0 }},
		{KeySNPImageID, func(r *snp.Result) { r.ImageID[0] = 0 }},
		{KeySNPVMPL, func(r *snp.Result) { r.VMPL = 1 }},
	} {
		r := good()
		tc.mutate(r)
		var me *MismatchError
		if err := pol.Check(r); !errors.As(err, &me) || me.Field != tc.key {
			t.Errorf("%s: Check = %v, want a mismatch on it", tc.key, err)
		}
	}
}
