package policy

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// ManifestTOML renders the policy as BlindAI 0.6's manifest.toml: only the
// eight keys 0.6 clients read (mr_enclave, allow_debug, the ATTRIBUTES
// flags and XFRM with their masks, MISCSELECT with its mask), for the
// same enclave. 0.6 clients accept the TCB statuses UpToDate and
// SWHardeningNeeded with any advisory; Parse (and so Load and
// client.WithPolicy) reads a manifest.toml with those same rules (as a
// BlindAI 0.5 policy, the same keys). It needs MREnclave: 0.6 cannot pin
// a signer.
func (p *Policy) ManifestTOML() ([]byte, error) {
	if p == nil || p.MREnclave == nil {
		return nil, invalid("a BlindAI 0.6 manifest.toml pins mr_enclave, which this policy does not set")
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# BlindAI 0.6 manifest.toml for a Blindfold enclave (what 0.6 clients check).\n")
	w("# Blindfold's own clients read it too, with the same rules; policy.toml adds\n")
	w("# the TCB advisories accepted (see docs/migrating-from-blindai.md).\n")
	w("mr_enclave = %s\n", tomlString(hex.EncodeToString(p.MREnclave[:])))
	w("allow_debug = %t\n", p.AllowDebug)
	w("attributes_flags_hex = %s\n", tomlString(h64(p.AttributesFlags)))
	w("attributes_mask_flags_hex = %s\n", tomlString(h64(p.AttributesMaskFlags)))
	w("attributes_xfrm_hex = %s\n", tomlString(h64(p.AttributesXFRM)))
	w("attributes_mask_xfrm_hex = %s\n", tomlString(h64(p.AttributesMaskXFRM)))
	w("misc_select_hex = %s\n", tomlString(h32(p.MiscSelect)))
	w("misc_mask_hex = %s\n", tomlString(h32(p.MiscMask)))
	return b.Bytes(), nil
}
