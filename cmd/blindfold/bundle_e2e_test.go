//go:build cgo

package main

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// keptAttester quotes like attesttest.Attester but keeps the evidence of
// each report data, so that collateral reissued for it verifies its
// quotes; change alters its builders.
type keptAttester struct {
	pki    *sgxtest.PKI
	now    time.Time
	change func(*sgxtest.Builder)
	mu     sync.Mutex
	evs    map[[64]byte]*sgxtest.Evidence
}

func (a *keptAttester) Type() string { return attest.TypeSGXDCAP }

func (a *keptAttester) Evidence(_ context.Context, rd [64]byte) (*attest.Evidence, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.evs[rd]
	if ev == nil {
		b := sgxtest.NewBuilder(a.pki, a.now)
		b.ReportBody.ReportData = rd
		a.change(b)
		var err error
		if ev, err = b.Build(); err != nil {
			return nil, err
		}
		a.evs[rd] = ev
	}
	return sgx.Evidence(ev.Quote, ev.Collateral)
}

// TestAttestCollateralBundle: attest --collateral-bundle verifies the
// server's quote with the bundle's collateral instead of the server's. The
// server sends collateral that puts its platform OutOfDate; a bundle that
// says UpToDate passes, an expired bundle and a bundle of another platform
// are refused.
func TestAttestCollateralBundle(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	pki, err := sgxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	att := &keptAttester{pki: pki, now: now, change: func(b *sgxtest.Builder) { b.TCBInfo.Levels[0].Status = "OutOfDate" }, evs: map[[64]byte]*sgxtest.Evidence{}}
	srv := testserver.StartHardware(t, att)
	_, port, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw}))
	pol := write("policy.toml", []byte(attesttest.PolicyTOML(attesttest.MREnclave())+"accepted_tcb_statuses = [\"UpToDate\"]\n"))
	args := func(extra ...string) []string {
		return append([]string{"attest", srv.UntrustedAddr, "--policy", pol, "--insecure-test-root-ca", root, "--host-cert", srv.HostCertPEM, "--attested-port", strconv.Itoa(port), "--timeout", "30s"}, extra...)
	}
	if code, _, errOut := runCLI(t, args()...); code != exitConnection || !strings.Contains(errOut, "OutOfDate") {
		t.Fatalf("with the server's collateral: exit %d, stderr %q", code, errOut)
	}
	att.mu.Lock()
	ev := att.evs[attest.ReportData(srv.AttestedCertificateDER(), nil)]
	att.mu.Unlock()
	if ev == nil {
		t.Fatal("the server has not asked for evidence of its certificate")
	}
	bundle := func(name string, issued time.Time, fmspc [6]byte) string {
		c, err := ev.Reissue(sgxtest.NewBuilder(pki, issued))
		if err != nil {
			t.Fatal(err)
		}
		b := &collateral.Bundle{}
		if err := b.Add(pccs.Platform{FMSPC: fmspc, CA: pccs.CAProcessor}, c); err != nil {
			t.Fatal(err)
		}
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return write(name, data)
	}
	fmspc := sgxtest.NewBuilder(pki, now).FMSPC
	other := fmspc
	other[1] ^= 0xff
	tests := []struct {
		name         string
		bundle       string
		code         int
		stdout, errs string
	}{
		{"fresh bundle", bundle("fresh.json", now, fmspc), exitOK, "tcb status:             UpToDate", ""},
		{"fresh bundle, recoveries", bundle("fresh2.json", now, fmspc), exitOK, "tcb recoveries:         0 TCB recoveries behind", ""},
		// Issued two months ago: its PCK CRL's next update has passed.
		{"expired bundle", bundle("old.json", now.AddDate(0, -2, 0), fmspc), exitConnection, "", "collateral bundle: expired"},
		{"another platform", bundle("other.json", now, other), exitConnection, "", "the bundle has fmspc="},
		{"missing bundle", filepath.Join(dir, "none.json"), exitIO, "", "--collateral-bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, args("--collateral-bundle", tc.bundle)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.errs) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
}
