package tdxtest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// TSM returns a fake configfs-tsm tree (go-configfs-tsm's faketsm) whose
// report entries answer as a TDX guest would: provider "tdx_guest", outblob
// a quote over the inblob built by NewBuilder(p, now) with change applied.
func (p *PKI) TSM(now time.Time, change func(*Builder)) configfsi.Client {
	sub := faketsm.Report611(0)
	fallback := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("tdx_guest\n"), nil
		case "outblob":
			in, ok := e.InAttrs["inblob"]
			if !ok || len(in.Value) > 64 {
				return nil, fmt.Errorf("tdxtest: inblob of %d bytes", len(in.Value))
			}
			b := NewBuilder(p, now)
			if change != nil {
				change(b)
			}
			b.Body.ReportData = [64]byte{}
			copy(b.Body.ReportData[:], in.Value)
			q, _, err := b.Build()
			return q, err
		}
		if fallback == nil {
			return nil, os.ErrNotExist
		}
		return fallback(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// Source serves the collateral of p's platform, as a PCCS would (it
// implements attest/tsm's CollateralSource).
type Source struct {
	PKI *PKI
	Now time.Time
}

// ForPlatform returns collateral built at s.Now for the platform of
// NewBuilder.
func (s Source) ForPlatform(_ context.Context, p pccs.Platform) (*sgx.Collateral, error) {
	b := NewBuilder(s.PKI, s.Now)
	if p.FMSPC != b.FMSPC || p.TEE != pccs.TEETDX {
		return nil, fmt.Errorf("tdxtest: no collateral for %s", p)
	}
	_, c, err := b.Build()
	return c, err
}
