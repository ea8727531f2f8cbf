package pccs

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

// TestAzureTHIM: a collateral service shaped like Azure's THIM behind the
// instance metadata service (a path prefix, and the header Metadata: true
// on every request) serves collateral to a client configured with that
// base URL and header, and refuses one without the header.
func TestAzureTHIM(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	q := parse(t, ev.Quote)
	f := pccstest.New(t, ev.Collateral, b.FMSPC, CAProcessor)
	f.Azure("/metadata/THIM", "Metadata", "true")
	base := f.URL + "/metadata/THIM"
	ctx := context.Background()

	withHeader := &Cache{Client: &Client{BaseURL: base, Header: http.Header{"Metadata": {"true"}}}, Now: func() time.Time { return now }}
	c, err := withHeader.Collateral(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sgx.Verify(ev.Quote, c, sgx.Options{Now: func() time.Time { return now }, TestRoot: pki.Root}); err != nil {
		t.Fatalf("collateral from the THIM-shaped service does not verify: %v", err)
	}
	without := &Cache{Client: &Client{BaseURL: base}, Now: func() time.Time { return now }}
	var pe *Error
	if _, err := without.Collateral(ctx, q); !errors.As(err, &pe) {
		t.Fatalf("without the header: %v, want a *pccs.Error", err)
	}
}
