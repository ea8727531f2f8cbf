package sgx_test

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// TestRealEvidenceEveryByteFlipped takes real SGX evidence (the dcap-qvl
// quote and its Intel-signed collateral) in the form a hardware proof
// carries it (BlindAI's GetSgxQuoteWithCollateralReply, with the
// collateral's PCK certificate and signing chain filled in as BlindAI's
// servers do), flips each byte of its encoding in turn, and verifies the
// result at a time inside the collateral's validity. Every flip must be
// refused, decode to the same message, or change only the collateral's
// version, a number carried for information that no check reads.
func TestRealEvidenceEveryByteFlipped(t *testing.T) {
	if raceEnabled {
		t.Skip("one verification per byte is too slow under the race detector; scripts/test.sh runs this test in its step without -race")
	}
	if testing.Short() {
		t.Skip("verifies the evidence once per byte (-short)")
	}
	quote, c := dcapQVL(t)
	now := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	o := sgx.Options{Now: func() time.Time { return now }}
	q, err := abi.ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	var certs []string
	for rest := q.SignatureData.CertificationData.Data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		certs = append(certs, string(pem.EncodeToMemory(b)))
	}
	if len(certs) != 3 {
		t.Fatalf("the quote carries %d certificates, want 3", len(certs))
	}
	c.PCKCertificate, c.PCKSigningChain = certs[0], strings.Join(certs[1:], "")
	orig := &untrusted.GetSgxQuoteWithCollateralReply{Quote: quote, Collateral: sgx.CollateralToProto(c)}
	enc, err := proto.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(m *untrusted.GetSgxQuoteWithCollateralReply) error {
		_, err := sgx.Verify(m.GetQuote(), sgx.CollateralFromProto(m.GetCollateral()), o)
		return err
	}
	if err := verify(orig); err != nil {
		t.Fatalf("the unchanged evidence: %v", err)
	}
	refused, same, version := 0, 0, 0
	for i := range enc {
		b := bytes.Clone(enc)
		b[i] ^= 0x01
		var m untrusted.GetSgxQuoteWithCollateralReply
		if proto.Unmarshal(b, &m) != nil || m.GetCollateral() == nil || verify(&m) != nil {
			refused++
			continue
		}
		if proto.Equal(&m, orig) {
			same++
			continue
		}
		m.Collateral.Version = orig.GetCollateral().GetVersion()
		if proto.Equal(&m, orig) {
			version++
			continue
		}
		t.Errorf("byte %d (of %d) flipped: the evidence still verifies and differs from the original: %q -> %q", i, len(enc), enc[max(0, i-40):min(len(enc), i+10)], b[max(0, i-40):min(len(b), i+10)])
	}
	t.Logf("%d bytes: %d flips refused, %d decode to the same evidence, %d change only the collateral version", len(enc), refused, same, version)
}
