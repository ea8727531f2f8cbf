package snp

import (
	"errors"
	"fmt"

	sevabi "github.com/google/go-sev-guest/abi"
)

// ErrChipIDMasked means an SEV-SNP report's CHIP_ID is all zeros: the
// guest policy masks it (MASK_CHIP_ID), so the report names no chip.
var ErrChipIDMasked = errors.New("snp: the report's CHIP_ID is masked (all zeros)")

// ChipID returns the CHIP_ID field of an SEV-SNP attestation report (64
// bytes), which names the processor that produced it. It parses only: the
// caller must verify the report before trusting it. A masked CHIP_ID is
// refused with ErrChipIDMasked.
func ChipID(report []byte) ([]byte, error) {
	if len(report) != sevabi.ReportSize {
		return nil, fmt.Errorf("%w: report is %d bytes, want %d", ErrMalformed, len(report), sevabi.ReportSize)
	}
	rep, err := sevabi.ReportToProto(report)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	id := rep.GetChipId()
	for _, b := range id {
		if b != 0 {
			return append([]byte(nil), id...), nil
		}
	}
	return nil, ErrChipIDMasked
}
