package snp

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
)

// realAt is inside the validity of the real Milan VCEK (2022-09-24 to
// 2029-09-24).
var realAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type policyFunc func(*Result) error

func (f policyFunc) Check(r *Result) error { return f(r) }

var anyGuest = policyFunc(func(*Result) error { return nil })

// certTable returns a certificate table (the configfs-tsm auxblob shape)
// holding the VCEK.
func certTable(t *testing.T, vcek []byte) []byte {
	t.Helper()
	tbl := &sevabi.CertTable{Entries: []sevabi.CertTableEntry{{GUID: mustGUID(t, sevabi.VcekGUID), RawCert: vcek}}}
	return tbl.Marshal()
}

func realEvidence(t *testing.T) *attest.Evidence {
	t.Helper()
	return &attest.Evidence{
		Type:       attest.TypeSNP,
		Raw:        testvectors.Read(t, "snp/go-sev-guest/attestation.bin"),
		Collateral: certTable(t, testvectors.Read(t, "snp/go-sev-guest/vcek.testcer")),
	}
}

func realVerifier(t *testing.T, p Policy, at time.Time) *Verifier {
	t.Helper()
	// The report comes without its ARK's CRL (no network here): revocation
	// is unknown, and accepted explicitly for this vector only.
	v, err := NewVerifier(p, Options{Now: func() time.Time { return at }, AllowMissingCRL: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRealReport: the real Milan report verifies against the pinned Milan
// ARK; its guest policy allows debugging, so a policy (which always refuses
// debug) refuses it; every flipped byte of the report fails.
func TestRealReport(t *testing.T) {
	ctx := context.Background()
	ev := realEvidence(t)
	c, err := realVerifier(t, anyGuest, realAt).Verify(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	r := ResultOf(c)
	if r == nil || r.Product != "Milan" || r.Signer != "VCEK" || c.TestRoot || r.CRLChecked {
		t.Fatalf("claims %+v", c)
	}
	t.Logf("version %d policy %#x measurement %x tcb %+v firmware %d.%d", r.Version, r.GuestPolicy, r.Measurement, r.ReportedTCB, r.FirmwareMajor, r.FirmwareMinor)
	if r.GuestPolicy&PolicyDebug == 0 {
		t.Fatalf("the test vector's guest policy %#x was expected to allow debugging", r.GuestPolicy)
	}
	v := realVerifier(t, anyGuest, realAt)
	var (
		mu     sync.Mutex
		passed []int
		wg     sync.WaitGroup
	)
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				bad := *ev
				bad.Raw = append([]byte(nil), ev.Raw...)
				bad.Raw[i] ^= 0x01
				if _, err := v.Verify(ctx, &bad); err == nil {
					mu.Lock()
					passed = append(passed, i)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ev.Raw {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(passed) > 0 {
		t.Fatalf("bytes %v flipped: the report still verifies", passed)
	}
}

func TestRealReportRefused(t *testing.T) {
	ctx := context.Background()
	ev := realEvidence(t)
	for _, tc := range []struct {
		name string
		v    *Verifier
		ev   *attest.Evidence
		want error
	}{
		{"after the VCEK expires", realVerifier(t, anyGuest, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), ev, ErrCertificate},
		{"before the VCEK is valid", realVerifier(t, anyGuest, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)), ev, ErrCertificate},
		{"no VCEK, no getter", realVerifier(t, anyGuest, realAt), &attest.Evidence{Type: attest.TypeSNP, Raw: ev.Raw}, ErrCertificate},
		{"truncated", realVerifier(t, anyGuest, realAt), &attest.Evidence{Type: attest.TypeSNP, Raw: ev.Raw[:len(ev.Raw)-1], Collateral: ev.Collateral}, ErrMalformed},
		{"trailing byte", realVerifier(t, anyGuest, realAt), &attest.Evidence{Type: attest.TypeSNP, Raw: append(append([]byte(nil), ev.Raw...), 0), Collateral: ev.Collateral}, ErrMalformed},
		{"garbage table", realVerifier(t, anyGuest, realAt), &attest.Evidence{Type: attest.TypeSNP, Raw: ev.Raw, Collateral: []byte{1, 2, 3}}, ErrMalformed},
	} {
		_, err := tc.v.Verify(ctx, tc.ev)
		if !errors.Is(err, attest.ErrBadEvidence) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want ErrBadEvidence and %v", tc.name, err, tc.want)
		}
	}
	// Without the explicit opt-out, a missing CRL is refused.
	v, _ := NewVerifier(anyGuest, Options{Now: func() time.Time { return realAt }})
	if _, err := v.Verify(ctx, ev); !errors.Is(err, ErrCRL) {
		t.Errorf("no CRL: %v, want ErrCRL", err)
	}
	// A root that is not AMD's.
	pki := newPKI(t, realAt)
	v, _ = NewVerifier(anyGuest, Options{Now: func() time.Time { return realAt }, TestRoots: []*Roots{pki.roots}, AllowMissingCRL: true})
	if _, err := v.Verify(ctx, ev); !errors.Is(err, ErrCertificate) {
		t.Errorf("wrong root: %v, want ErrCertificate", err)
	}
	// A policy that refuses debug refuses the real report.
	noDebug := policyFunc(func(r *Result) error {
		if r.GuestPolicy&PolicyDebug != 0 {
			return errors.New("debug")
		}
		return nil
	})
	if _, err := realVerifier(t, noDebug, realAt).Verify(ctx, ev); !errors.Is(err, attest.ErrPolicyMismatch) {
		t.Errorf("debug guest: %v, want ErrPolicyMismatch", err)
	}
}

// TestPinnedRoots: the embedded roots match the pinned fingerprints and
// the Milan chain of the test vectors.
func TestPinnedRoots(t *testing.T) {
	roots, err := AMDRoots()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 3 {
		t.Fatalf("%d product lines", len(roots))
	}
	ask, ark, err := parseChain(testvectors.Read(t, "snp/go-sev-guest/milan.testcer"))
	if err != nil {
		t.Fatal(err)
	}
	if !ark.Equal(roots[0].ARK) || !ask.Equal(roots[0].ASK) {
		t.Fatal("the Milan chain of the vectors is not the pinned one")
	}
}
