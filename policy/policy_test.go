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
	// BlindAI 0.5's format keeps BlindAI's behaviour, and says so.
	if !p.BlindAI05 || !reflect.DeepEqual(p.AcceptedTCBStatuses, []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}) {
		t.Errorf("BlindAI 0.5 policy: BlindAI05 %t, statuses %v", p.BlindAI05, p.AcceptedTCBStatuses)
	}
	if p.AcceptedAdvisoryIDs != nil || p.MREnclave == nil || p.MRSigner != nil {
		t.Errorf("%+v", p)
	}
	if err := p.CheckReport(report()); err != nil {
		t.Fatal(err)
	}
	w := p.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "BlindAI 0.5") || !strings.Contains(w[0], "UpToDate, SWHardeningNeeded") || !strings.Contains(w[0], "ANY security advisory") {
		t.Errorf("warnings %q do not say what a BlindAI 0.5 policy accepts", w)
	}
	why, err := p.ExplainStatus(sgx.SWHardeningNeeded, []string{"INTEL-SA-00334"})
	if err != nil || !strings.Contains(why, "BlindAI 0.5") || !strings.Contains(why, "INTEL-SA-00334") {
		t.Errorf("ExplainStatus = %q, %v", why, err)
	}
	// Any Blindfold key makes it a Blindfold policy, with the strict default.
	for _, extra := range []string{"max_collateral_age = \"720h\"\n", "accepted_advisory_ids = []\n", "min_tcb_evaluation_data_number = 1\n"} {
		q := mustParse(t, blindAIPolicy+extra)
		if q.BlindAI05 || len(q.Warnings()) != 0 || !reflect.DeepEqual(q.AcceptedTCBStatuses, []sgx.TCBStatus{sgx.UpToDate}) {
			t.Errorf("%q: BlindAI05 %t, statuses %v", extra, q.BlindAI05, q.AcceptedTCBStatuses)
		}
		if err := q.CheckStatus(sgx.SWHardeningNeeded, nil); err == nil {
			t.Errorf("%q: SWHardeningNeeded accepted by default", extra)
		}
	}
}

// TestDefaultAcceptsOnlyUpToDate: a policy without accepted_tcb_statuses
// (or built in code without AcceptedTCBStatuses) accepts UpToDate with no
// advisory, and nothing else.
func TestDefaultAcceptsOnlyUpToDate(t *testing.T) {
	if !reflect.DeepEqual(DefaultAcceptedTCBStatuses, []sgx.TCBStatus{sgx.UpToDate}) {
		t.Fatalf("DefaultAcceptedTCBStatuses = %v", DefaultAcceptedTCBStatuses)
	}
	mr := [32]byte{1}
	p := &Policy{MREnclave: &mr}
	if err := p.CheckStatus(sgx.UpToDate, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		st  sgx.TCBStatus
		adv []string
	}{
		{sgx.SWHardeningNeeded, []string{"INTEL-SA-00615"}},
		{sgx.SWHardeningNeeded, nil},
		{sgx.UpToDate, []string{"INTEL-SA-00999"}},
		{sgx.ConfigurationNeeded, nil},
		{sgx.OutOfDate, nil},
		{sgx.Revoked, nil},
	} {
		if err := p.CheckStatus(tc.st, tc.adv); err == nil {
			t.Errorf("default policy accepts %s with %v", tc.st, tc.adv)
		}
	}
}

// TestStatusNeedsAdvisories: accepting a status other than UpToDate must
// name the advisories accepted, in a file or in code; a policy.toml that
// lists SWHardeningNeeded alone (as those generated before did) is refused
// with a message that says what to do.
func TestStatusNeedsAdvisories(t *testing.T) {
	_, err := Parse([]byte(blindAIPolicy + `accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]` + "\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "accepted_advisory_ids") || !strings.Contains(err.Error(), "SWHardeningNeeded") {
		t.Fatalf("err = %v", err)
	}
	mr := [32]byte{1}
	p := &Policy{MREnclave: &mr, AcceptedTCBStatuses: []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}}
	if err := p.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate: %v", err)
	}
	var me *MismatchError
	if err := p.CheckStatus(sgx.SWHardeningNeeded, nil); !errors.As(err, &me) || me.Field != KeyPolicy || !errors.Is(err, ErrInvalid) {
		t.Fatalf("CheckStatus with an invalid policy: %v", err)
	}
	if err := p.Check(result(sgx.UpToDate)); !errors.As(err, &me) || me.Field != KeyPolicy {
		t.Fatalf("Check with an invalid policy: %v", err)
	}
	p.AcceptedAdvisoryIDs = []string{"INTEL-SA-00615"}
	why, err := p.ExplainStatus(sgx.SWHardeningNeeded, []string{"INTEL-SA-00615"})
	if err != nil || !strings.Contains(why, "accepted_tcb_statuses") || !strings.Contains(why, "INTEL-SA-00615") {
		t.Fatalf("ExplainStatus = %q, %v", why, err)
	}
	if err := p.CheckStatus(sgx.SWHardeningNeeded, []string{"INTEL-SA-00615", "INTEL-SA-00334"}); !errors.As(err, &me) || me.Field != KeyAcceptedAdvisoryIDs {
		t.Fatalf("unknown advisory: %v", err)
	}
}

// TestRevokedNeverPasses: Revoked is refused at parse, by Validate, and by
// CheckStatus whatever the policy lists (even a BlindAI 0.5 policy).
func TestRevokedNeverPasses(t *testing.T) {
	_, err := Parse([]byte(blindAIPolicy + `accepted_tcb_statuses = ["UpToDate", "Revoked"]` + "\naccepted_advisory_ids = [\"INTEL-SA-00615\"]\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Revoked") {
		t.Fatalf("Parse: %v", err)
	}
	mr := [32]byte{1}
	p := &Policy{MREnclave: &mr, AcceptedTCBStatuses: []sgx.TCBStatus{sgx.Revoked}, AcceptedAdvisoryIDs: []string{"INTEL-SA-00615"}}
	if err := p.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate: %v", err)
	}
	if err := p.CheckStatus(sgx.Revoked, nil); err == nil {
		t.Fatal("Revoked passed")
	}
	for _, q := range []*Policy{mustParse(t, blindAIPolicy), &Policy{MREnclave: &mr}} {
		if err := q.CheckStatus(sgx.Revoked, nil); !errors.Is(err, ErrMismatch) {
			t.Fatalf("Revoked: %v", err)
		}
	}
}

// TestBothMeasurements: a policy with both MRENCLAVE and MRSIGNER checks
// both, from a file or from code.
func TestBothMeasurements(t *testing.T) {
	signer := "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a"
	p := mustParse(t, blindAIPolicy+"mr_signer = \""+signer+"\"\nisv_prod_id = 3\nmin_isv_svn = 5\n")
	if p.MREnclave == nil || p.MRSigner == nil || p.BlindAI05 {
		t.Fatalf("%+v", p)
	}
	ok := func() *abi.ReportBody {
		r := report()
		s, _ := parseHash("", signer)
		r.MRSIGNER, r.ISVProdID, r.ISVSVN = *s, 3, 5
		return r
	}
	if err := p.CheckReport(ok()); err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	r := ok()
	r.MRSIGNER[0] ^= 1
	if err := p.CheckReport(r); !errors.As(err, &me) || me.Field != KeyMRSigner {
		t.Errorf("other signer: %v", err)
	}
	r = ok()
	r.MRENCLAVE[0] ^= 1
	if err := p.CheckReport(r); !errors.As(err, &me) || me.Field != KeyMREnclave {
		t.Errorf("other enclave: %v", err)
	}
	// Built in code.
	mr, sg := *p.MREnclave, *p.MRSigner
	q := &Policy{MREnclave: &mr, MRSigner: &sg, ISVProdID: 3, MinISVSVN: 5, AttributesFlags: p.AttributesFlags, AttributesMaskFlags: p.AttributesMaskFlags, AttributesXFRM: p.AttributesXFRM, AttributesMaskXFRM: p.AttributesMaskXFRM, MiscMask: p.MiscMask}
	r = ok()
	r.MRSIGNER[0] ^= 1
	if err := q.CheckReport(r); !errors.As(err, &me) || me.Field != KeyMRSigner {
		t.Errorf("code policy, other signer: %v", err)
	}
	r = ok()
	r.ISVSVN = 4
	if err := q.CheckReport(r); !errors.As(err, &me) || me.Field != KeyMinISVSVN {
		t.Errorf("code policy, old version: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown key", blindAIPolicy + "mr_enclve = \"x\"\n", "unknown keys mr_enclve"},
		{"no identity", strings.Replace(blindAIPolicy, "mr_enclave", "# mr_enclave", 1), "neither mr_enclave nor mr_signer"},
		{"Revoked", blindAIPolicy + "accepted_tcb_statuses = [\"Revoked\"]\n", "Revoked"},
		{"duplicate status", blindAIPolicy + "accepted_tcb_statuses = [\"UpToDate\", \"UpToDate\"]\n", "twice"},
		{"duplicate advisory", blindAIPolicy + "accepted_advisory_ids = [\"A\", \"A\"]\n", "twice"},
		{"empty advisory", blindAIPolicy + "accepted_advisory_ids = [\"\"]\n", "advisory ID"},
		{"status without advisories", blindAIPolicy + "accepted_tcb_statuses = [\"UpToDate\", \"OutOfDate\"]\n", "accepted_advisory_ids does not name"},
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
			if !errors.As(err, &me) || me.Field != Key(tc.field) || !errors.Is(err, ErrMismatch) {
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
		if err := p.CheckReport(r); !errors.As(err, &me) || me.Field != Key(field) {
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
		{"BlindAI 0.5: SWHardeningNeeded", "", result(sgx.SWHardeningNeeded, "INTEL-SA-00615"), ""},
		{"BlindAI 0.5: ConfigurationAndSWHardeningNeeded refused", "", result(sgx.ConfigurationAndSWHardeningNeeded), "accepted_tcb_statuses"},
		{"BlindAI 0.5: OutOfDate refused", "", result(sgx.OutOfDate), "accepted_tcb_statuses"},
		{"BlindAI 0.5: Revoked refused", "", result(sgx.Revoked), "accepted_tcb_statuses"},
		{"default: SWHardeningNeeded refused", "accepted_advisory_ids = []\n", result(sgx.SWHardeningNeeded), "accepted_tcb_statuses"},
		{"default: UpToDate with an advisory refused", "accepted_advisory_ids = []\n", result(sgx.UpToDate, "INTEL-SA-00657"), "accepted_advisory_ids"},
		{"accepted by the policy", `accepted_tcb_statuses = ["UpToDate", "ConfigurationAndSWHardeningNeeded"]` + "\n" + `accepted_advisory_ids = ["INTEL-SA-00289"]` + "\n", result(sgx.ConfigurationAndSWHardeningNeeded, "INTEL-SA-00289"), ""},
		{"narrower list", `accepted_tcb_statuses = ["UpToDate"]` + "\n", result(sgx.SWHardeningNeeded), "accepted_tcb_statuses"},
		{"advisories within", `accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]` + "\n" + `accepted_advisory_ids = ["INTEL-SA-00615", "INTEL-SA-00289"]` + "\n", result(sgx.SWHardeningNeeded, "INTEL-SA-00615"), ""},
		{"advisory outside", `accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]` + "\n" + `accepted_advisory_ids = ["INTEL-SA-00615"]` + "\n", result(sgx.SWHardeningNeeded, "INTEL-SA-00615", "INTEL-SA-00657"), "accepted_advisory_ids"},
		{"no advisories accepted", `accepted_advisory_ids = []` + "\n", result(sgx.UpToDate, "INTEL-SA-00615"), "accepted_advisory_ids"},
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
			if !errors.As(err, &me) || me.Field != Key(tc.field) {
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
		blindAIPolicy + "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00615\"]\n",
		blindAIPolicy + "mr_signer = \"" + mrHex + "\"\nisv_prod_id = 1\nmin_isv_svn = 0\n",
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
