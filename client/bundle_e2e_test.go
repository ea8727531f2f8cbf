//go:build cgo

package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
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
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/attest/tsm"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
)

// outdatedAttester quotes like attesttest.Attester, but keeps the
// evidence of each report data (so that collateral reissued for it
// verifies its quotes), and sends collateral whose TCB info puts the
// platform OutOfDate.
type outdatedAttester struct {
	pki *sgxtest.PKI
	mu  sync.Mutex
	evs map[[64]byte]*sgxtest.Evidence
}

func (a *outdatedAttester) Type() string { return attest.TypeSGXDCAP }

func (a *outdatedAttester) Evidence(_ context.Context, rd [64]byte) (*attest.Evidence, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.evs[rd]
	if ev == nil {
		b := sgxtest.NewBuilder(a.pki, hwNow)
		b.ReportBody.ReportData = rd
		b.TCBInfo.Levels[0].Status = "OutOfDate"
		var err error
		if ev, err = b.Build(); err != nil {
			return nil, err
		}
		a.evs[rd] = ev
	}
	return sgx.Evidence(ev.Quote, ev.Collateral)
}

// quoted returns the evidence made for the server's attested certificate.
func (a *outdatedAttester) quoted(t *testing.T, certDER []byte) *sgxtest.Evidence {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.evs[attest.ReportData(certDER, nil)]
	if ev == nil {
		t.Fatal("the server has not asked for evidence of its certificate")
	}
	return ev
}

// TestCollateralBundle: with WithCollateralBundle the client judges the
// server's quote by the bundle's collateral, not by the server's. The
// server here sends collateral whose TCB info puts its platform OutOfDate
// (refused by the policy); a bundle of newer collateral that says UpToDate
// lets it connect, and bundles that revoke its PCK certificate, have
// expired or hold another platform refuse it.
func TestCollateralBundle(t *testing.T) {
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	att := &outdatedAttester{pki: pki, evs: map[[64]byte]*sgxtest.Evidence{}}
	srv := testserver.StartHardware(t, att)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := func(tm time.Time) client.Option { return client.WithTime(func() time.Time { return tm }) }
	connect := func(extra ...client.Option) (*client.Client, error) {
		opts := append([]client.Option{
			client.WithHostCertificateFile(srv.HostCertPEM),
			client.WithAttestedPort(attestedPort(t, srv)),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			client.WithPolicy(attesttest.Policy(attesttest.MREnclave())),
			client.WithTestRootCA(pki.Root),
		}, extra...)
		return client.Connect(ctx, srv.UntrustedAddr, opts...)
	}

	issued := hwNow.Add(2 * time.Hour) // the bundle's collateral is newer than the server's
	later := issued.Add(time.Hour)
	if _, err := connect(at(later)); !errors.Is(err, client.ErrPolicyMismatch) {
		t.Fatalf("with the server's collateral: err = %v, want a policy mismatch (OutOfDate)", err)
	}
	ev := att.quoted(t, srv.AttestedCertificateDER())
	bundle := func(fmspc [6]byte, change func(*sgxtest.Builder)) *collateral.Bundle {
		b := sgxtest.NewBuilder(pki, issued)
		if change != nil {
			change(b)
		}
		c, err := ev.Reissue(b)
		if err != nil {
			t.Fatal(err)
		}
		out := &collateral.Bundle{}
		if err := out.Add(pccs.Platform{FMSPC: fmspc, CA: pccs.CAProcessor}, c); err != nil {
			t.Fatal(err)
		}
		return out
	}
	fmspc := sgxtest.NewBuilder(pki, issued).FMSPC

	good := bundle(fmspc, nil)
	c, err := connect(at(later), client.WithCollateralBundle(good))
	if err != nil {
		t.Fatalf("with the bundle: %v", err)
	}
	res := sgx.ResultOf(c.Attestation().Claims)
	c.Close()
	if res.Status != sgx.UpToDate || !res.TCBInfoIssueDate.Equal(issued.Add(-time.Hour)) {
		t.Fatalf("with the bundle: status %s, TCB info issued %s; want UpToDate, %s", res.Status, res.TCBInfoIssueDate, issued.Add(-time.Hour))
	}

	check, err := good.Verify(sgx.Options{Now: func() time.Time { return later }, TestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	other := fmspc
	other[5]++
	tests := []struct {
		name   string
		bundle *collateral.Bundle
		now    time.Time
		is     []error
		says   string
	}{
		{"revoked PCK certificate", bundle(fmspc, func(b *sgxtest.Builder) { b.PCKCRL.Revoked = []*big.Int{ev.PCK.SerialNumber} }), later, []error{client.ErrBadEvidence, sgx.ErrRevoked}, "PCK CRL"},
		{"expired bundle", good, check.NextUpdate.Add(time.Second), []error{client.ErrStaleCollateral}, "collateral bundle: expired"},
		{"bundle not yet valid", good, hwNow, []error{client.ErrStaleCollateral}, "collateral bundle: not yet valid"},
		{"another platform", bundle(other, func(b *sgxtest.Builder) { b.TCBInfo.FMSPC = hex.EncodeToString(other[:]) }), later, []error{client.ErrBadEvidence, collateral.ErrNoEntry}, "needs fmspc="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connect(at(tc.now), client.WithCollateralBundle(tc.bundle))
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			for _, is := range tc.is {
				if !errors.Is(err, is) {
					t.Errorf("err = %v, want %v", err, is)
				}
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v, want it to say %q", err, tc.says)
			}
		})
	}
}

// TestCollateralBundleTDX: a TDX server's quote is verified with the
// bundle's TDX collateral, by Connect and for a proof: collateral that
// puts the platform OutOfDate refuses it though the server's own
// collateral says UpToDate, and an expired bundle is stale.
func TestCollateralBundleTDX(t *testing.T) {
	pki, err := tdxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tsm.New(pki.TSM(hwNow, nil), tdxtest.Source{PKI: pki, Now: hwNow})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, iss)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pol := tdxPolicy(t, tdxtest.MRTD())
	issued := hwNow.Add(2 * time.Hour)
	later := issued.Add(time.Hour)
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	connect := func(now time.Time, extra ...client.Option) (*client.Client, error) {
		opts := append([]client.Option{
			client.WithHostCertificateFile(srv.HostCertPEM),
			client.WithAttestedPort(attestedPort(t, srv)),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			client.WithPolicy(pol),
			client.WithTestRootCA(pki.Root),
			client.WithTime(at(now)),
		}, extra...)
		return client.Connect(ctx, srv.UntrustedAddr, opts...)
	}
	bundle := func(status string) *collateral.Bundle {
		b := tdxtest.NewBuilder(pki, issued)
		b.Status = status
		_, c, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		out := &collateral.Bundle{}
		if err := out.Add(pccs.Platform{FMSPC: b.FMSPC, CA: pccs.CAPlatform, TEE: pccs.TEETDX}, c); err != nil {
			t.Fatal(err)
		}
		return out
	}
	good, outdated := bundle("UpToDate"), bundle("OutOfDate")

	c, err := connect(later, client.WithCollateralBundle(good))
	if err != nil {
		t.Fatalf("with the bundle: %v", err)
	}
	defer c.Close()
	up, err := c.UploadModel(ctx, testserver.Model(t, "mlp.onnx"), client.WithModelID("mlp"), client.Sign())
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if _, err := connect(later, client.WithCollateralBundle(outdated)); !errors.Is(err, client.ErrBadEvidence) || !strings.Contains(err.Error(), "OutOfDate") {
		t.Fatalf("with a bundle that says OutOfDate: err = %v", err)
	}
	check, err := good.Verify(sgx.Options{Now: at(later), TestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	expired := check.NextUpdate.Add(time.Second)
	if _, err := connect(expired, client.WithCollateralBundle(good)); !errors.Is(err, client.ErrStaleCollateral) || !strings.Contains(err.Error(), "collateral bundle: expired") {
		t.Fatalf("with an expired bundle: err = %v", err)
	}

	path := filepath.Join(t.TempDir(), "send.proof")
	if err := up.SaveProof(path); err != nil {
		t.Fatal(err)
	}
	p, err := proof.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := proof.Evidence(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bundle *collateral.Bundle
		ok     bool
	}{{"proof with the bundle", good, true}, {"proof with a bundle that says OutOfDate", outdated, false}} {
		opts := proof.VerifyOptions{Policy: pol, TestRoot: pki.Root, Now: at(later)}
		if opts.Collateral, err = tc.bundle.ForQuote(ev.Raw, sgx.Options{Now: opts.Now, TestRoot: pki.Root}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res, err := proof.Verify(p, opts)
		if tc.ok && (err != nil || !res.SuppliedCollateral) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.ok && (!errors.Is(err, proof.ErrBadEvidence) || !strings.Contains(err.Error(), "OutOfDate")) {
			t.Fatalf("%s: err = %v, want bad evidence", tc.name, err)
		}
	}
}
