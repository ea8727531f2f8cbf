package policy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

// Keys of the [tdx] and [snp] sections, as MismatchError.Field reports them.
const (
	KeyTDXMRTD          Key = "tdx.mrtd"
	KeyTDXRTMR0         Key = "tdx.rtmr0"
	KeyTDXRTMR1         Key = "tdx.rtmr1"
	KeyTDXRTMR2         Key = "tdx.rtmr2"
	KeyTDXRTMR3         Key = "tdx.rtmr3"
	KeyTDXMRSEAM        Key = "tdx.mrseam"
	KeyTDXDebug         Key = "tdx.debug"
	KeyTDXAttributes    Key = "tdx.td_attributes"
	KeyTDXXFAM          Key = "tdx.xfam"
	KeyTDXMinTEETCBSVN  Key = "tdx.min_tee_tcb_svn"
	KeyTDXMRConfigID    Key = "tdx.mr_config_id"
	KeyTDXMROwner       Key = "tdx.mr_owner"
	KeyTDXMROwnerConfig Key = "tdx.mr_owner_config"
	KeyTDXMRServiceTD   Key = "tdx.mr_servicetd"

	KeySNPMeasurement Key = "snp.measurement"
	KeySNPDebug       Key = "snp.debug"
	KeySNPMigrationMA Key = "snp.migration_agent"
	KeySNPMinTCB      Key = "snp.min_tcb"
	KeySNPMinFirmware Key = "snp.min_firmware"
	KeySNPHostData    Key = "snp.host_data"
	KeySNPFamilyID    Key = "snp.family_id"
	KeySNPImageID     Key = "snp.image_id"
	KeySNPVMPL        Key = "snp.vmpl"
)

// TDX is the [tdx] section: what a TD must be. MRTD is required; every
// other key, when set, is checked. A debuggable TD is always refused.
//
// The measurements split into what the platform measures and what the
// image measures: MRTD (the TD firmware, TDVF) and RTMR0 (the firmware's
// configuration: ACPI tables, the TD HOB) come from the cloud's or host's
// firmware build; RTMR1 (the kernel and its boot loader), RTMR2 (the kernel
// command line and initrd) come from the guest image; RTMR3 is extended at
// run time.
type TDX struct {
	// MRTD lists the accepted TD firmware measurements (mrtd).
	MRTD [][48]byte
	// RTMR lists, per register 0..3, the accepted values (rtmr0..rtmr3);
	// an empty list does not check the register.
	RTMR [4][][48]byte
	// MRSEAM lists the accepted TDX modules (mrseam); empty: any module
	// the TCB info accepts.
	MRSEAM [][48]byte
	// TDAttributes must equal the TD attributes under TDAttributesMask
	// (td_attributes, td_attributes_mask); nil: not checked beyond debug.
	TDAttributes, TDAttributesMask *uint64
	// XFAM must equal the XFAM under XFAMMask (xfam, xfam_mask).
	XFAM, XFAMMask *uint64
	// MinTEETCBSVN is the lowest TEE_TCB_SVN accepted, byte by byte
	// (min_tee_tcb_svn).
	MinTEETCBSVN *[16]byte
	// MRConfigID, MROwner and MROwnerConfig pin the host-set values
	// (mr_config_id, mr_owner, mr_owner_config).
	MRConfigID, MROwner, MROwnerConfig *[48]byte
	// MRServiceTD pins the MRSERVICETD of a TD report 1.5 body
	// (mr_servicetd); a quote without one (TDX 1.0 body) is then refused.
	MRServiceTD *[48]byte
}

// SNP is the [snp] section: what an SEV-SNP guest must be. Measurement is
// required; every other key, when set, is checked. A guest whose policy
// allows debugging or a migration agent is always refused.
type SNP struct {
	// Measurement lists the accepted launch measurements (measurement).
	Measurement [][48]byte
	// MinTCB is the lowest reported TCB accepted (min_tcb_bootloader,
	// min_tcb_tee, min_tcb_snp, min_tcb_microcode).
	MinTCB snp.TCB
	// MinFirmware is the lowest firmware version accepted, major and
	// minor (min_firmware = "1.55").
	MinFirmware [2]uint8
	// HostData pins the host data given at launch (host_data).
	HostData *[32]byte
	// FamilyID and ImageID pin the ID block's values (family_id, image_id).
	FamilyID, ImageID *[16]byte
	// VMPL, when set, is the VM privilege level the report must come from
	// (vmpl).
	VMPL *uint32
}

type tdxFile struct {
	MRTD             []string `toml:"mrtd"`
	RTMR0            []string `toml:"rtmr0"`
	RTMR1            []string `toml:"rtmr1"`
	RTMR2            []string `toml:"rtmr2"`
	RTMR3            []string `toml:"rtmr3"`
	MRSEAM           []string `toml:"mrseam"`
	TDAttributes     *string  `toml:"td_attributes"`
	TDAttributesMask *string  `toml:"td_attributes_mask"`
	XFAM             *string  `toml:"xfam"`
	XFAMMask         *string  `toml:"xfam_mask"`
	MinTEETCBSVN     *string  `toml:"min_tee_tcb_svn"`
	MRConfigID       *string  `toml:"mr_config_id"`
	MROwner          *string  `toml:"mr_owner"`
	MROwnerConfig    *string  `toml:"mr_owner_config"`
	MRServiceTD      *string  `toml:"mr_servicetd"`
}

type snpFile struct {
	Measurement     []string `toml:"measurement"`
	MinTCBBoot      *int64   `toml:"min_tcb_bootloader"`
	MinTCBTEE       *int64   `toml:"min_tcb_tee"`
	MinTCBSNP       *int64   `toml:"min_tcb_snp"`
	MinTCBMicrocode *int64   `toml:"min_tcb_microcode"`
	MinFirmware     *string  `toml:"min_firmware"`
	HostData        *string  `toml:"host_data"`
	FamilyID        *string  `toml:"family_id"`
	ImageID         *string  `toml:"image_id"`
	VMPL            *int64   `toml:"vmpl"`
}

func fixedHex(key, s string, out []byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(out) {
		return invalid("%s = %q: want %d hex digits (%d bytes)", key, s, 2*len(out), len(out))
	}
	copy(out, b)
	return nil
}

func hashList(key string, in []string) ([][48]byte, error) {
	out := make([][48]byte, 0, len(in))
	for _, s := range in {
		var h [48]byte
		if err := fixedHex(key, s, h[:]); err != nil {
			return nil, err
		}
		if slices.Contains(out, h) {
			return nil, invalid("%s lists %s twice", key, s)
		}
		out = append(out, h)
	}
	return out, nil
}

func optHash48(key string, s *string) (*[48]byte, error) {
	if s == nil {
		return nil, nil
	}
	var h [48]byte
	if err := fixedHex(key, *s, h[:]); err != nil {
		return nil, err
	}
	return &h, nil
}

func optHex64(key string, s *string) (*uint64, error) {
	if s == nil {
		return nil, nil
	}
	v, err := parseHexUint(key, s, 64)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func parseTDX(f *tdxFile) (*TDX, error) {
	t := &TDX{}
	var err error
	if len(f.MRTD) == 0 {
		return nil, invalid("tdx.mrtd is required: list the accepted TD firmware measurements")
	}
	if t.MRTD, err = hashList("tdx.mrtd", f.MRTD); err != nil {
		return nil, err
	}
	for i, l := range [][]string{f.RTMR0, f.RTMR1, f.RTMR2, f.RTMR3} {
		if t.RTMR[i], err = hashList(fmt.Sprintf("tdx.rtmr%d", i), l); err != nil {
			return nil, err
		}
	}
	if t.MRSEAM, err = hashList("tdx.mrseam", f.MRSEAM); err != nil {
		return nil, err
	}
	if (f.TDAttributes == nil) != (f.TDAttributesMask == nil) {
		return nil, invalid("tdx.td_attributes and tdx.td_attributes_mask go together")
	}
	if t.TDAttributes, err = optHex64("tdx.td_attributes", f.TDAttributes); err != nil {
		return nil, err
	}
	if t.TDAttributesMask, err = optHex64("tdx.td_attributes_mask", f.TDAttributesMask); err != nil {
		return nil, err
	}
	if t.TDAttributes != nil && *t.TDAttributes&tdx.AttrDebug != 0 {
		return nil, invalid("tdx.td_attributes sets DEBUG (bit 0): a debuggable TD protects nothing and is always refused")
	}
	if (f.XFAM == nil) != (f.XFAMMask == nil) {
		return nil, invalid("tdx.xfam and tdx.xfam_mask go together")
	}
	if t.XFAM, err = optHex64("tdx.xfam", f.XFAM); err != nil {
		return nil, err
	}
	if t.XFAMMask, err = optHex64("tdx.xfam_mask", f.XFAMMask); err != nil {
		return nil, err
	}
	if f.MinTEETCBSVN != nil {
		var s [16]byte
		if err := fixedHex("tdx.min_tee_tcb_svn", *f.MinTEETCBSVN, s[:]); err != nil {
			return nil, err
		}
		t.MinTEETCBSVN = &s
	}
	if t.MRConfigID, err = optHash48("tdx.mr_config_id", f.MRConfigID); err != nil {
		return nil, err
	}
	if t.MROwner, err = optHash48("tdx.mr_owner", f.MROwner); err != nil {
		return nil, err
	}
	if t.MROwnerConfig, err = optHash48("tdx.mr_owner_config", f.MROwnerConfig); err != nil {
		return nil, err
	}
	if t.MRServiceTD, err = optHash48("tdx.mr_servicetd", f.MRServiceTD); err != nil {
		return nil, err
	}
	return t, nil
}

func level(key string, v *int64) (uint8, error) {
	if v == nil {
		return 0, nil
	}
	n, err := intRange(key, v, 255)
	return uint8(n), err
}

func parseSNP(f *snpFile) (*SNP, error) {
	s := &SNP{}
	var err error
	if len(f.Measurement) == 0 {
		return nil, invalid("snp.measurement is required: list the accepted launch measurements")
	}
	if s.Measurement, err = hashList("snp.measurement", f.Measurement); err != nil {
		return nil, err
	}
	if s.MinTCB.Bootloader, err = level("snp.min_tcb_bootloader", f.MinTCBBoot); err != nil {
		return nil, err
	}
	if s.MinTCB.TEE, err = level("snp.min_tcb_tee", f.MinTCBTEE); err != nil {
		return nil, err
	}
	if s.MinTCB.SNP, err = level("snp.min_tcb_snp", f.MinTCBSNP); err != nil {
		return nil, err
	}
	if s.MinTCB.Microcode, err = level("snp.min_tcb_microcode", f.MinTCBMicrocode); err != nil {
		return nil, err
	}
	if f.MinFirmware != nil {
		maj, min, ok := strings.Cut(*f.MinFirmware, ".")
		a, err1 := strconv.ParseUint(maj, 10, 8)
		b, err2 := strconv.ParseUint(min, 10, 8)
		if !ok || err1 != nil || err2 != nil {
			return nil, invalid("snp.min_firmware = %q: want MAJOR.MINOR such as \"1.55\"", *f.MinFirmware)
		}
		s.MinFirmware = [2]uint8{uint8(a), uint8(b)}
	}
	if f.HostData != nil {
		var h [32]byte
		if err := fixedHex("snp.host_data", *f.HostData, h[:]); err != nil {
			return nil, err
		}
		s.HostData = &h
	}
	for _, x := range []struct {
		key string
		in  *string
		out **[16]byte
	}{{"snp.family_id", f.FamilyID, &s.FamilyID}, {"snp.image_id", f.ImageID, &s.ImageID}} {
		if x.in != nil {
			var h [16]byte
			if err := fixedHex(x.key, *x.in, h[:]); err != nil {
				return nil, err
			}
			*x.out = &h
		}
	}
	if f.VMPL != nil {
		n, err := intRange("snp.vmpl", f.VMPL, 3)
		if err != nil {
			return nil, err
		}
		v := uint32(n)
		s.VMPL = &v
	}
	return s, nil
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func hexList(l [][48]byte) string {
	s := make([]string, len(l))
	for i := range l {
		s[i] = hx(l[i][:])
	}
	return "one of [" + strings.Join(s, ", ") + "]"
}

// Check checks a verified TDX quote against the section. It returns a
// *MismatchError on the first mismatch.
func (t *TDX) Check(r *tdx.Result) error {
	if t == nil || len(t.MRTD) == 0 {
		return &MismatchError{Field: KeyPolicy, Err: invalid("the policy has no [tdx] section with mrtd")}
	}
	if r == nil {
		return &MismatchError{Field: KeyResult, Want: "a verified quote", Got: "none"}
	}
	if r.TDAttributes&tdx.AttrDebug != 0 {
		return &MismatchError{Field: KeyTDXDebug, Want: "a TD without DEBUG", Got: fmt.Sprintf("td_attributes %#x (DEBUG: the host can read the TD)", r.TDAttributes)}
	}
	if !slices.Contains(t.MRTD, r.MRTD) {
		return &MismatchError{Field: KeyTDXMRTD, Want: hexList(t.MRTD), Got: hx(r.MRTD[:])}
	}
	keys := [4]Key{KeyTDXRTMR0, KeyTDXRTMR1, KeyTDXRTMR2, KeyTDXRTMR3}
	for i := range t.RTMR {
		if len(t.RTMR[i]) > 0 && !slices.Contains(t.RTMR[i], r.RTMR[i]) {
			return &MismatchError{Field: keys[i], Want: hexList(t.RTMR[i]), Got: hx(r.RTMR[i][:])}
		}
	}
	if len(t.MRSEAM) > 0 && !slices.Contains(t.MRSEAM, r.MRSEAM) {
		return &MismatchError{Field: KeyTDXMRSEAM, Want: hexList(t.MRSEAM), Got: hx(r.MRSEAM[:])}
	}
	if t.TDAttributes != nil && r.TDAttributes&*t.TDAttributesMask != *t.TDAttributes {
		return &MismatchError{Field: KeyTDXAttributes, Want: fmt.Sprintf("%#x under mask %#x", *t.TDAttributes, *t.TDAttributesMask), Got: fmt.Sprintf("%#x", r.TDAttributes)}
	}
	if t.XFAM != nil && r.XFAM&*t.XFAMMask != *t.XFAM {
		return &MismatchError{Field: KeyTDXXFAM, Want: fmt.Sprintf("%#x under mask %#x", *t.XFAM, *t.XFAMMask), Got: fmt.Sprintf("%#x", r.XFAM)}
	}
	if m := t.MinTEETCBSVN; m != nil {
		for i := range m {
			if r.TEETCBSVN[i] < m[i] {
				return &MismatchError{Field: KeyTDXMinTEETCBSVN, Want: ">= " + hx(m[:]) + " byte by byte", Got: hx(r.TEETCBSVN[:])}
			}
		}
	}
	for _, x := range []struct {
		key  Key
		want *[48]byte
		got  [48]byte
	}{{KeyTDXMRConfigID, t.MRConfigID, r.MRConfigID}, {KeyTDXMROwner, t.MROwner, r.MROwner}, {KeyTDXMROwnerConfig, t.MROwnerConfig, r.MROwnerConfig}} {
		if x.want != nil && *x.want != x.got {
			return &MismatchError{Field: x.key, Want: hx(x.want[:]), Got: hx(x.got[:])}
		}
	}
	if t.MRServiceTD != nil {
		if r.BodyType != tdx.BodyTD15 {
			return &MismatchError{Field: KeyTDXMRServiceTD, Want: hx(t.MRServiceTD[:]), Got: fmt.Sprintf("none: the quote's TD report body is of type %d, not a TDX 1.5 body", r.BodyType)}
		}
		if *t.MRServiceTD != r.MRServiceTD {
			return &MismatchError{Field: KeyTDXMRServiceTD, Want: hx(t.MRServiceTD[:]), Got: hx(r.MRServiceTD[:])}
		}
	}
	return nil
}

// Check checks a verified SEV-SNP report against the section. It returns
// a *MismatchError on the first mismatch.
func (s *SNP) Check(r *snp.Result) error {
	if s == nil || len(s.Measurement) == 0 {
		return &MismatchError{Field: KeyPolicy, Err: invalid("the policy has no [snp] section with measurement")}
	}
	if r == nil {
		return &MismatchError{Field: KeyResult, Want: "a verified report", Got: "none"}
	}
	if r.GuestPolicy&snp.PolicyDebug != 0 {
		return &MismatchError{Field: KeySNPDebug, Want: "a guest policy without DEBUG", Got: fmt.Sprintf("guest policy %#x (DEBUG: the host can read the guest)", r.GuestPolicy)}
	}
	if r.GuestPolicy&snp.PolicyMigrateMA != 0 {
		return &MismatchError{Field: KeySNPMigrationMA, Want: "a guest policy without MIGRATE_MA", Got: fmt.Sprintf("guest policy %#x (a migration agent can read the guest)", r.GuestPolicy)}
	}
	if !slices.Contains(s.Measurement, r.Measurement) {
		return &MismatchError{Field: KeySNPMeasurement, Want: hexList(s.Measurement), Got: hx(r.Measurement[:])}
	}
	if !r.ReportedTCB.AtLeast(s.MinTCB) {
		return &MismatchError{Field: KeySNPMinTCB, Want: fmt.Sprintf(">= %+v", s.MinTCB), Got: fmt.Sprintf("%+v", r.ReportedTCB)}
	}
	if r.FirmwareMajor < s.MinFirmware[0] || (r.FirmwareMajor == s.MinFirmware[0] && r.FirmwareMinor < s.MinFirmware[1]) {
		return &MismatchError{Field: KeySNPMinFirmware, Want: fmt.Sprintf(">= %d.%d", s.MinFirmware[0], s.MinFirmware[1]), Got: fmt.Sprintf("%d.%d", r.FirmwareMajor, r.FirmwareMinor)}
	}
	if s.HostData != nil && *s.HostData != r.HostData {
		return &MismatchError{Field: KeySNPHostData, Want: hx(s.HostData[:]), Got: hx(r.HostData[:])}
	}
	if s.FamilyID != nil && *s.FamilyID != r.FamilyID {
		return &MismatchError{Field: KeySNPFamilyID, Want: hx(s.FamilyID[:]), Got: hx(r.FamilyID[:])}
	}
	if s.ImageID != nil && *s.ImageID != r.ImageID {
		return &MismatchError{Field: KeySNPImageID, Want: hx(s.ImageID[:]), Got: hx(r.ImageID[:])}
	}
	if s.VMPL != nil && *s.VMPL != r.VMPL {
		return &MismatchError{Field: KeySNPVMPL, Want: strconv.FormatUint(uint64(*s.VMPL), 10), Got: strconv.FormatUint(uint64(r.VMPL), 10)}
	}
	return nil
}

func tomlHashList(l [][48]byte) string {
	s := make([]string, len(l))
	for i := range l {
		s[i] = hx(l[i][:])
	}
	return tomlList(s)
}

// tomlSections writes the [tdx] and [snp] sections.
func (p *Policy) tomlSections(b *bytes.Buffer) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if t := p.TDX; t != nil {
		w("\n# Intel TDX: a debuggable TD is always refused.\n[tdx]\n")
		w("mrtd = %s\n", tomlHashList(t.MRTD))
		for i := range t.RTMR {
			if len(t.RTMR[i]) > 0 {
				w("rtmr%d = %s\n", i, tomlHashList(t.RTMR[i]))
			}
		}
		if len(t.MRSEAM) > 0 {
			w("mrseam = %s\n", tomlHashList(t.MRSEAM))
		}
		if t.TDAttributes != nil {
			w("td_attributes = %s\ntd_attributes_mask = %s\n", tomlString(h64(*t.TDAttributes)), tomlString(h64(*t.TDAttributesMask)))
		}
		if t.XFAM != nil {
			w("xfam = %s\nxfam_mask = %s\n", tomlString(h64(*t.XFAM)), tomlString(h64(*t.XFAMMask)))
		}
		if t.MinTEETCBSVN != nil {
			w("min_tee_tcb_svn = %s\n", tomlString(hx(t.MinTEETCBSVN[:])))
		}
		for _, x := range []struct {
			k string
			v *[48]byte
		}{{"mr_config_id", t.MRConfigID}, {"mr_owner", t.MROwner}, {"mr_owner_config", t.MROwnerConfig}, {"mr_servicetd", t.MRServiceTD}} {
			if x.v != nil {
				w("%s = %s\n", x.k, tomlString(hx(x.v[:])))
			}
		}
	}
	if s := p.SNP; s != nil {
		w("\n# AMD SEV-SNP: a guest policy with DEBUG or MIGRATE_MA is always refused.\n[snp]\n")
		w("measurement = %s\n", tomlHashList(s.Measurement))
		w("min_tcb_bootloader = %d\nmin_tcb_tee = %d\nmin_tcb_snp = %d\nmin_tcb_microcode = %d\n", s.MinTCB.Bootloader, s.MinTCB.TEE, s.MinTCB.SNP, s.MinTCB.Microcode)
		w("min_firmware = %s\n", tomlString(fmt.Sprintf("%d.%d", s.MinFirmware[0], s.MinFirmware[1])))
		if s.HostData != nil {
			w("host_data = %s\n", tomlString(hx(s.HostData[:])))
		}
		if s.FamilyID != nil {
			w("family_id = %s\n", tomlString(hx(s.FamilyID[:])))
		}
		if s.ImageID != nil {
			w("image_id = %s\n", tomlString(hx(s.ImageID[:])))
		}
		if s.VMPL != nil {
			w("vmpl = %d\n", *s.VMPL)
		}
	}
}
