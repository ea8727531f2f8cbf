// Package tsm is the server-side evidence issuer of confidential VMs: it
// asks Linux's configfs-tsm interface (/sys/kernel/config/tsm/report) for a
// TDX quote or an SEV-SNP attestation report over the report data, with
// github.com/google/go-configfs-tsm. The provider attribute says which
// platform the guest runs on ("tdx_guest", "sev_guest"); the evidence type
// follows from it. For SEV-SNP, the auxblob (the certificate table with
// the VCEK, when the host provides it) is the evidence's collateral; for
// TDX, the collateral (TCB info, QE identity, CRLs) is fetched for the
// quote's platform from a PCCS through a CollateralSource.
package tsm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/tdx"
)

// Providers, as configfs-tsm's provider attribute names them.
const (
	ProviderTDX = "tdx_guest"
	ProviderSNP = "sev_guest"
)

// CollateralSource fetches TDX collateral for a platform (attest/pccs's
// Cache is one).
type CollateralSource interface {
	ForPlatform(ctx context.Context, p pccs.Platform) (*sgx.Collateral, error)
}

// Errors of the issuer. Messages hold no secret.
var (
	// ErrDevice means configfs-tsm gave no report.
	ErrDevice = errors.New("tsm: configfs-tsm report")
	// ErrProvider means the provider is not one Blindfold supports, or
	// changed.
	ErrProvider = errors.New("tsm: provider")
	// ErrCollateral means the TDX collateral could not be had.
	ErrCollateral = errors.New("tsm: collateral")
)

// Issuer produces TDX or SEV-SNP evidence through configfs-tsm: it
// implements attest.Issuer.
type Issuer struct {
	client configfsi.Client
	typ    string
	source CollateralSource
	mu     sync.Mutex // one report at a time
}

// New probes configfs-tsm through client (linuxtsm.MakeClient() on a
// guest, a faketsm client in tests) with a report over zero report data,
// and returns an issuer of the provider's evidence type. source fetches
// TDX collateral; it is required on TDX.
func New(client configfsi.Client, source CollateralSource) (*Issuer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: no configfs-tsm client", ErrDevice)
	}
	resp, err := report.Get(client, &report.Request{InBlob: make([]byte, 64)})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	i := &Issuer{client: client, source: source}
	if i.typ, err = typeOf(resp.Provider); err != nil {
		return nil, err
	}
	if i.typ == attest.TypeTDX && source == nil {
		return nil, fmt.Errorf("%w: a TDX guest needs a PCCS to fetch its quotes' collateral from", ErrCollateral)
	}
	return i, nil
}

func typeOf(provider string) (string, error) {
	switch p := strings.TrimSpace(provider); p {
	case ProviderTDX:
		return attest.TypeTDX, nil
	case ProviderSNP:
		return attest.TypeSNP, nil
	default:
		return "", fmt.Errorf("%w: configfs-tsm provider %q is not %s or %s", ErrProvider, p, ProviderTDX, ProviderSNP)
	}
}

// Type returns attest.TypeTDX or attest.TypeSNP.
func (i *Issuer) Type() string { return i.typ }

// Evidence returns a fresh quote or report over reportData, with its
// collateral.
func (i *Issuer) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i.mu.Lock()
	resp, err := report.Get(i.client, &report.Request{InBlob: reportData[:], GetAuxBlob: i.typ == attest.TypeSNP})
	i.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	typ, err := typeOf(resp.Provider)
	if err != nil {
		return nil, err
	}
	if typ != i.typ {
		return nil, fmt.Errorf("%w: changed from %s to %s", ErrProvider, i.typ, typ)
	}
	if len(resp.OutBlob) == 0 {
		return nil, fmt.Errorf("%w: empty outblob", ErrDevice)
	}
	ev := &attest.Evidence{Type: typ, Raw: resp.OutBlob}
	switch typ {
	case attest.TypeSNP:
		ev.Collateral = resp.AuxBlob
	case attest.TypeTDX:
		// A TDX 1.0 platform gives version 4 quotes, a TDX 1.5 platform
		// version 5.
		p, err := tdx.PlatformOf(resp.OutBlob)
		if err != nil {
			return nil, fmt.Errorf("%w: the quote: %v", ErrDevice, err)
		}
		c, err := i.source.ForPlatform(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCollateral, p, err)
		}
		if ev.Collateral, err = sgx.EncodeCollateral(c); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCollateral, err)
		}
	}
	return ev, nil
}
