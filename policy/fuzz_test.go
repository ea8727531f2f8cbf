package policy

import (
	"bytes"
	"testing"
)

// FuzzParse loads arbitrary policy files: never a panic, and any policy
// that loads writes itself back (TOML) into a file that loads to the same
// policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`mr_enclave = "68823bc62f409ee33a32ea270cfe45d4b19a6fb3c8570d7bc186cbe062398e8f"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`))
	f.Add([]byte("mr_enclave = 1\n"))
	f.Add([]byte("[x]\ny = [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		out := p.TOML()
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("a loaded policy writes a file that does not load: %v\n%s", err, out)
		}
		if !bytes.Equal(q.TOML(), out) {
			t.Fatalf("policy changes on a write/load round trip:\n%s\n---\n%s", out, q.TOML())
		}
	})
}
