package ear_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
)

// validEAR is a claims set that follows the draft and the profile.
const validEAR = `{
  "eat_profile": "tag:github.com,2023:veraison/ear",
  "iat": 1666091373,
  "ear.verifier-id": {"developer": "https://example.org", "build": "v1"},
  "eat_nonce": "MTIzNDU2Nzg5MDEy",
  "ear.raw-evidence": "3q2-7w",
  "submods": {
    "platform": {
      "ear.status": "warning",
      "ear.trustworthiness-vector": {"instance-identity": 2, "hardware": 32},
      "ear.appraisal-policy-id": "policy://x",
      "ear.blindfold.annotated-evidence": {"a": "b", "c": true, "d": ["e"]},
      "ear.blindfold.warnings": ["w"],
      "ear.other.extension": {"any": [1, 2.5, null]}
    }
  },
  "ear.other.top": 3
}`

// TestValidate: the schema check accepts a claims set that follows the
// draft and refuses each way of breaking it.
func TestValidate(t *testing.T) {
	if err := ear.Validate([]byte(validEAR)); err != nil {
		t.Fatalf("valid EAR refused: %v", err)
	}
	r, err := ear.Parse([]byte(validEAR))
	if err != nil {
		t.Fatal(err)
	}
	if r.Submods["platform"].Evidence["d"].([]string)[0] != "e" || string(r.RawEvidence) != "\xde\xad\xbe\xef" || r.Status() != ear.StatusWarning {
		t.Fatalf("parsed %+v", r)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"other profile", `"tag:github.com,2023:veraison/ear"`, `"tag:github.com,2022:veraison/ear"`, "eat_profile is"},
		{"no profile", `"eat_profile": "tag:github.com,2023:veraison/ear",`, ``, "eat_profile is missing"},
		{"iat a string", `"iat": 1666091373`, `"iat": "1666091373"`, "iat is a string"},
		{"iat a fraction", `"iat": 1666091373`, `"iat": 1666091373.5`, "want an integer"},
		{"no iat", `"iat": 1666091373,`, ``, "iat is missing"},
		{"no verifier id", `"ear.verifier-id": {"developer": "https://example.org", "build": "v1"},`, ``, "ear.verifier-id is missing"},
		{"empty build", `"build": "v1"`, `"build": ""`, "build is empty"},
		{"no developer", `"developer": "https://example.org", `, ``, "developer is missing"},
		{"extra verifier member", `"build": "v1"}`, `"build": "v1", "x": "y"}`, "members other than"},
		{"short nonce", `"MTIzNDU2Nzg5MDEy"`, `"MTIz"`, "eat_nonce has 4 characters"},
		{"long nonce", `"MTIzNDU2Nzg5MDEy"`, `"` + strings.Repeat("a", 89) + `"`, "eat_nonce has 89"},
		{"nonce a number", `"MTIzNDU2Nzg5MDEy"`, `12345678`, "eat_nonce is a number"},
		{"empty nonce array", `"MTIzNDU2Nzg5MDEy"`, `[]`, "array of 0 nonces"},
		{"raw evidence padded", `"3q2-7w"`, `"3q2-7w=="`, "base64url"},
		{"raw evidence std base64", `"3q2-7w"`, `"3q2+7w"`, "base64url"},
		{"no submods", `"submods": {`, `"x": {`, "submods is missing"},
		{"empty submods", `"submods": {`, `"submods": {}, "y": {`, "submods is empty"},
		{"empty submod name", `"platform": {`, `"": {`, "empty name"},
		{"submod not an object", `"submods": {`, `"submods": {"s": 1,`, `submod "s" is a number`},
		{"no status", `"ear.status": "warning",`, ``, "ear.status is missing"},
		{"unknown status", `"ear.status": "warning"`, `"ear.status": "good"`, `ear.status is "good"`},
		{"status better than its vector", `"ear.status": "warning"`, `"ear.status": "affirming"`, "more trustworthy than the worst claim"},
		{"status none with claims", `"ear.status": "warning"`, `"ear.status": "none"`, "more trustworthy"},
		{"claim out of range", `"hardware": 32`, `"hardware": 128`, "want -128 to 127"},
		{"claim a string", `"hardware": 32`, `"hardware": "32"`, "want an integer"},
		{"unknown claim", `"hardware": 32`, `"firmware": 32`, `unknown claim "firmware"`},
		{"empty vector", `{"instance-identity": 2, "hardware": 32}`, `{}`, "ear.trustworthiness-vector is empty"},
		{"policy id a number", `"policy://x"`, `7`, "ear.appraisal-policy-id is a number"},
		{"annotated evidence a number", `"c": true`, `"c": 1`, `"c" is a number`},
		{"annotated evidence nested", `"d": ["e"]`, `"d": [["e"]]`, `"d" holds an array`},
		{"warnings a string", `["w"]`, `"w"`, "ear.blindfold.warnings is a string"},
		{"duplicate member", `"iat": 1666091373,`, `"iat": 1666091373, "iat": 1,`, `"iat" appears twice`},
		{"duplicate nested member", `"ear.status": "warning",`, `"ear.status": "warning", "ear.status": "affirming",`, "appears twice"},
		{"trailing data", `"ear.other.top": 3
}`, `"ear.other.top": 3
} {}`, "data after"},
		{"not an object", `{
  "eat_profile"`, `[{
  "eat_profile"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(validEAR, tc.old, tc.new, 1)
			if doc == validEAR {
				t.Fatalf("%q not in the document", tc.old)
			}
			err := ear.Validate([]byte(doc))
			if !errors.Is(err, ear.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if _, err := ear.Parse([]byte(doc)); err == nil {
				t.Fatal("Parse accepted it")
			}
		})
	}
	if err := ear.Validate([]byte(strings.Repeat(" ", ear.MaxSize+1))); !errors.Is(err, ear.ErrInvalid) {
		t.Fatalf("oversized: %v", err)
	}
	if err := ear.Validate([]byte(strings.Repeat("[", 40) + strings.Repeat("]", 40))); !errors.Is(err, ear.ErrInvalid) {
		t.Fatalf("deep: %v", err)
	}
}

// TestClaimTiers: AR4SI's ranges of each tier, at their bounds.
func TestClaimTiers(t *testing.T) {
	for _, tc := range []struct {
		claims []ear.Claim
		want   ear.Status
	}{
		{[]ear.Claim{-1, 0, 1}, ear.StatusNone},
		{[]ear.Claim{2, 31, -2, -32}, ear.StatusAffirming},
		{[]ear.Claim{32, 95, -33, -96}, ear.StatusWarning},
		{[]ear.Claim{96, 127, -97, -128}, ear.StatusContraindicated},
	} {
		for _, c := range tc.claims {
			if got := c.Tier(); got != tc.want {
				t.Errorf("claim %d: tier %s, want %s", c, got, tc.want)
			}
		}
	}
}

// TestSGXStatusMapping: the documented table from the TCB status (and
// open advisories) to the platform's claims and status, for a policy that
// accepts every status but Revoked; the enclave's claims follow its DEBUG
// attribute.
func TestSGXStatusMapping(t *testing.T) {
	rb := abi.ReportBody{AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 3}
	rb.MRENCLAVE[0] = 1
	all := `accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"]
accepted_advisory_ids = ["INTEL-SA-00001"]
`
	tests := []struct {
		status     sgx.TCBStatus
		advisories []string
		crls       bool
		debug      bool
		tv         ear.TrustVector
		want       ear.Status
	}{
		{sgx.UpToDate, nil, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 2, Configuration: 2}, ear.StatusAffirming},
		{sgx.UpToDate, []string{"INTEL-SA-00001"}, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 2}, ear.StatusWarning},
		{sgx.SWHardeningNeeded, []string{"INTEL-SA-00001"}, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 2}, ear.StatusWarning},
		{sgx.ConfigurationNeeded, nil, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 2, Configuration: 32}, ear.StatusWarning},
		{sgx.ConfigurationAndSWHardeningNeeded, nil, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 32}, ear.StatusWarning},
		{sgx.OutOfDate, nil, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 2}, ear.StatusWarning},
		{sgx.OutOfDateConfigurationNeeded, nil, true, false, ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 32}, ear.StatusWarning},
		{sgx.UpToDate, nil, false, false, ear.TrustVector{Hardware: 2, Configuration: 32}, ear.StatusWarning},
		{sgx.Revoked, nil, true, false, ear.TrustVector{Hardware: 96}, ear.StatusContraindicated},
		{sgx.UpToDate, nil, true, true, ear.TrustVector{InstanceIdentity: 2, Hardware: 2, Configuration: 2}, ear.StatusAffirming},
	}
	for _, tc := range tests {
		name := string(tc.status)
		if !tc.crls {
			name += " without CRLs"
		}
		if tc.debug {
			name += " debug enclave"
		}
		if len(tc.advisories) > 0 {
			name += " with advisories"
		}
		t.Run(name, func(t *testing.T) {
			body := rb
			if tc.debug {
				body.AttributesFlags |= abi.AttributeDebug
			}
			res := &sgx.Result{ReportBody: &body, Status: tc.status, PlatformStatus: tc.status, QEStatus: sgx.UpToDate, AdvisoryIDs: tc.advisories, CRLsChecked: tc.crls}
			r, err := ear.FromClaims(sgx.Claims(res, false), opts(policyFor(t, &body, all), nil))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			p := r.Submods[ear.SubmodPlatform]
			if p.Status != tc.want {
				t.Errorf("platform status %s, want %s", p.Status, tc.want)
			}
			if tc.status != sgx.Revoked && *p.TrustVector != tc.tv {
				t.Errorf("platform vector %+v, want %+v", *p.TrustVector, tc.tv)
			}
			if tc.status == sgx.Revoked && (p.TrustVector == nil || p.TrustVector.Hardware != 96) {
				t.Errorf("revoked: %+v", p.TrustVector)
			}
			e := r.Submods[ear.SubmodEnclave]
			switch {
			case tc.status == sgx.Revoked:
				if e.Status != ear.StatusContraindicated {
					t.Errorf("enclave of a revoked platform: %s", e.Status)
				}
			case tc.debug:
				if e.Status != ear.StatusContraindicated || e.TrustVector.RuntimeOpaque != 96 || e.Evidence["debug"] != true {
					t.Errorf("debug enclave: %s %+v", e.Status, e.TrustVector)
				}
			default:
				if e.Status != ear.StatusAffirming || *e.TrustVector != (ear.TrustVector{Executables: 2, Configuration: 2, RuntimeOpaque: 2}) {
					t.Errorf("enclave: %s %+v", e.Status, e.TrustVector)
				}
			}
			if err := ear.Validate(b); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Hardware claims need a policy.
	res := &sgx.Result{ReportBody: &rb, Status: sgx.UpToDate, CRLsChecked: true}
	if _, err := ear.FromClaims(sgx.Claims(res, false), ear.Options{}); !errors.Is(err, attest.ErrNoPolicy) {
		t.Fatalf("no policy: %v", err)
	}
}

// TestNoneForSimulationAndTestRoot: simulation claims, and claims verified
// against a test root, give none with a warning and no trustworthiness
// claim, however good the claims look.
func TestNoneForSimulationAndTestRoot(t *testing.T) {
	r, err := ear.FromClaims(&attest.Claims{Type: attest.TypeSimulation, Simulation: true}, opts(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Submods[ear.SubmodPlatform]
	if len(r.Submods) != 1 || p.Status != ear.StatusNone || p.TrustVector != nil || len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], "SIMULATION") {
		t.Fatalf("simulation: %+v", p)
	}
	if _, err := ear.FromClaims(&attest.Claims{Type: attest.TypeSGXDCAP, Simulation: true}, opts(nil, nil)); err == nil {
		t.Fatal("SGX claims marked as simulation accepted")
	}

	rb := abi.ReportBody{AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 3}
	res := &sgx.Result{ReportBody: &rb, Status: sgx.UpToDate, CRLsChecked: true}
	r, err = ear.FromClaims(sgx.Claims(res, true), opts(policyFor(t, &rb, ""), nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range r.Submods {
		if a.Status != ear.StatusNone || a.TrustVector != nil || len(a.Warnings) != 1 || !strings.HasPrefix(a.Warnings[0], "TEST ROOT") {
			t.Errorf("%s: %+v", name, a)
		}
	}
	if r.Status() != ear.StatusNone {
		t.Errorf("overall %s", r.Status())
	}
}

// TestFromProof: a hardware proof made with the synthetic SGX PKI and
// verified by package proof gives the platform and enclave appraisals
// (none: a test root) and the model's, with what the signed payload binds;
// a simulation proof gives none throughout.
func TestFromProof(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	b.ReportBody.ReportData = attest.ReportData(id.DER, nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	modelHash := proof.ModelHash([]byte("model bytes"))
	payload := sendPayload(t, "m1", modelHash)
	pf := proof.FromEvidence(mustEvidence(t, ev), id.DER, payload, id.Sign(payload))
	p := policyFor(t, &b.ReportBody, "accepted_tcb_statuses = [\"UpToDate\"]\n")
	pr, err := proof.Verify(pf, proof.VerifyOptions{Policy: p, TestRoot: pki.Root, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ear.FromProof(pr, opts(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := ear.Validate(js); err != nil {
		t.Fatal(err)
	}
	m := r.Submods[ear.SubmodModel]
	if len(r.Submods) != 3 || m == nil || m.Evidence["model-id"] != "m1" || m.Evidence["kind"] != "send_model" ||
		m.Evidence["model-hash"] != hexs(modelHash) || m.Status != ear.StatusNone || m.PolicyID != ear.PolicyID(p) {
		t.Fatalf("model %+v", m)
	}
	if e := r.Submods[ear.SubmodEnclave]; e.Evidence["attested-certificate-sha256"] == nil || e.Evidence["signing-key-ed25519"] != hexs(id.SigningPublicKey()) {
		t.Fatalf("enclave %+v", e)
	}
	back, err := ear.Parse(js)
	if err != nil || !back.Equal(r) {
		t.Fatalf("round trip: %v", err)
	}
	if string(r.RawEvidence) != string(ev.Quote) {
		t.Error("raw evidence is not the quote")
	}

	out := []byte{0, 0, 0x80, 0x3f}
	run, err := proto.Marshal(&securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			ModelId: "m1", InputHash: proof.ModelHash([]byte("in")),
			OutputTensors: []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1}, IndexName: "y"}, BytesData: out}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sim := proof.NewSimulation(id.DER, run, id.Sign(run))
	pr, err = proof.Verify(sim, proof.VerifyOptions{AllowSimulation: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err = ear.FromProof(pr, opts(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != ear.StatusNone || r.Submods[ear.SubmodModel].Status != ear.StatusNone || len(r.Submods) != 2 {
		t.Fatalf("simulation proof: %+v", r.Submods)
	}
	sum := sha256.Sum256(out)
	if got, _ := r.Submods[ear.SubmodModel].Evidence["output-tensors"].([]string); len(got) != 1 || got[0] != "y sha256:"+hexs(sum[:]) {
		t.Fatalf("output tensors %v", r.Submods[ear.SubmodModel].Evidence)
	}
	if r.Submods[ear.SubmodModel].Evidence["input-hash"] != hexs(proof.ModelHash([]byte("in"))) {
		t.Fatalf("input hash %v", r.Submods[ear.SubmodModel].Evidence)
	}

	// A run with a receipt: the receipt's values, and which bindings were
	// checked, appear in the model appraisal, and the EAR still validates.
	outs := []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1}, IndexName: "y"}, BytesData: out}}
	rc := &securedexchange.Receipt{ModelHash: modelHash, OutputHash: proof.OutputHash(outs), Nonce: []byte("request nonce"), ReplicaId: []byte("0123456789abcdef"), ReplicaSource: "simulation"}
	withReceipt, err := proto.Marshal(&securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			ModelId: "m1", InputHash: proof.ModelHash([]byte("in")), OutputTensors: outs, Receipt: rc,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, err = proof.Verify(proof.NewSimulation(id.DER, withReceipt, id.Sign(withReceipt)), proof.VerifyOptions{AllowSimulation: true, ModelHash: modelHash, RequestNonce: []byte("request nonce")})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = ear.FromProof(pr, opts(nil, nil)); err != nil {
		t.Fatal(err)
	}
	js, err = json.Marshal(r)
	if err != nil || ear.Validate(js) != nil {
		t.Fatalf("EAR with a receipt: %v, %v", err, ear.Validate(js))
	}
	me := r.Submods[ear.SubmodModel].Evidence
	checked, _ := me["bindings-checked"].([]string)
	if me["receipt-model-hash"] != hexs(modelHash) || me["receipt-nonce"] != hexs([]byte("request nonce")) || me["receipt-replica"] != "simulation:"+hexs([]byte("0123456789abcdef")) ||
		!slices.Contains(checked, proof.BindModelHash) || !slices.Contains(checked, proof.BindNonce) {
		t.Fatalf("model appraisal of a run with a receipt: %+v", me)
	}
	if back, err := ear.Parse(js); err != nil || !back.Equal(r) {
		t.Fatalf("round trip with a receipt: %v", err)
	}

	// A refused proof: every appraisal contraindicated.
	_, verr := proof.Verify(pf, proof.VerifyOptions{Policy: p, TestRoot: pki.Root, Now: func() time.Time { return now }, ModelID: "other"})
	if verr == nil {
		t.Fatal("a proof of m1 verified as other")
	}
	r = ear.RefusedProof(verr, opts(p, nil))
	if r.Submods[ear.SubmodModel].Status != ear.StatusContraindicated || r.Status() != ear.StatusContraindicated || !strings.Contains(r.Submods[ear.SubmodModel].Warnings[0], "model_id") {
		t.Fatalf("refused proof: %+v", r.Submods)
	}
	if js, err := json.Marshal(r); err != nil || ear.Validate(js) != nil {
		t.Fatal(err)
	}
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

// sendPayload returns a serialized send payload for modelID and its hash.
func sendPayload(t *testing.T, modelID string, modelHash []byte) []byte {
	t.Helper()
	b, err := proto.Marshal(&securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{},
		Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
			ModelHash: modelHash, ModelId: modelID,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustEvidence returns synthetic evidence as attest.Evidence.
func mustEvidence(t *testing.T, ev *sgxtest.Evidence) *attest.Evidence {
	t.Helper()
	e, err := sgx.Evidence(ev.Quote, ev.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
