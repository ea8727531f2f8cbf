// Package attesttest holds test doubles of hardware attestation: an
// attest.Attester that returns SGX DCAP evidence built by package sgxtest
// over the report data it is given, and policies that match it. Evidence
// made here verifies only against the test PKI's root and proves nothing.
package attesttest

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/policy"
)

// Attester is a test double of a hardware attester: it returns evidence
// built by a Builder over the report data it is given, with collateral
// signed by the test PKI. It stands in for the hardware only; the evidence
// verifies with sgx.Options.TestRoot = PKI.Root and proves nothing.
type Attester struct {
	// PKI signs the evidence.
	PKI *sgxtest.PKI
	// Now is the builder's reference time (nil: time.Now).
	Now func() time.Time
	// Configure, when set, changes each Builder before Build: the
	// measurement, the TCB status, the collateral dates, or the report data
	// (after it has been set to the requested value).
	Configure func(b *sgxtest.Builder)
	// Err, when set, is returned instead of evidence.
	Err error
	// Machine, when set, makes every evidence name one platform (the same
	// PCK certificate), as a real machine's does; nil: each evidence has a
	// PCK certificate of its own.
	Machine *sgxtest.Machine

	mu    sync.Mutex
	calls int
	last  [64]byte
}

// NewAttester returns an Attester over pki whose builders use time now.
func NewAttester(pki *sgxtest.PKI, now time.Time) *Attester {
	return &Attester{PKI: pki, Now: func() time.Time { return now }}
}

// Type returns attest.TypeSGXDCAP.
func (a *Attester) Type() string { return attest.TypeSGXDCAP }

// Evidence builds a quote over reportData.
func (a *Attester) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.calls++
	a.last = reportData
	a.mu.Unlock()
	if a.Err != nil {
		return nil, a.Err
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	b := sgxtest.NewBuilder(a.PKI, now)
	b.ReportBody.ReportData = reportData
	b.Machine = a.Machine
	if a.Configure != nil {
		a.Configure(b)
	}
	ev, err := b.Build()
	if err != nil {
		return nil, err
	}
	return sgx.Evidence(ev.Quote, ev.Collateral)
}

// Calls returns how many times Evidence was called and the last report
// data it was given.
func (a *Attester) Calls() (int, [64]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, a.last
}

// MREnclave is the MRENCLAVE of the evidence sgxtest.NewBuilder makes.
func MREnclave() [32]byte {
	var m [32]byte
	for i := range m {
		m[i] = byte(0xe0 + i)
	}
	return m
}

// PolicyTOML returns the text of a policy.toml that pins mrenclave and
// accepts the attributes of sgxtest's default report body.
func PolicyTOML(mrenclave [32]byte) string {
	return fmt.Sprintf(`mr_enclave = %q
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`, hex.EncodeToString(mrenclave[:]))
}

// Policy returns PolicyTOML(mrenclave) parsed. It panics on a parse error,
// which would be a bug here.
func Policy(mrenclave [32]byte) *policy.Policy {
	p, err := policy.Parse([]byte(PolicyTOML(mrenclave)))
	if err != nil {
		panic(err)
	}
	return p
}
