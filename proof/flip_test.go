package proof

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

// pemChain is certificates as PEM, as BlindAI's servers fill the
// collateral's pck_certificate and pck_signing_chain.
func pemChain(certs ...[]byte) string {
	var s strings.Builder
	for _, c := range certs {
		s.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c}))
	}
	return s.String()
}

// TestProofEveryByteFlipped writes a complete hardware proof (an SGX quote
// and its collateral from a test PKI, with the collateral's PCK
// certificate and signing chain filled in as BlindAI's servers do, the
// attested certificate, a signed run payload), flips each byte of the file
// in turn and verifies the result. Every flip must be refused, or leave a
// proof that decodes to the same message (a byte that proto decoding
// normalises away), or fall in one of the places listed below, each of
// which is harmless for the reason given. Nothing that Verify accepts may
// carry a changed byte that nobody checked.
func TestProofEveryByteFlipped(t *testing.T) {
	if raceEnabled {
		t.Skip("one verification per byte is too slow under the race detector; scripts/test.sh runs this test in its step without -race")
	}
	if testing.Short() {
		t.Skip("verifies the proof once per byte (-short)")
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	att := hwEvidence(t, pki, now, f.id.DER, nil, nil)
	// BlindAI fills these in; the verifier must hold them to the quote.
	pck, chain := quoteChain(t, att.GetQuote())
	att.Collateral.PckCertificate = pemChain(pck)
	att.Collateral.PckSigningChain = pemChain(chain...)
	orig := New(att, f.runPay, f.id.Sign(f.runPay))
	file, err := Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	opts := VerifyOptions{Policy: anyPolicy(t), Now: func() time.Time { return now }, TestRoot: pki.Root}
	if _, err := Verify(orig, opts); err != nil {
		t.Fatalf("the unchanged proof: %v", err)
	}

	accepted := map[string]int{}
	refused := 0
	for i := range file {
		b := bytes.Clone(file)
		b[i] ^= 0x01
		p, err := Unmarshal(b)
		if err != nil {
			refused++
			continue
		}
		if _, err := Verify(p, opts); err != nil {
			refused++
			continue
		}
		if proto.Equal(p, orig) {
			accepted["decodes to the same proof"]++
			continue
		}
		where := harmlessFlip(p, orig)
		if where == "" {
			t.Errorf("byte %d (of %d) flipped: the proof still verifies, and it differs from the original in a place not known to be harmless: %q -> %q", i, len(file), file[max(0, i-40):i+10], b[max(0, i-40):i+10])
			continue
		}
		accepted[where]++
	}
	t.Logf("%d bytes: %d flips refused, accepted: %v", len(file), refused, accepted)
}

// harmlessFlip says why a changed proof that still verifies is harmless, or
// "" when it is not known to be. The only such place is the collateral's
// version, a number BlindAI's wire message carries for information and
// that no verifier reads.
func harmlessFlip(p, orig *prooffiles.ResponseProof) string {
	q := proto.Clone(p).(*prooffiles.ResponseProof)
	if c := q.GetAttestation().GetCollateral(); c != nil {
		c.Version = orig.GetAttestation().GetCollateral().GetVersion()
		if proto.Equal(q, orig) {
			return "collateral version (informational)"
		}
	}
	return ""
}

// quoteChain returns the DER of the PCK certificate in an SGX quote's
// certification data and of the certificates that follow it.
func quoteChain(t *testing.T, quote []byte) (pck []byte, rest [][]byte) {
	t.Helper()
	q, err := abi.ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	data := q.SignatureData.CertificationData.Data
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		rest = append(rest, b.Bytes)
	}
	if len(rest) < 2 {
		t.Fatalf("the quote carries %d certificates", len(rest))
	}
	return rest[0], rest[1:]
}
