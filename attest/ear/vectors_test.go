package ear_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/policy"
)

// vector is a real SGX quote with its collateral, a time inside the
// collateral's validity, and what the verifier accepts it with.
type vector struct {
	name    string
	quote   []byte
	coll    *sgx.Collateral
	at      time.Time
	noCRLs  bool
	status  sgx.TCBStatus
	advised []string
}

func vectors(t *testing.T) []vector {
	qvl, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "sgx/dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	chain := string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000_certs.pem"))
	return []vector{
		{
			name: "dcap-qvl", quote: testvectors.Read(t, "sgx/dcap-qvl/sgx_quote"), coll: qvl,
			at:     time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC),
			status: sgx.ConfigurationAndSWHardeningNeeded, advised: []string{"INTEL-SA-00289", "INTEL-SA-00615"},
		},
		{
			name:  "oasis",
			quote: testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_pck_chain.bin"),
			coll: &sgx.Collateral{
				TCBInfoIssuerChain:    chain,
				TCBInfo:               string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000.json")),
				QEIdentityIssuerChain: chain,
				QEIdentity:            string(testvectors.Read(t, "sgx/oasis/qe_identity_v2.json")),
			},
			at: time.Unix(1671497404, 0), noCRLs: true,
			status: sgx.SWHardeningNeeded, advised: []string{"INTEL-SA-00615", "INTEL-SA-00657"},
		},
	}
}

// policyFor returns a policy pinning the vector's enclave, with extra
// TCB rules.
func policyFor(t *testing.T, rb *abi.ReportBody, extra string) *policy.Policy {
	t.Helper()
	text := fmt.Sprintf("mr_enclave = %q\nmisc_select_hex = \"%#x\"\nmisc_mask_hex = \"0xffffffff\"\nattributes_flags_hex = \"%#x\"\nattributes_xfrm_hex = \"%#x\"\nattributes_mask_flags_hex = \"0xffffffffffffffff\"\nattributes_mask_xfrm_hex = \"0xffffffffffffffff\"\nallow_debug = %t\n%s",
		fmt.Sprintf("%x", rb.MRENCLAVE), rb.MiscSelect, rb.AttributesFlags&^abi.AttributeInit, rb.AttributesXFRM, rb.Debug(), extra)
	p, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// accepting returns the policy that accepts v deliberately: its status
// and its advisories, by name.
func (v vector) accepting(t *testing.T, rb *abi.ReportBody) *policy.Policy {
	q, _ := json.Marshal(v.advised)
	return policyFor(t, rb, fmt.Sprintf("accepted_tcb_statuses = [\"UpToDate\", %q]\naccepted_advisory_ids = %s\n", v.status, q))
}

// verify runs the real SGX verifier on v with p, as a client does.
func (v vector) verify(t *testing.T, p *policy.Policy) (*attest.Claims, *attest.Evidence, error) {
	t.Helper()
	ev, err := sgx.Evidence(v.quote, v.coll)
	if err != nil {
		t.Fatal(err)
	}
	opts := sgx.Options{Now: func() time.Time { return v.at }, AllowMissingCRLs: v.noCRLs}
	ver, err := sgx.NewVerifier(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ver.Verify(context.Background(), ev)
	return c, ev, err
}

var issued = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

func opts(p *policy.Policy, nonce []byte) ear.Options {
	return ear.Options{Now: func() time.Time { return issued }, Policy: p, Nonce: nonce, Verifier: ear.VerifierID{Developer: ear.DefaultDeveloper, Build: "blindfold test"}}
}

// TestRealSGXVectors: the EAR of each real SGX quote, accepted
// deliberately by a policy naming its status and advisories, is a warning
// for the platform (open advisories), affirming for the enclave, passes
// the schema check, and round-trips as JSON and as a signed JWT.
func TestRealSGXVectors(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors(t) {
		t.Run(v.name, func(t *testing.T) {
			q, err := abi.ParseQuote(v.quote)
			if err != nil {
				t.Fatal(err)
			}
			p := v.accepting(t, &q.ReportBody)
			claims, ev, err := v.verify(t, p)
			if err != nil {
				t.Fatal(err)
			}
			nonce := []byte("a client nonce of 32 bytes......")
			r, err := ear.FromVerified(&attest.Verified{Claims: claims, Evidence: ev}, opts(p, nonce))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s EAR:\n%s", v.name, b)
			if err := ear.Validate(b); err != nil {
				t.Fatalf("schema: %v", err)
			}

			platform, enclave := r.Submods[ear.SubmodPlatform], r.Submods[ear.SubmodEnclave]
			if platform == nil || enclave == nil || len(r.Submods) != 2 {
				t.Fatalf("submods %v", r.Submods)
			}
			wantTV := ear.TrustVector{InstanceIdentity: 2, Hardware: 32, Configuration: 2}
			if v.status == sgx.ConfigurationAndSWHardeningNeeded {
				wantTV.Configuration = 32
			}
			wantWarnings := []string(nil)
			if v.noCRLs {
				wantTV.InstanceIdentity, wantTV.Configuration = 0, 32
				wantWarnings = []string{"revocation not checked: the evidence was verified without its CRLs"}
			}
			if platform.Status != ear.StatusWarning || *platform.TrustVector != wantTV || !slices.Equal(platform.Warnings, wantWarnings) {
				t.Errorf("platform: %s %+v %q, want warning %+v %q", platform.Status, *platform.TrustVector, platform.Warnings, wantTV, wantWarnings)
			}
			if got := platform.Evidence["advisory-ids"]; !slices.Equal(got.([]string), v.advised) {
				t.Errorf("advisory-ids %v", got)
			}
			if platform.Evidence["tcb-status"] != string(v.status) || platform.Evidence["crls-checked"] != !v.noCRLs {
				t.Errorf("platform evidence %v", platform.Evidence)
			}
			if !strings.HasPrefix(platform.Evidence["policy-verdict"].(string), "passed: ") {
				t.Errorf("policy verdict %v", platform.Evidence["policy-verdict"])
			}
			if enclave.Status != ear.StatusAffirming || *enclave.TrustVector != (ear.TrustVector{Executables: 2, Configuration: 2, RuntimeOpaque: 2}) {
				t.Errorf("enclave: %s %+v", enclave.Status, *enclave.TrustVector)
			}
			if enclave.Evidence["mrenclave"] != fmt.Sprintf("%x", q.ReportBody.MRENCLAVE) {
				t.Errorf("mrenclave %v", enclave.Evidence["mrenclave"])
			}
			if enclave.PolicyID != ear.PolicyID(p) || !strings.HasPrefix(enclave.PolicyID, "blindfold-policy:sha256:") || platform.PolicyID != enclave.PolicyID {
				t.Errorf("policy ids %q %q", platform.PolicyID, enclave.PolicyID)
			}
			if r.Status() != ear.StatusWarning || r.Nonce != base64.RawURLEncoding.EncodeToString(nonce) || r.IssuedAt != issued.Unix() {
				t.Errorf("status %s nonce %q iat %d", r.Status(), r.Nonce, r.IssuedAt)
			}
			if string(r.RawEvidence) != string(v.quote) {
				t.Error("ear.raw-evidence is not the quote")
			}

			// JSON round trip.
			back, err := ear.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(r) {
				t.Fatalf("parsed claims differ:\n%+v\n%+v", back, r)
			}
			// Signed round trip, and the signature checked by hand.
			tok, err := ear.Sign(r, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ear.VerifyJWT(tok, &key.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(r) {
				t.Fatal("claims of the verified JWT differ")
			}
			checkES256(t, tok, &key.PublicKey)
			// A general JWT parser reads it too.
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
			if err != nil {
				t.Fatalf("JWT parser: %v", err)
			}
			if mc := parsed.Claims.(jwt.MapClaims); mc["eat_profile"] != ear.Profile || mc["submods"].(map[string]any)["platform"].(map[string]any)["ear.status"] != "warning" {
				t.Fatalf("JWT parser claims %v", mc)
			}
			for name, bad := range tampered(t, tok) {
				if _, err := ear.VerifyJWT(bad, &key.PublicKey); err == nil {
					t.Errorf("%s: verified", name)
				}
			}
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if _, err := ear.VerifyJWT(tok, &other.PublicKey); !errors.Is(err, ear.ErrBadJWT) {
				t.Errorf("another key: %v", err)
			}
			// Oversized tokens are refused before they are split or decoded.
			for name, big := range map[string]string{
				"padded":     tok + strings.Repeat("A", ear.MaxSize),
				"many parts": strings.Repeat(".", ear.MaxSize+1),
			} {
				if _, err := ear.VerifyJWT(big, &key.PublicKey); !errors.Is(err, ear.ErrBadJWT) || !strings.Contains(err.Error(), "more than") {
					t.Errorf("%s token of %d bytes: %v", name, len(big), err)
				}
			}
		})
	}
}

// checkES256 verifies a compact JWS by hand: SHA-256 of header.payload,
// signature r||s of 32 bytes each (RFC 7518, 3.4).
func checkES256(t *testing.T, tok string, pub *ecdsa.PublicKey) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr map[string]string
	if err := json.Unmarshal(h, &hdr); err != nil || hdr["alg"] != "ES256" || hdr["typ"] != "JWT" || len(hdr) != 2 {
		t.Fatalf("header %s: %v", h, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature of %d bytes: %v", len(sig), err)
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("ES256 signature does not verify by hand")
	}
}

// tampered returns altered copies of a JWT that must not verify.
func tampered(t *testing.T, tok string) map[string]string {
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding
	payload, _ := enc.DecodeString(parts[1])
	changed := strings.Replace(string(payload), `"ear.status":"warning"`, `"ear.status":"affirming"`, 1)
	if changed == string(payload) {
		t.Fatal("no warning status to tamper with")
	}
	sig, _ := enc.DecodeString(parts[2])
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 1
	out := map[string]string{
		"status raised":       parts[0] + "." + enc.EncodeToString([]byte(changed)) + "." + parts[2],
		"signature flipped":   parts[0] + "." + parts[1] + "." + enc.EncodeToString(flipped),
		"alg none":            enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		"alg HS256":           enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		"critical extension":  enc.EncodeToString([]byte(`{"alg":"ES256","crit":["x"],"x":1}`)) + "." + parts[1] + "." + parts[2],
		"signature truncated": parts[0] + "." + parts[1] + "." + enc.EncodeToString(sig[:63]),
		"two parts":           parts[0] + "." + parts[1],
		"padded signature":    tok + "=",
	}
	for i := 0; i < len(tok); i += 37 {
		b := []byte(tok)
		if b[i] == '.' {
			continue
		}
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		out[fmt.Sprintf("byte %d changed", i)] = string(b)
	}
	return out
}

// TestRealSGXVectorsRefused: the same quotes under policies that refuse
// them give contraindicated, naming the refused claim, whether the
// refusal comes from the verifier (Refused) or from FromClaims checking
// the policy again.
func TestRealSGXVectorsRefused(t *testing.T) {
	for _, v := range vectors(t) {
		q, err := abi.ParseQuote(v.quote)
		if err != nil {
			t.Fatal(err)
		}
		rb := &q.ReportBody
		otherMR := *rb
		otherMR.MRENCLAVE[0] ^= 1
		tests := []struct {
			name      string
			policy    *policy.Policy
			platform  ear.TrustVector
			enclave   *ear.TrustVector
			mentioned string
		}{
			{"strict default: status refused", policyFor(t, rb, "accepted_advisory_ids = []\n"), ear.TrustVector{Hardware: 96}, nil, "accepted_tcb_statuses"},
			{"another enclave", policyFor(t, &otherMR, "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\", \"ConfigurationAndSWHardeningNeeded\"]\naccepted_advisory_ids = [\"INTEL-SA-00289\", \"INTEL-SA-00615\", \"INTEL-SA-00657\"]\n"), ear.TrustVector{}, &ear.TrustVector{Executables: 33}, "mr_enclave"},
		}
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				_, _, verr := v.verify(t, tc.policy)
				if !errors.Is(verr, attest.ErrPolicyMismatch) {
					t.Fatalf("verifier: %v", verr)
				}
				r := ear.Refused(verr, opts(tc.policy, nil))
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				if err := ear.Validate(b); err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{ear.SubmodPlatform, ear.SubmodEnclave} {
					a := r.Submods[name]
					if a == nil || a.Status != ear.StatusContraindicated || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], tc.mentioned) {
						t.Fatalf("%s: %+v", name, a)
					}
				}
				if got := r.Submods[ear.SubmodPlatform].TrustVector; (got == nil) != (tc.platform == ear.TrustVector{}) || got != nil && *got != tc.platform {
					t.Errorf("platform vector %+v, want %+v", got, tc.platform)
				}
				if got := r.Submods[ear.SubmodEnclave].TrustVector; (got == nil) != (tc.enclave == nil) || got != nil && *got != *tc.enclave {
					t.Errorf("enclave vector %+v, want %+v", got, tc.enclave)
				}
				if r.Status() != ear.StatusContraindicated {
					t.Errorf("overall %s", r.Status())
				}

				// Claims accepted under one policy and written against
				// another are refused by FromClaims itself.
				claims, _, err := v.verify(t, v.accepting(t, rb))
				if err != nil {
					t.Fatal(err)
				}
				r2, err := ear.FromClaims(claims, opts(tc.policy, nil))
				if err != nil {
					t.Fatal(err)
				}
				if r2.Status() != ear.StatusContraindicated || r2.Submods[ear.SubmodPlatform].Status != ear.StatusContraindicated || r2.Submods[ear.SubmodEnclave].Status != ear.StatusContraindicated {
					t.Fatalf("FromClaims under a refusing policy: %s", r2.Status())
				}
				if b, err := json.Marshal(r2); err != nil || ear.Validate(b) != nil {
					t.Fatalf("%v", err)
				}
			})
		}
	}
}

// TestBadEvidenceRefused: a quote whose collateral signature is broken is
// refused by the verifier, and its EAR says the cryptographic validation
// failed.
func TestBadEvidenceRefused(t *testing.T) {
	v := vectors(t)[0]
	q, err := abi.ParseQuote(v.quote)
	if err != nil {
		t.Fatal(err)
	}
	p := v.accepting(t, &q.ReportBody)
	bad := *v.coll
	bad.TCBInfo = v.coll.TCBInfo[:20] + " " + v.coll.TCBInfo[20:]
	v.coll = &bad
	_, _, verr := v.verify(t, p)
	if !errors.Is(verr, attest.ErrBadEvidence) {
		t.Fatalf("verifier: %v", verr)
	}
	r := ear.Refused(fmt.Errorf("connecting: %w", verr), opts(p, nil))
	if got := r.Submods[ear.SubmodPlatform]; got.Status != ear.StatusContraindicated || got.TrustVector == nil || got.TrustVector.InstanceIdentity != 99 || got.Evidence["type"] != attest.TypeSGXDCAP {
		t.Fatalf("platform %+v", got)
	}
	if b, err := json.Marshal(r); err != nil || ear.Validate(b) != nil {
		t.Fatalf("%v", err)
	}
	// An error that names no evidence type gives the platform alone.
	r = ear.Refused(errors.New("dial tcp: connection refused"), opts(nil, nil))
	if len(r.Submods) != 1 || r.Submods[ear.SubmodPlatform].Status != ear.StatusContraindicated || r.Submods[ear.SubmodPlatform].TrustVector != nil {
		t.Fatalf("%+v", r.Submods)
	}
}

// TestRealTDXVector: the real dcap-qvl TDX quote (UpToDate, no advisory),
// accepted by a policy pinning its MRTD, gives affirming for the platform
// and the trust domain, and passes the schema check.
func TestRealTDXVector(t *testing.T) {
	q := testvectors.Read(t, "tdx/dcap-qvl/tdx_quote")
	const signed = 4936 // the file carries zero padding after the quote
	if len(q) < signed {
		t.Fatalf("%d bytes", len(q))
	}
	c, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "tdx/dcap-qvl/tdx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tdx.EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	ev := &attest.Evidence{Type: attest.TypeTDX, Raw: q[:signed], Collateral: enc}
	at := func() time.Time { return time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC) }
	// The policy pins the MRTD the quote carries, read from a first
	// verification under a policy accepting any TD.
	probe, err := tdx.NewVerifier(anyTD{}, tdx.Options{Now: at})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := probe.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	mrtd := tdx.ResultOf(pc).MRTD
	p, err := policy.Parse([]byte(fmt.Sprintf("[tdx]\nmrtd = [%q]\n", fmt.Sprintf("%x", mrtd))))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tdx.NewVerifier(p.TDX, tdx.Options{Now: at})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ear.FromClaims(claims, opts(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := ear.Validate(b); err != nil {
		t.Fatal(err)
	}
	pl, vm := r.Submods[ear.SubmodPlatform], r.Submods[ear.SubmodVM]
	if pl == nil || vm == nil || len(r.Submods) != 2 || r.Status() != ear.StatusAffirming {
		t.Fatalf("%s", b)
	}
	if *pl.TrustVector != (ear.TrustVector{InstanceIdentity: 2, Hardware: 2, Configuration: 2}) || *vm.TrustVector != (ear.TrustVector{Executables: 2, Configuration: 2, RuntimeOpaque: 2}) {
		t.Fatalf("%s", b)
	}
	if vm.Evidence["mrtd"] != fmt.Sprintf("%x", mrtd) || pl.Evidence["fmspc"] != "B0C06F000000" {
		t.Fatalf("%s", b)
	}
	// Under a policy pinning another MRTD, FromClaims refuses the claims.
	other := mrtd
	other[0] ^= 1
	p2, err := policy.Parse([]byte(fmt.Sprintf("[tdx]\nmrtd = [%q]\n", fmt.Sprintf("%x", other))))
	if err != nil {
		t.Fatal(err)
	}
	r, err = ear.FromClaims(claims, opts(p2, nil))
	if err != nil {
		t.Fatal(err)
	}
	if vm := r.Submods[ear.SubmodVM]; vm.Status != ear.StatusContraindicated || vm.TrustVector == nil || vm.TrustVector.Executables != 33 {
		t.Fatalf("another MRTD: %+v", vm)
	}
}

// anyTD accepts any trust domain that is not debuggable.
type anyTD struct{}

func (anyTD) Check(r *tdx.Result) error {
	if r.TDAttributes&tdx.AttrDebug != 0 {
		return errors.New("debug")
	}
	return nil
}

// TestRealSNPVector: the real Milan report verifies (without its ARK's
// CRL, allowed for this vector only), but its guest policy allows
// debugging, which every policy refuses: its EAR is contraindicated, the
// guest's memory visible to the host, and revocation named as unchecked.
func TestRealSNPVector(t *testing.T) {
	tbl := &sevabi.CertTable{Entries: []sevabi.CertTableEntry{{GUID: uuid.MustParse(sevabi.VcekGUID), RawCert: testvectors.Read(t, "snp/go-sev-guest/vcek.testcer")}}}
	ev := &attest.Evidence{Type: attest.TypeSNP, Raw: testvectors.Read(t, "snp/go-sev-guest/attestation.bin"), Collateral: tbl.Marshal()}
	at := func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }
	probe, err := snp.NewVerifier(anyGuest{}, snp.Options{Now: at, AllowMissingCRL: true})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := probe.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	res := snp.ResultOf(claims)
	if res == nil || res.CRLChecked || res.GuestPolicy&snp.PolicyDebug == 0 {
		t.Fatalf("result %+v", res)
	}
	p, err := policy.Parse([]byte(fmt.Sprintf("[snp]\nmeasurement = [%q]\n", fmt.Sprintf("%x", res.Measurement))))
	if err != nil {
		t.Fatal(err)
	}
	// Claims that a verifier accepted, written against the policy: refused.
	r, err := ear.FromClaims(claims, opts(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := ear.Validate(b); err != nil {
		t.Fatal(err)
	}
	pl, vm := r.Submods[ear.SubmodPlatform], r.Submods[ear.SubmodVM]
	if pl == nil || vm == nil || pl.Status != ear.StatusContraindicated || vm.Status != ear.StatusContraindicated {
		t.Fatalf("%s", b)
	}
	if vm.TrustVector == nil || vm.TrustVector.RuntimeOpaque != 96 || vm.Evidence["debug"] != true || vm.Evidence["measurement"] != fmt.Sprintf("%x", res.Measurement) {
		t.Fatalf("vm %s", b)
	}
	if pl.TrustVector == nil || pl.TrustVector.InstanceIdentity != 0 || pl.Evidence["crls-checked"] != false || pl.Evidence["product"] != "Milan" ||
		!slices.Contains(pl.Warnings, "revocation not checked: the evidence was verified without its CRLs") {
		t.Fatalf("platform %s", b)
	}
	// The same refusal from the verifier itself.
	v, err := snp.NewVerifier(p.SNP, snp.Options{Now: at, AllowMissingCRL: true})
	if err != nil {
		t.Fatal(err)
	}
	_, verr := v.Verify(context.Background(), ev)
	if !errors.Is(verr, attest.ErrPolicyMismatch) {
		t.Fatalf("verifier: %v", verr)
	}
	r = ear.Refused(verr, opts(p, nil))
	if vm := r.Submods[ear.SubmodVM]; vm == nil || vm.Status != ear.StatusContraindicated || vm.TrustVector == nil || vm.TrustVector.RuntimeOpaque != 96 {
		t.Fatalf("refused: %+v", r.Submods)
	}
}

// anyGuest accepts any SEV-SNP guest.
type anyGuest struct{}

func (anyGuest) Check(*snp.Result) error { return nil }
