// Package gramine produces SGX DCAP evidence inside a Gramine enclave
// through its pseudo-filesystem (default /dev/attestation): it checks that
// attestation_type is "dcap", writes the 64 bytes of report data to
// user_report_data, and reads the quote from quote. Collateral for the
// quote comes from a CollateralSource (a pccs.Cache in production).
//
// The device is process-global: a write to user_report_data and the read
// of quote must not interleave with another pair, so this package
// serializes them under one mutex for the whole process.
package gramine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// DefaultDir is Gramine's attestation folder.
const DefaultDir = "/dev/attestation"

// maxQuote bounds the quote read (a DCAP quote with its PCK chain is about
// 5 KiB).
const maxQuote = 1 << 20

// Errors. Use errors.Is.
var (
	// ErrDevice means the attestation device is absent, is not DCAP, or
	// failed.
	ErrDevice = errors.New("gramine: attestation device")
	// ErrCollateral means the collateral of the quote cannot be had.
	ErrCollateral = errors.New("gramine: SGX collateral")
)

// CollateralSource gives the collateral that verifies a quote.
type CollateralSource interface {
	Collateral(ctx context.Context, quote *abi.Quote) (*sgx.Collateral, error)
}

// deviceMu serializes the write-then-read pairs on the device, which is
// shared by the whole process.
var deviceMu sync.Mutex

// Attester is an attest.Attester on Gramine's /dev/attestation.
type Attester struct {
	dir string
	src CollateralSource
}

var _ attest.Attester = (*Attester)(nil)

// New returns an Attester on the attestation folder dir (empty:
// DefaultDir) with collateral from src.
func New(dir string, src CollateralSource) (*Attester, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if src == nil {
		return nil, errors.New("gramine: no collateral source (PCCS) configured")
	}
	return &Attester{dir: dir, src: src}, nil
}

// Type returns attest.TypeSGXDCAP.
func (a *Attester) Type() string { return attest.TypeSGXDCAP }

// Check reads attestation_type and fails unless it is "dcap": not under
// Gramine, under gramine-direct (no SGX), or with EPID attestation.
func (a *Attester) Check() error {
	p := filepath.Join(a.dir, "attestation_type")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%w: reading %s (is the server running under gramine-sgx with sgx.remote_attestation = \"dcap\"?): %v", ErrDevice, p, err)
	}
	if t := strings.TrimRight(string(b), "\x00\n "); t != "dcap" {
		return fmt.Errorf("%w: %s is %q, want \"dcap\" (set sgx.remote_attestation = \"dcap\" in the manifest)", ErrDevice, p, t)
	}
	return nil
}

// Quote writes reportData to user_report_data and reads the quote, under
// the process-wide device lock, and checks that the quote carries that
// report data.
func (a *Attester) Quote(reportData [64]byte) ([]byte, *abi.Quote, error) {
	if err := a.Check(); err != nil {
		return nil, nil, err
	}
	deviceMu.Lock()
	raw, err := a.writeRead(reportData)
	deviceMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	q, err := abi.ParseQuote(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the quote read from %s does not parse: %v", ErrDevice, filepath.Join(a.dir, "quote"), err)
	}
	if q.ReportBody.ReportData != reportData {
		return nil, nil, fmt.Errorf("%w: the quote read from %s carries report data other than the %d bytes written to user_report_data", ErrDevice, filepath.Join(a.dir, "quote"), len(reportData))
	}
	return raw, q, nil
}

func (a *Attester) writeRead(reportData [64]byte) ([]byte, error) {
	up := filepath.Join(a.dir, "user_report_data")
	f, err := os.OpenFile(up, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %v", ErrDevice, up, err)
	}
	n, err := f.Write(reportData[:])
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != len(reportData) {
		err = fmt.Errorf("wrote %d of %d bytes", n, len(reportData))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: writing %s: %v", ErrDevice, up, err)
	}
	qp := filepath.Join(a.dir, "quote")
	qf, err := os.Open(qp)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %v", ErrDevice, qp, err)
	}
	defer qf.Close()
	raw, err := io.ReadAll(io.LimitReader(qf, maxQuote+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrDevice, qp, err)
	}
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: %s is empty", ErrDevice, qp)
	case len(raw) > maxQuote:
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrDevice, qp, maxQuote)
	}
	return raw, nil
}

// Evidence returns a fresh quote over reportData with its collateral.
func (a *Attester) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	raw, q, err := a.Quote(reportData)
	if err != nil {
		return nil, err
	}
	c, err := a.src.Collateral(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCollateral, err)
	}
	return sgx.Evidence(raw, c)
}
