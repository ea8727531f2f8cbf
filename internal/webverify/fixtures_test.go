package webverify_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/proof"
)

// The real quote's collateral is valid from realIssued to realNextUpdate
// (see ../shared/testvectors/README.md); realAt is inside.
var (
	realIssued     = time.Date(2025, 6, 19, 10, 56, 11, 0, time.UTC)
	realNextUpdate = time.Date(2025, 7, 19, 10, 56, 11, 0, time.UTC)
	realAt         = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	synthIssued    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	synthAt        = synthIssued.Add(24 * time.Hour)
)

// quoteSignatureOffset is where the ISV enclave report signature starts in
// an SGX quote v3: 48-byte header, 384-byte report body, 4-byte signature
// data length.
const quoteSignatureOffset = 48 + 384 + 4

// fixtures are the proof and policy files the tests feed.
type fixtures struct {
	// Real: a proof assembled from a real SGX quote and its real
	// collateral, with a certificate made here (which the quote cannot
	// bind), and a policy that the quote satisfies.
	realProof, realTampered, realPolicy []byte
	// Synthetic: a complete proof whose evidence chains to a test root.
	synthProof, synthFlipped, synthPolicy []byte
	testRoot                              []byte // PEM
	// Simulation: a proof without hardware evidence.
	simProof []byte
	// TDX: a proof with synthetic TDX evidence (in the proof's evidence
	// field), one whose report data binds another certificate, the
	// policy, and the test root.
	tdxProof, tdxUnbound, tdxPolicy []byte
	tdxRoot                         *x509.Certificate
}

func projectRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("no go.mod above the working directory")
		}
	}
}

// vector reads a real test vector from the committed copy, or from
// ../shared/testvectors; it skips when both are absent (fails under CI).
func vector(t testing.TB, rel string) []byte {
	t.Helper()
	root := projectRoot(t)
	for _, dir := range []string{filepath.Join(root, "attest", "sgx", "testdata", "vectors"), filepath.Join(root, "..", "shared", "testvectors")} {
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel))); err == nil {
			return b
		}
	}
	msg := fmt.Sprintf("test vector %s not found in attest/sgx/testdata/vectors or ../shared/testvectors", rel)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a missing vector is a failure)")
	}
	t.Skip(msg)
	return nil
}

func runPayload(t testing.TB, modelID string, issued time.Time) []byte {
	t.Helper()
	b, err := proto.Marshal(&securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.New(issued)},
		Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			ModelId:   modelID,
			InputHash: proof.InputHash([]*securedexchange.TensorData{{BytesData: []byte("input bytes")}}),
			OutputTensors: []*securedexchange.TensorData{{
				Info:      &securedexchange.TensorInfo{IndexName: "output", DatumType: securedexchange.DatumTypeEnum_F32, Dims: []int32{1, 2}},
				BytesData: make([]byte, 8),
			}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshal(t testing.TB, p proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

func newFixtures(t testing.TB) *fixtures {
	t.Helper()
	f := &fixtures{}
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}

	// Real hardware: dcap-qvl's sample quote and collateral.
	quote := vector(t, "sgx/dcap-qvl/sgx_quote")
	col, err := sgx.CollateralFromDCAPQVLJSON(vector(t, "sgx/dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	payload := runPayload(t, "real-quote-model", realAt)
	realProof := func(q []byte) []byte {
		return marshal(t, proof.New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: q, Collateral: sgx.CollateralToProto(col), EnclaveHeldData: id.DER}, payload, id.Sign(payload)))
	}
	f.realProof = realProof(quote)
	f.realTampered = realProof(flip(quote, quoteSignatureOffset+5))
	q, err := abi.ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	rb := q.ReportBody
	f.realPolicy = fmt.Appendf(nil, `mr_enclave = "%x"
mr_signer = "%x"
isv_prod_id = %d
min_isv_svn = %d
misc_select_hex = "%#x"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "%#x"
attributes_xfrm_hex = "%#x"
attributes_mask_flags_hex = "0xffffffffffffffff"
attributes_mask_xfrm_hex = "0xffffffffffffffff"
allow_debug = %t
accepted_tcb_statuses = ["UpToDate", "ConfigurationAndSWHardeningNeeded"]
accepted_advisory_ids = ["INTEL-SA-00289", "INTEL-SA-00615"]
`, rb.MRENCLAVE, rb.MRSIGNER, rb.ISVProdID, rb.ISVSVN, rb.MiscSelect, rb.AttributesFlags&^abi.AttributeInit, rb.AttributesXFRM, rb.AttributesFlags&abi.AttributeDebug != 0)

	// Synthetic: a quote under a test PKI that binds id's certificate.
	pki, err := sgxtest.NewPKI(synthIssued)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, synthIssued)
	b.ReportBody.ReportData = attest.ReportData(id.DER, nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	payload = runPayload(t, "synthetic-model", synthAt)
	f.synthProof = marshal(t, proof.New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: sgx.CollateralToProto(ev.Collateral), EnclaveHeldData: id.DER}, payload, id.Sign(payload)))
	flipped := flip(payload, len(payload)-1)
	f.synthFlipped = marshal(t, proof.New(&untrusted.GetSgxQuoteWithCollateralReply{Quote: ev.Quote, Collateral: sgx.CollateralToProto(ev.Collateral), EnclaveHeldData: id.DER}, flipped, id.Sign(payload)))
	f.synthPolicy = []byte(attesttest.PolicyTOML(attesttest.MREnclave()) + "accepted_tcb_statuses = [\"UpToDate\"]\naccepted_advisory_ids = []\n")
	f.testRoot = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw})

	// Simulation.
	payload = runPayload(t, "simulated-model", synthAt)
	f.simProof = marshal(t, proof.NewSimulation(id.DER, payload, id.Sign(payload)))

	// TDX.
	tpki, err := tdxtest.NewPKI(synthIssued)
	if err != nil {
		t.Fatal(err)
	}
	f.tdxRoot = tpki.Root
	payload = runPayload(t, "tdx-model", synthAt)
	tdxProof := func(certDER []byte) []byte {
		tb := tdxtest.NewBuilder(tpki, synthIssued)
		tb.Body.ReportData = attest.ReportData(certDER, nil)
		q, c, err := tb.Build()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := tdx.EncodeCollateral(c)
		if err != nil {
			t.Fatal(err)
		}
		return marshal(t, proof.FromEvidence(&attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}, id.DER, payload, id.Sign(payload)))
	}
	f.tdxProof = tdxProof(id.DER)
	f.tdxUnbound = tdxProof([]byte("another certificate"))
	m := tdxtest.MRTD()
	f.tdxPolicy = fmt.Appendf(nil, "[tdx]\nmrtd = [%q]\n", hex.EncodeToString(m[:]))
	return f
}
