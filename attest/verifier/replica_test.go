package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
)

// firstPEMCertificate finds the first PEM certificate in raw bytes, as a
// reader of the quote layout would not: independently of the parsers.
func firstPEMCertificate(t *testing.T, raw []byte) []byte {
	t.Helper()
	i := bytes.Index(raw, []byte("-----BEGIN CERTIFICATE-----"))
	if i < 0 {
		t.Fatal("no PEM certificate in the quote")
	}
	block, _ := pem.Decode(raw[i:])
	if block == nil {
		t.Fatal("PEM certificate does not decode")
	}
	return block.Bytes
}

// ReplicaID on real evidence of every platform.
func TestReplicaIDVectors(t *testing.T) {
	sgxQuote := testvectors.Read(t, "sgx/dcap-qvl/sgx_quote")
	tdxQuote := testvectors.Read(t, "tdx/dcap-qvl/tdx_quote")
	const dcapSigned = 4936 // the file pads the quote with 70 zero bytes
	if len(tdxQuote) < dcapSigned {
		t.Fatalf("TDX quote is %d bytes", len(tdxQuote))
	}
	tdxPadded, tdxQuote := tdxQuote, tdxQuote[:dcapSigned]
	snpReport := testvectors.Read(t, "snp/go-sev-guest/attestation.bin")
	if len(snpReport) < 0x1E0 {
		t.Fatalf("SNP report is %d bytes", len(snpReport))
	}
	sgxPCK := sha256.Sum256(firstPEMCertificate(t, sgxQuote))
	tdxPCK := sha256.Sum256(firstPEMCertificate(t, tdxQuote))
	masked := bytes.Clone(snpReport)
	clear(masked[0x1A0:0x1E0]) // CHIP_ID
	tests := []struct {
		name   string
		ev     *attest.Evidence
		id     []byte
		source string
		none   bool // ErrNoReplicaID
	}{
		{"sgx", &attest.Evidence{Type: attest.TypeSGXDCAP, Raw: sgxQuote}, sgxPCK[:], ReplicaSGXPCK, false},
		{"tdx", &attest.Evidence{Type: attest.TypeTDX, Raw: tdxQuote}, tdxPCK[:], ReplicaTDXPCK, false},
		{"snp", &attest.Evidence{Type: attest.TypeSNP, Raw: snpReport}, snpReport[0x1A0:0x1E0], ReplicaSNPChipID, false},
		{"snp, CHIP_ID masked", &attest.Evidence{Type: attest.TypeSNP, Raw: masked}, nil, "", true},
		{"simulation", &attest.Evidence{Type: attest.TypeSimulation, Raw: []byte("x")}, nil, "", true},
		{"nil", nil, nil, "", true},
		{"sgx without the PCK chain", &attest.Evidence{Type: attest.TypeSGXDCAP, Raw: testvectors.Read(t, "sgx/oasis/quote_v3_ecdsa_p256_eppid.bin")}, nil, "", false},
		{"sgx truncated", &attest.Evidence{Type: attest.TypeSGXDCAP, Raw: sgxQuote[:len(sgxQuote)/2]}, nil, "", false},
		{"tdx with bytes after the quote", &attest.Evidence{Type: attest.TypeTDX, Raw: tdxPadded}, nil, "", false},
		{"tdx quote as sgx", &attest.Evidence{Type: attest.TypeSGXDCAP, Raw: tdxQuote}, nil, "", false},
		{"snp truncated", &attest.Evidence{Type: attest.TypeSNP, Raw: snpReport[:100]}, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, source, err := ReplicaID(tc.ev)
			switch {
			case tc.id != nil:
				if err != nil || !bytes.Equal(id, tc.id) || source != tc.source {
					t.Fatalf("ReplicaID = %x, %q, %v; want %x, %q", id, source, err, tc.id, tc.source)
				}
			case tc.none:
				if !errors.Is(err, ErrNoReplicaID) || id != nil {
					t.Fatalf("ReplicaID = %x, %v; want ErrNoReplicaID", id, err)
				}
			default:
				if err == nil || errors.Is(err, ErrNoReplicaID) {
					t.Fatalf("ReplicaID = %x, %v; want a parse error", id, err)
				}
			}
		})
	}
}
