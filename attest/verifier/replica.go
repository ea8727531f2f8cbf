package verifier

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

// How a replica id is derived (the receipt's replica_source).
const (
	// ReplicaSGXPCK is SHA-256 of the DER of the PCK leaf certificate in
	// an SGX quote's certification data.
	ReplicaSGXPCK = "sgx-pck-sha256"
	// ReplicaTDXPCK is SHA-256 of the DER of the PCK leaf certificate in
	// a TDX quote's certification data.
	ReplicaTDXPCK = "tdx-pck-sha256"
	// ReplicaSNPChipID is the 64-byte CHIP_ID of an SEV-SNP report.
	ReplicaSNPChipID = "sev-snp-chip-id"
	// ReplicaSimulation is a random value a simulation-mode server makes
	// at start. Nothing binds it to anything: it proves nothing.
	ReplicaSimulation = "simulation"
)

// MaxReplicaIDBytes is the size of the longest replica id (an SEV-SNP
// CHIP_ID).
const MaxReplicaIDBytes = 64

// ErrNoReplicaID means evidence names no platform that a replica id can be
// derived from.
var ErrNoReplicaID = errors.New("the evidence names no platform to identify the replica by")

// ReplicaID returns the identifier of the machine that produced ev, and
// how it was derived (ReplicaSGXPCK, ReplicaTDXPCK or ReplicaSNPChipID):
// for SGX and TDX, SHA-256 of the PCK leaf certificate in the quote; for
// SEV-SNP, the report's CHIP_ID. The server puts it in its receipts, and
// a proof verifier compares a receipt's value with the one of the proof's
// own evidence, so that a receipt of one replica cannot pass with the
// evidence of another.
//
// It identifies a platform, not a process: replicas on one machine share
// it, and a PCK certificate reissued (after a TCB recovery) changes it.
// It only parses ev; what it returns means something only once ev has been
// verified. Simulation evidence and an SEV-SNP report whose CHIP_ID is
// masked give an error wrapping ErrNoReplicaID.
func ReplicaID(ev *attest.Evidence) (id []byte, source string, err error) {
	if ev == nil {
		return nil, "", fmt.Errorf("verifier: %w: no evidence", ErrNoReplicaID)
	}
	switch ev.Type {
	case attest.TypeSGXDCAP:
		der, err := sgx.PCKCertificateDER(ev.Raw)
		if err != nil {
			return nil, "", fmt.Errorf("verifier: replica id: %w", err)
		}
		h := sha256.Sum256(der)
		return h[:], ReplicaSGXPCK, nil
	case attest.TypeTDX:
		der, err := tdx.PCKCertificateDER(ev.Raw)
		if err != nil {
			return nil, "", fmt.Errorf("verifier: replica id: %w", err)
		}
		h := sha256.Sum256(der)
		return h[:], ReplicaTDXPCK, nil
	case attest.TypeSNP:
		id, err := snp.ChipID(ev.Raw)
		if errors.Is(err, snp.ErrChipIDMasked) {
			return nil, "", fmt.Errorf("verifier: %w: %w", ErrNoReplicaID, err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("verifier: replica id: %w", err)
		}
		return id, ReplicaSNPChipID, nil
	}
	return nil, "", fmt.Errorf("verifier: %w: %q evidence", ErrNoReplicaID, ev.Type)
}
