package tdx

import (
	"context"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
)

// TestSyntheticV5EveryByte: a synthetic version 5 quote (TD report 1.5
// body) that verifies in full, collateral dates included, no longer
// verifies with any one of its bytes flipped.
func TestSyntheticV5EveryByte(t *testing.T) {
	if testing.Short() {
		t.Skip("verifies a quote once per byte: skipped with -short only")
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := tdxtest.NewBuilder(pki, now)
	b.Version, b.BodyType = 5, BodyTD15
	b.Body.MRServiceTD[0], b.Body.TEETCBSVN2[0] = 1, 1
	q, c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(anyTD{}, Options{Now: func() time.Time { return now }, TestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(e *attest.Evidence) error {
		_, err := v.Verify(context.Background(), e)
		return err
	}
	ev := &attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}
	if err := verify(ev); err != nil {
		t.Fatalf("the unchanged quote: %v", err)
	}
	if bad := flipEveryByte(ev, verify); len(bad) > 0 {
		t.Fatalf("bytes %v flipped: the quote still verifies", bad)
	}
}
