package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

const mrHex = "68823bc62f409ee33a32ea270cfe45d4b19a6fb3c8570d7bc186cbe062398e8f"

const blindAIPolicy = `mr_enclave = "` + mrHex + `"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// report returns a report body that passes blindAIPolicy.
func report() *abi.ReportBody {
	r := &abi.ReportBody{MiscSelect: 0, AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 3}
	p, _ := parseHash("", mrHex)
	r.MRENCLAVE = *p
	return r
}

func TestParseBlindAIPolicy(t *testing.T) {
	p := mustParse(t, blindAIPolicy)
	if p.MiscMask != 0xffffffff || p.AttributesFlags != 4 || p.AttributesXFRM != 3 || p.AttributesMaskFlags != 0xfffffffffffffffd || p.AttributesMaskXFRM != 0xffffffffffffff1b || p.AllowDebug {
		t.Fatalf("%+v", p)
	}
	if !reflect.DeepEqual(p.AcceptedTCBStatuses, []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}) {
		t.Errorf("default statuses %v", p.AcceptedTCBStatuses)
	}
	if p.AcceptedAdvisoryIDs != nil || p.MREnclave == nil || p.MRSigner != nil {
		t.Errorf("%+v", p)
	}
	if err := p.CheckReport(report()); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown key", blindAIPolicy + "mr_enclve = \"x\"\n", "unknown keys mr_enclve"},
		{"no identity", strings.Replace(blindAIPolicy, "mr_enclave", "# mr_enclave", 1), "neither mr_enclave nor mr_signer"},
		{"both identities", blindAIPolicy + "mr_signer = \"" + mrHex + "\"\nisv_prod_id = 1\nmin_isv_svn = 0\n", "both set"},
		{"signer without product", strings.Replace(blindAIPolicy, "mr_enclave", "mr_signer", 1) + "min_isv_svn = 0\n", "isv_prod_id is required"},
		{"signer without svn", strings.Replace(blindAIPolicy, "mr_enclave", "mr_signer", 1) + "isv_prod_id = 0\n", "min_isv_svn is required"},
		{"product with mr_enclave", blindAIPolicy + "isv_prod_id = 1\n", "go with mr_signer"},
		{"short mr_enclave", strings.Replace(blindAIPolicy, mrHex, mrHex[:62], 1), "64 hex digits"},
		{"missing allow_debug", strings.Replace(blindAIPolicy, "allow_debug = false\n", "", 1), "allow_debug is required"},
		{"missing mask", strings.Replace(blindAIPolicy, "misc_mask_hex = \"0xffffffff\"\n", "", 1), "misc_mask_hex is required"},
		{"hex without 0x", strings.Replace(blindAIPolicy, `"0x4"`, `"4"`, 1), "starting with 0x"},
		{"misc over 32 bits", strings.Replace(blindAIPolicy, `misc_mask_hex = "0xffffffff"`, `misc_mask_hex = "0x1ffffffff"`, 1), "32-bit"},
		{"bad hex", strings.Replace(blindAIPolicy, `"0x3"`, `"0xg"`, 1), "not a 64-bit"},
		{"wrong type", strings.Replace(blindAIPolicy, "allow_debug = false", "allow_debug = \"no\"", 1), "invalid policy"},
		{"unknown status", blindAIPolicy + "accepted_tcb_statuses = [\"Fine\"]\n", "unknown TCB status"},
		{"empty statuses", blindAIPolicy + "accepted_tcb_statuses = []\n", "empty"},
		{"bad duration", blindAIPolicy + "max_collateral_age = \"30 days\"\n", "max_collateral_age"},
		{"negative eval number", blindAIPolicy + "min_tcb_evaluation_data_number = -1\n", "out of range"},
		{"not TOML", "mr_enclave = ", "invalid policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckReportRules(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		mod    func(r *abi.ReportBody)
		field  string
	}{
		{"matches", blindAIPolicy, nil, ""},
		{"other MRENCLAVE", blindAIPolicy, func(r *abi.ReportBody) { r.MRENCLAVE[31] ^= 1 }, "mr_enclave"},
		{"debug refused", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesFlags |= abi.AttributeDebug }, "allow_debug"},
		{"debug allowed", strings.Replace(blindAIPolicy, "allow_debug = false", "allow_debug = true", 1), func(r *abi.ReportBody) { r.AttributesFlags |= abi.AttributeDebug }, ""},
		{"INIT missing", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesFlags &^= abi.AttributeInit }, "attributes_flags_hex"},
		{"MODE64BIT missing", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesFlags &^= abi.AttributeMode64Bit }, "attributes_flags_hex"},
		{"PROVISIONKEY set", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesFlags |= abi.AttributeProvisionKey }, "attributes_flags_hex"},
		{"flag outside the mask", strings.Replace(blindAIPolicy, "0xfffffffffffffffd", "0xffffffffffffffed", 1), func(r *abi.ReportBody) { r.AttributesFlags |= abi.AttributeProvisionKey }, ""},
		{"XFRM lacks SSE", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesXFRM = 1 }, "attributes_xfrm_hex"},
		{"XFRM bit outside the mask", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesXFRM |= 0x4 }, ""},
		{"XFRM bit 0x40 outside the mask", blindAIPolicy, func(r *abi.ReportBody) { r.AttributesXFRM |= 0xe0 }, ""},
		{"MISCSELECT differs", blindAIPolicy, func(r *abi.ReportBody) { r.MiscSelect = 1 }, "misc_select_hex"},
		{"MISCSELECT outside the mask", strings.Replace(blindAIPolicy, `misc_mask_hex = "0xffffffff"`, `misc_mask_hex = "0xfffffffe"`, 1), func(r *abi.ReportBody) { r.MiscSelect = 1 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			r := report()
			if tc.mod != nil {
				tc.mod(r)
			}
			err := p.CheckReport(r)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) || me.Field != tc.field || !errors.Is(err, ErrMismatch) {
				t.Fatalf("err = %v, want a mismatch on %s", err, tc.field)
			}
			if me.Want == "" || me.Got == "" {
				t.Errorf("empty want/got: %+v", me)
			}
		})
	}
}

const signerPolicy = `mr_signer = "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a"
isv_prod_id = 3
min_isv_svn = 5
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`

func TestCheckSigner(t *testing.T) {
	p := mustParse(t, signerPolicy)
	ok := func() *abi.ReportBody {
		r := report()
		r.MRENCLAVE = [32]byte{1} // any enclave the key signs
		s, _ := parseHash("", "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a")
		r.MRSIGNER, r.ISVProdID, r.ISVSVN = *s, 3, 5
		return r
	}
	if err := p.CheckReport(ok()); err != nil {
		t.Fatal(err)
	}
	r := ok()
	r.ISVSVN = 9
	if err := p.CheckReport(r); err != nil {
		t.Fatalf("newer version refused: %v", err)
	}
	for field, mod := range map[string]func(r *abi.ReportBody){
		"mr_signer":   func(r *abi.ReportBody) { r.MRSIGNER[0] ^= 1 },
		"isv_prod_id": func(r *abi.ReportBody) { r.ISVProdID = 4 },
		"min_isv_svn": func(r *abi.ReportBody) { r.ISVSVN = 4 },
	} {
		r := ok()
		mod(r)
		var me *MismatchError
		if err := p.CheckReport(r); !errors.As(err, &me) || me.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}

func result(status sgx.TCBStatus, adv ...string) *sgx.Result {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	return &sgx.Result{
		ReportBody: report(), Status: status, AdvisoryIDs: adv,
		TCBEvaluationDataNumber: 17, QEIdentityTCBEvaluationDataNumber: 16,
		TCBInfoIssueDate: now.Add(-48 * time.Hour), QEIdentityIssueDate: now.Add(-24 * time.Hour), VerifiedAt: now,
	}
}

func TestCheckResult(t *testing.T) {
	base := blindAIPolicy
	tests := []struct {
		name  string
		extra string
		res   *sgx.Result
		field string
	}{
		{"UpToDate", "", result(sgx.UpToDate), ""},
		{"SWHardeningNeeded", "", result(sgx.SWHardeningNeeded, "INTEL-SA-00615"), ""},
		{"ConfigurationAndSWHardeningNeeded refused by default", "", result(sgx.ConfigurationAndSWHardeningNeeded), "accepted_tcb_statuses"},
		{"OutOfDate refused", "", result(sgx.OutOfDate), "accepted_tcb_statuses"},
		{"Revoked refused", "", result(sgx.Revoked), "accepted_tcb_statuses"},
		{"accepted by the policy", `accepted_tcb_statuses = ["UpToDate", "ConfigurationAndSWHardeningNeeded"]` + "\n", result(sgx.ConfigurationAndSWHardeningNeeded, "INTEL-SA-00289"), ""},
		{"narrower list", `accepted_tcb_statuses = ["UpToDate"]` + "\n", result(sgx.SWHardeningNeeded), "accepted_tcb_statuses"},
		{"advisories within", `accepted_advisory_ids = ["INTEL-SA-00615", "INTEL-SA-00289"]` + "\n", result(sgx.SWHardeningNeeded, "INTEL-SA-00615"), ""},
		{"advisory outside", `accepted_advisory_ids = ["INTEL-SA-00615"]` + "\n", result(sgx.SWHardeningNeeded, "INTEL-SA-00615", "INTEL-SA-00657"), "accepted_advisory_ids"},
		{"no advisories accepted", `accepted_advisory_ids = []` + "\n", result(sgx.SWHardeningNeeded, "INTEL-SA-00615"), "accepted_advisory_ids"},
		{"evaluation data number", "min_tcb_evaluation_data_number = 16\n", result(sgx.UpToDate), ""},
		{"QE evaluation data number too low", "min_tcb_evaluation_data_number = 17\n", result(sgx.UpToDate), "min_tcb_evaluation_data_number"},
		{"collateral young enough", "max_collateral_age = \"72h\"\n", result(sgx.UpToDate), ""},
		{"collateral too old", "max_collateral_age = \"36h\"\n", result(sgx.UpToDate), "max_collateral_age"},
		{"report mismatch first", "", func() *sgx.Result { r := result(sgx.UpToDate); r.ReportBody.MRENCLAVE[0] ^= 1; return r }(), "mr_enclave"},
		{"nil result", "", nil, "result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, base+tc.extra)
			err := p.Check(tc.res)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) || me.Field != tc.field {
				t.Fatalf("err = %v, want a mismatch on %s", err, tc.field)
			}
		})
	}
}

func TestTOMLRoundTrip(t *testing.T) {
	for _, text := range []string{
		blindAIPolicy,
		signerPolicy,
		blindAIPolicy + "accepted_tcb_statuses = [\"UpToDate\"]\naccepted_advisory_ids = [\"INTEL-SA-00615\", \"A\\\"B\"]\nmin_tcb_evaluation_data_number = 17\nmax_collateral_age = \"720h\"\n",
		blindAIPolicy + "accepted_advisory_ids = []\n",
	} {
		p := mustParse(t, text)
		out := p.TOML()
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n%s", p, q, out)
		}
		if string(q.TOML()) != string(out) {
			t.Fatal("TOML output is not stable")
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(blindAIPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestApplyTo(t *testing.T) {
	p := mustParse(t, blindAIPolicy+"min_tcb_evaluation_data_number = 17\nmax_collateral_age = \"720h\"\n")
	var o sgx.Options
	p.ApplyTo(&o)
	if o.MinTCBEvaluationDataNumber != 17 || o.MaxCollateralAge != 720*time.Hour {
		t.Fatalf("%+v", o)
	}
	o.MaxCollateralAge = time.Hour
	p.ApplyTo(&o)
	if o.MaxCollateralAge != time.Hour {
		t.Fatal("ApplyTo loosened a stricter option")
	}
}
