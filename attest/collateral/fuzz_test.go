package collateral_test

import (
	"bytes"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/collateral"
)

// FuzzParse: Parse never panics on hostile input, and what it accepts
// is written back to a bundle that parses to the same thing.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"format":"blindfold-collateral-bundle","version":1,"platforms":[{"tee":"sgx","fmspc":"00A067110000","ca":"processor","tcb_info":"","tcb_info_issuer_chain":"","qe_identity":"","qe_identity_issuer_chain":"","pck_crl":"","pck_crl_issuer_chain":"","root_ca_crl":""}]}`))
	f.Add([]byte(`{"format":"blindfold-collateral-bundle","version":1,"platforms":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := collateral.Parse(data)
		if err != nil {
			return
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("a parsed bundle does not marshal: %v", err)
		}
		again, err := collateral.Parse(out)
		if err != nil {
			t.Fatalf("a marshalled bundle does not parse: %v", err)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshal, parse, marshal changed the bundle: %v", err)
		}
	})
}
