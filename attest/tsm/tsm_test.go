package tsm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/snp/snptest"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/attest/tsm"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestSNPEvidenceVerifies: evidence from a fake SEV-SNP configfs-tsm tree
// carries the report data asked for and the certificate table, and
// verifies with the synthetic roots.
func TestSNPEvidenceVerifies(t *testing.T) {
	pki, err := snptest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tsm.New(pki.TSM(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if iss.Type() != attest.TypeSNP {
		t.Fatalf("type %q", iss.Type())
	}
	var rd [64]byte
	copy(rd[:], "report data for this test")
	ev, err := iss.Evidence(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := pki.CRL(now.Add(-time.Hour), now.Add(time.Hour))
	v, err := snp.NewVerifier(anyGuest{}, snp.Options{Now: func() time.Time { return now }, TestRoots: pki.Roots(), CRL: crl})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData != rd {
		t.Fatalf("report data %x, want %x", c.ReportData, rd)
	}
}

// TestTDXEvidenceVerifies: evidence from a fake TDX configfs-tsm tree, of
// a TDX 1.0 platform (quote version 4) and of a TDX 1.5 platform (version
// 5, TD report 1.5 body), carries the report data asked for and the
// collateral of the quote's platform, and verifies with the synthetic
// root.
func TestTDXEvidenceVerifies(t *testing.T) {
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []uint16{4, 5} {
		iss, err := tsm.New(pki.TSM(now, func(b *tdxtest.Builder) { b.Version, b.BodyType = version, tdx.BodyTD15 }), tdxtest.Source{PKI: pki, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var rd [64]byte
		copy(rd[:], "report data for this test")
		ev, err := iss.Evidence(context.Background(), rd)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if len(ev.Collateral) == 0 {
			t.Fatalf("version %d: no collateral", version)
		}
		v, err := tdx.NewVerifier(anyTD{}, tdx.Options{Now: func() time.Time { return now }, TestRoot: pki.Root})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), ev)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if r := tdx.ResultOf(c); c.ReportData != rd || r.Version != version {
			t.Fatalf("version %d: report data %x, result version %d", version, c.ReportData, r.Version)
		}
	}
}

type anyTD struct{}

func (anyTD) Check(*tdx.Result) error { return nil }

type anyGuest struct{}

func (anyGuest) Check(*snp.Result) error { return nil }

// TestRefusesOtherProviders: configfs-tsm's own fake answers with provider
// "fake", which is neither TDX nor SEV-SNP; a TDX provider needs a PCCS.
func TestRefusesOtherProviders(t *testing.T) {
	c := &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.Report611(0)}}
	if _, err := tsm.New(c, nil); !errors.Is(err, tsm.ErrProvider) {
		t.Fatalf("provider fake: %v, want ErrProvider", err)
	}
	sub := faketsm.Report611(0)
	fallback := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "provider" {
			return []byte("tdx_guest\n"), nil
		}
		return fallback(e, attr)
	}
	if _, err := tsm.New(&faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}, nil); !errors.Is(err, tsm.ErrCollateral) {
		t.Fatalf("TDX without a PCCS: %v, want ErrCollateral", err)
	}
	if _, err := tsm.New(nil, nil); !errors.Is(err, tsm.ErrDevice) {
		t.Fatalf("no client: %v, want ErrDevice", err)
	}
}
