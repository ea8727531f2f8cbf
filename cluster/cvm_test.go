package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/snp/snptest"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/attest/tsm"
	"github.com/blindfold-ai/blindfold/attest/verifier"
)

var cvmNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cvmCase is one platform's way of making replicas: same, another
// measurement, and a policy accepting both measurements.
type cvmCase struct {
	name               string
	same, other        func(t *testing.T) attest.Issuer
	policy, policyBoth string
	verify             verifier.Options
}

func tdxCase(t *testing.T) cvmCase {
	pki, err := tdxtest.NewPKI(cvmNow)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(change func(*tdxtest.Builder)) func(t *testing.T) attest.Issuer {
		return func(t *testing.T) attest.Issuer {
			iss, err := tsm.New(pki.TSM(cvmNow, change), tdxtest.Source{PKI: pki, Now: cvmNow})
			if err != nil {
				t.Fatal(err)
			}
			return iss
		}
	}
	mrtd := tdxtest.MRTD()
	other := mrtd
	other[0] ^= 0xff
	pol := func(ms ...[48]byte) string {
		var q []string
		for _, m := range ms {
			q = append(q, `"`+hex.EncodeToString(m[:])+`"`)
		}
		return "[tdx]\nmrtd = [" + strings.Join(q, ", ") + "]\nmin_tee_tcb_svn = \"03010200000000000000000000000000\"\n"
	}
	return cvmCase{
		name: "tdx", same: mk(nil), other: mk(func(b *tdxtest.Builder) { b.Body.MRTD = other }),
		policy: pol(mrtd), policyBoth: pol(mrtd, other),
		verify: verifier.Options{Now: func() time.Time { return cvmNow }, TDXTestRoot: pki.Root},
	}
}

func snpCase(t *testing.T) cvmCase {
	pki, err := snptest.NewPKI(cvmNow)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.CRL(cvmNow.Add(-time.Hour), cvmNow.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(base *snptest.Report) func(t *testing.T) attest.Issuer {
		return func(t *testing.T) attest.Issuer {
			iss, err := tsm.New(pki.TSM(base), nil)
			if err != nil {
				t.Fatal(err)
			}
			return iss
		}
	}
	other := snptest.DefaultReport()
	other.Measurement[0] ^= 0xff
	pol := func(ms ...[48]byte) string {
		var q []string
		for _, m := range ms {
			q = append(q, `"`+hex.EncodeToString(m[:])+`"`)
		}
		return "[snp]\nmeasurement = [" + strings.Join(q, ", ") + "]\nmin_tcb_snp = 8\nmin_firmware = \"1.55\"\n"
	}
	return cvmCase{
		name: "snp", same: mk(nil), other: mk(other),
		policy: pol(snptest.Measurement()), policyBoth: pol(snptest.Measurement(), other.Measurement),
		verify: verifier.Options{Now: func() time.Time { return cvmNow }, SNP: snp.Options{TestRoots: pki.Roots(), CRL: crl}},
	}
}

// TestCVMJoinRules: confidential-VM replicas (TDX, SEV-SNP) join a peer
// only with the same platform, the same measurement and the same policy
// file, with evidence that verifies and binds the join connection.
func TestCVMJoinRules(t *testing.T) {
	tdxC, snpC := tdxCase(t), snpCase(t)
	for _, c := range []cvmCase{tdxC, snpC} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			mk := func(iss attest.Issuer, pol string, o verifier.Options) (*CVM, error) {
				return NewCVM(ctx, CVMOptions{Issuer: iss, PolicyFile: []byte(pol), Verify: o})
			}
			peerAtt, err := mk(c.same(t), c.policyBoth, c.verify)
			if err != nil {
				t.Fatal(err)
			}
			id, err := NewIdentity()
			if err != nil {
				t.Fatal(err)
			}
			addr := startPeer(t, id, peerAtt)
			joiner, err := mk(c.same(t), c.policyBoth, c.verify)
			if err != nil {
				t.Fatal(err)
			}
			got, err := JoinAddr(ctx, addr, joiner)
			if err != nil {
				t.Fatalf("a replica with the same measurement and policy: %v", err)
			}
			if string(got.Attested.DER) != string(id.Attested.DER) {
				t.Fatal("joined with another certificate")
			}
			// Another measurement that the (shared) policy accepts: refused
			// all the same, by the same-measurement rule.
			otherM, err := mk(c.other(t), c.policyBoth, c.verify)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := JoinAddr(ctx, addr, otherM); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "measurement") {
				t.Fatalf("another measurement: %v, want a refusal naming the measurement", err)
			}
			// The same measurement held to another policy file: refused.
			otherPol, err := mk(c.same(t), c.policy, c.verify)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := JoinAddr(ctx, addr, otherPol); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "policy file") {
				t.Fatalf("another policy file: %v, want a refusal naming the policy", err)
			}
			// A replica that does not satisfy its own policy never starts.
			if _, err := mk(c.other(t), c.policy, c.verify); err == nil {
				t.Fatal("a replica whose measurement its own policy refuses started")
			}
			// Evidence against the vendor's roots, not the test PKI: refused.
			if _, err := mk(c.same(t), c.policyBoth, verifier.Options{Now: c.verify.Now}); err == nil {
				t.Fatal("test-PKI evidence satisfied the vendor's roots")
			}
		})
	}
	// Another platform: a TDX replica's proof is refused by an SEV-SNP
	// peer (and the SGX attestor refuses both).
	ctx := context.Background()
	snpPeer, err := NewCVM(ctx, CVMOptions{Issuer: snpC.same(t), PolicyFile: []byte(snpC.policy + tdxC.policy), Verify: verifier.Options{Now: snpC.verify.Now, TDXTestRoot: tdxC.verify.TDXTestRoot, SNP: snpC.verify.SNP}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, snpPeer)
	tdxJoiner, err := NewCVM(ctx, CVMOptions{Issuer: tdxC.same(t), PolicyFile: []byte(snpC.policy + tdxC.policy), Verify: verifier.Options{Now: tdxC.verify.Now, TDXTestRoot: tdxC.verify.TDXTestRoot, SNP: snpC.verify.SNP}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinAddr(ctx, addr, tdxJoiner); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "one platform") {
		t.Fatalf("a TDX replica joining an SEV-SNP one: %v, want a refusal", err)
	}
}
