package policy

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

// TestVerifiedQuote runs synthetic evidence through the verifier and then
// the policy, as a client does.
func TestVerifiedQuote(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	b.TCBInfo.Levels[0].Status = "ConfigurationNeeded"
	b.TCBInfo.Levels[0].AdvisoryIDs = []string{"INTEL-SA-00289"}
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	text := `mr_enclave = "` + hex.EncodeToString(b.ReportBody.MRENCLAVE[:]) + `"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
max_collateral_age = "24h"
`
	p := mustParse(t, text)
	opts := sgx.Options{Now: func() time.Time { return now }, TestRoot: ev.Root}
	p.ApplyTo(&opts)
	res, err := sgx.Verify(ev.Quote, ev.Collateral, opts)
	if err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	if err := p.Check(res); !errors.As(err, &me) || me.Field != "accepted_tcb_statuses" {
		t.Fatalf("ConfigurationNeeded: err = %v", err)
	}
	p = mustParse(t, text+`accepted_tcb_statuses = ["UpToDate", "ConfigurationNeeded"]
accepted_advisory_ids = ["INTEL-SA-00289"]
`)
	if err := p.Check(res); err != nil {
		t.Fatal(err)
	}
}
