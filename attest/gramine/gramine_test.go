package gramine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

type staticSource struct {
	c   *sgx.Collateral
	err error
}

func (s staticSource) Collateral(context.Context, *abi.Quote) (*sgx.Collateral, error) {
	return s.c, s.err
}

// fakeTree writes a Gramine-like attestation folder whose quote file holds
// a quote over reportData.
func fakeTree(t *testing.T, reportData [64]byte) (string, *sgxtest.Evidence) {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, now)
	b.ReportBody.ReportData = reportData
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"attestation_type": []byte("dcap"), "user_report_data": nil, "quote": ev.Quote} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ev
}

func TestEvidence(t *testing.T) {
	rd := attest.ReportData([]byte("certificate DER"), []byte("nonce"))
	dir, ev := fakeTree(t, rd)
	a, err := New(dir, staticSource{c: ev.Collateral})
	if err != nil {
		t.Fatal(err)
	}
	if a.Type() != attest.TypeSGXDCAP {
		t.Fatalf("type %q", a.Type())
	}
	got, err := a.Evidence(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "user_report_data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, rd[:]) {
		t.Fatalf("user_report_data holds %x, want %x", written, rd)
	}
	if !bytes.Equal(got.Raw, ev.Quote) || !collateralEqual(t, got.Collateral, ev.Collateral) || got.Type != attest.TypeSGXDCAP {
		t.Fatal("evidence is not the device's quote with the source's collateral")
	}
}

func TestEvidenceRefuses(t *testing.T) {
	rd := attest.ReportData([]byte("certificate DER"), nil)
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		src    staticSource
		is     error
		want   string
	}{
		{"EPID, not DCAP", func(t *testing.T, dir string) { write(t, dir, "attestation_type", []byte("epid")) }, staticSource{}, ErrDevice, `"epid", want "dcap"`},
		{"not under Gramine", func(t *testing.T, dir string) { rm(t, dir, "attestation_type") }, staticSource{}, ErrDevice, "gramine-sgx"},
		{"no quote file", func(t *testing.T, dir string) { rm(t, dir, "quote") }, staticSource{}, ErrDevice, "quote"},
		{"quote cannot be read", func(t *testing.T, dir string) {
			rm(t, dir, "quote")
			if err := os.Mkdir(filepath.Join(dir, "quote"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, staticSource{}, ErrDevice, "reading"},
		{"empty quote", func(t *testing.T, dir string) { write(t, dir, "quote", nil) }, staticSource{}, ErrDevice, "empty"},
		{"garbage quote", func(t *testing.T, dir string) { write(t, dir, "quote", []byte("not a quote")) }, staticSource{}, ErrDevice, "does not parse"},
		{"no user_report_data", func(t *testing.T, dir string) { rm(t, dir, "user_report_data") }, staticSource{}, ErrDevice, "user_report_data"},
		{"quote over other report data", func(t *testing.T, dir string) {
			other, _ := fakeTree(t, attest.ReportData([]byte("other certificate"), nil))
			q, err := os.ReadFile(filepath.Join(other, "quote"))
			if err != nil {
				t.Fatal(err)
			}
			write(t, dir, "quote", q)
		}, staticSource{}, ErrDevice, "other than"},
		{"collateral unavailable", func(*testing.T, string) {}, staticSource{err: errors.New("PCCS: HTTP 503")}, ErrCollateral, "HTTP 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, ev := fakeTree(t, rd)
			tc.change(t, dir)
			src := tc.src
			if src.err == nil {
				src.c = ev.Collateral
			}
			a, err := New(dir, src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Evidence(context.Background(), rd)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.is, tc.want)
			}
		})
	}
	if _, err := New("", nil); err == nil {
		t.Fatal("New accepted no collateral source")
	}
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// collateralEqual reports whether encoded collateral decodes to c.
func collateralEqual(t *testing.T, b []byte, c *sgx.Collateral) bool {
	t.Helper()
	got, err := sgx.DecodeCollateral(b)
	if err != nil {
		t.Fatal(err)
	}
	return *got == *c
}
