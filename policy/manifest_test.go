package policy

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// TestManifestTOML: the manifest.toml written for a SIGSTRUCT's enclave
// holds exactly the keys BlindAI 0.6 reads, and read back (as 0.6 and
// Blindfold's clients read it) it accepts that enclave and refuses
// another, a debug one, and statuses 0.6 refuses.
func TestManifestTOML(t *testing.T) {
	f := gramineLike()
	p, err := FromSigstruct(makeSigstruct(t, f))
	if err != nil {
		t.Fatal(err)
	}
	text, err := p.ManifestTOML()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(text), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "allow_debug attributes_flags_hex attributes_mask_flags_hex attributes_mask_xfrm_hex attributes_xfrm_hex misc_mask_hex misc_select_hex mr_enclave"
	if strings.Join(keys, " ") != want {
		t.Fatalf("manifest.toml keys %v, want %s", keys, want)
	}
	if m["mr_enclave"] != "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" || m["allow_debug"] != false ||
		m["attributes_mask_flags_hex"] != "0xfffffffffffffffd" || m["attributes_mask_xfrm_hex"] != "0xffffffffffffff1b" {
		t.Fatalf("manifest.toml values:\n%s", text)
	}
	q, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if !q.BlindAI05 {
		t.Error("a manifest.toml is not read with BlindAI's TCB rules")
	}
	r := &abi.ReportBody{MRENCLAVE: f.mrenclave, AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 0x7}
	if err := q.CheckReport(r); err != nil {
		t.Fatalf("the enclave fails its own manifest: %v", err)
	}
	for _, st := range []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded} {
		if err := q.CheckStatus(st, []string{"INTEL-SA-00615"}); err != nil {
			t.Errorf("%s refused: %v", st, err)
		}
	}
	if err := q.CheckStatus(sgx.OutOfDate, nil); err == nil {
		t.Error("OutOfDate accepted")
	}
	other := *r
	other.MRENCLAVE[0] ^= 1
	if err := q.CheckReport(&other); !errors.Is(err, ErrMismatch) {
		t.Errorf("another enclave: %v", err)
	}
	debug := *r
	debug.AttributesFlags |= abi.AttributeDebug
	if err := q.CheckReport(&debug); !errors.Is(err, ErrMismatch) {
		t.Errorf("a debug enclave: %v", err)
	}
	signer := *p
	signer.MREnclave = nil
	if _, err := signer.ManifestTOML(); !errors.Is(err, ErrInvalid) {
		t.Errorf("a signer-only policy as manifest.toml: %v", err)
	}
}

// TestParseBlindAI06Manifest reads a manifest.toml as BlindAI 0.6 ships
// them (the keys in its order, without comments).
func TestParseBlindAI06Manifest(t *testing.T) {
	p, err := Parse([]byte(`mr_enclave = "83e8a0c8d9d4a8a9c6b2f7a7c04ba7bd7e0b8fa0b8c1a3f2d7f6e5d4c3b2a190"
allow_debug = false
attributes_flags_hex = "0x4"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_xfrm_hex = "0x3"
attributes_mask_xfrm_hex = "0xfffffffffff9ff1b"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.MREnclave == nil || p.MREnclave[0] != 0x83 || p.AttributesMaskXFRM != 0xfffffffffff9ff1b || p.AllowDebug || !p.BlindAI05 {
		t.Fatalf("%+v", p)
	}
}
