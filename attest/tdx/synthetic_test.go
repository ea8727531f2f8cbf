package tdx_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/policy"
)

var synthNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func tdxPolicy(t *testing.T, extra string) *policy.TDX {
	t.Helper()
	m := tdxtest.MRTD()
	p, err := policy.Parse([]byte("[tdx]\nmrtd = [\"" + hex.EncodeToString(m[:]) + "\"]\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p.TDX
}

func build(t *testing.T, pki *tdxtest.PKI, change func(*tdxtest.Builder)) *attest.Evidence {
	t.Helper()
	b := tdxtest.NewBuilder(pki, synthNow)
	if change != nil {
		change(b)
	}
	q, c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tdx.EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}
}

func verify(t *testing.T, pki *tdxtest.PKI, ev *attest.Evidence, pol tdx.Policy, at time.Time) (*attest.Claims, error) {
	t.Helper()
	v, err := tdx.NewVerifier(pol, tdx.Options{Now: func() time.Time { return at }, TestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(context.Background(), ev)
}

func TestSyntheticVerifies(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify(t, pki, build(t, pki, nil), tdxPolicy(t, "min_tee_tcb_svn = \"03010200000000000000000000000000\"\n"), synthNow)
	if err != nil {
		t.Fatal(err)
	}
	if r := tdx.ResultOf(c); r == nil || r.MRTD != tdxtest.MRTD() || !c.TestRoot {
		t.Fatalf("claims %+v", c)
	}
}

// TestSyntheticRefused: revoked PCK or PCK CA, expired collateral or PCK
// certificate, a TCB level, TDX module or QE that is not UpToDate, another
// root.
func TestSyntheticRefused(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tdxtest.NewPKI(synthNow)
	pol := tdxPolicy(t, "")
	for _, tc := range []struct {
		name   string
		change func(*tdxtest.Builder)
		at     time.Time
		stale  bool
		pki    *tdxtest.PKI
	}{
		{"PCK revoked", func(b *tdxtest.Builder) { b.RevokePCK = true }, synthNow, false, nil},
		{"PCK CA revoked", func(b *tdxtest.Builder) { b.RevokePCKCA = true }, synthNow, false, nil},
		{"collateral expired", nil, synthNow.Add(40 * 24 * time.Hour), true, nil},
		{"collateral not yet valid", nil, synthNow.Add(-48 * time.Hour), true, nil},
		{"PCK certificate expired", func(b *tdxtest.Builder) { b.PCKNotAfter = synthNow.Add(-time.Minute) }, synthNow, false, nil},
		{"platform OutOfDate", func(b *tdxtest.Builder) { b.Status = "OutOfDate" }, synthNow, false, nil},
		{"TDX module OutOfDate", func(b *tdxtest.Builder) { b.ModuleStatus = "OutOfDate" }, synthNow, false, nil},
		{"QE Revoked", func(b *tdxtest.Builder) { b.QEStatus = "Revoked" }, synthNow, false, nil},
		{"another root", nil, synthNow, false, other},
	} {
		ev := build(t, pki, tc.change)
		vp := pki
		if tc.pki != nil {
			vp = tc.pki
		}
		_, err := verify(t, vp, ev, pol, tc.at)
		if !errors.Is(err, attest.ErrBadEvidence) || errors.Is(err, attest.ErrStaleCollateral) != tc.stale {
			t.Errorf("%s: %v, want ErrBadEvidence (stale %t)", tc.name, err, tc.stale)
		}
	}
}

// TestSyntheticPolicy: debug is refused whatever the policy, and each
// [tdx] key refuses a TD that breaks it, in quotes of version 4 and of
// version 5 with either body type. mr_servicetd refuses a TD report 1.5
// body with another MRSERVICETD and a 1.0 body, which has none.
func TestSyntheticPolicy(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	h := func(c byte) string { return strings.Repeat(hex.EncodeToString([]byte{c}), 48) }
	for _, tc := range []struct {
		name   string
		extra  string
		change func(*tdxtest.Builder)
		key    policy.Key
	}{
		{"debug", "", func(b *tdxtest.Builder) { b.Body.TDAttributes |= tdx.AttrDebug }, policy.KeyTDXDebug},
		{"mrtd", "", func(b *tdxtest.Builder) { b.Body.MRTD[0] ^= 1 }, policy.KeyTDXMRTD},
		{"rtmr0", "rtmr0 = [\"" + h(0x99) + "\"]\n", nil, policy.KeyTDXRTMR0},
		{"rtmr1", "rtmr1 = [\"" + h(0x99) + "\"]\n", nil, policy.KeyTDXRTMR1},
		{"rtmr2", "rtmr2 = [\"" + h(0x99) + "\"]\n", nil, policy.KeyTDXRTMR2},
		{"rtmr3", "rtmr3 = [\"" + h(0x99) + "\"]\n", nil, policy.KeyTDXRTMR3},
		{"mrseam", "mrseam = [\"" + h(0x99) + "\"]\n", nil, policy.KeyTDXMRSEAM},
		{"td attributes", "td_attributes = \"0x0\"\ntd_attributes_mask = \"0xffffffff\"\n", nil, policy.KeyTDXAttributes},
		{"xfam", "xfam = \"0x3\"\nxfam_mask = \"0xff\"\n", nil, policy.KeyTDXXFAM},
		{"min tee tcb svn", "min_tee_tcb_svn = \"04000000000000000000000000000000\"\n", nil, policy.KeyTDXMinTEETCBSVN},
		{"mr_config_id", "mr_config_id = \"" + h(0x99) + "\"\n", nil, policy.KeyTDXMRConfigID},
		{"mr_owner", "mr_owner = \"" + h(0x99) + "\"\n", nil, policy.KeyTDXMROwner},
		{"mr_owner_config", "mr_owner_config = \"" + h(0x99) + "\"\n", nil, policy.KeyTDXMROwnerConfig},
		{"mr_servicetd", "mr_servicetd = \"" + h(0x99) + "\"\n", nil, policy.KeyTDXMRServiceTD},
	} {
		for _, q := range []struct {
			name    string
			version func(*tdxtest.Builder)
		}{
			{"version 4", func(*tdxtest.Builder) {}},
			{"version 5, TD report 1.0", func(b *tdxtest.Builder) { b.Version, b.BodyType = 5, tdx.BodyTD10 }},
			{"version 5, TD report 1.5", func(b *tdxtest.Builder) { b.Version, b.BodyType = 5, tdx.BodyTD15 }},
		} {
			change := func(b *tdxtest.Builder) {
				q.version(b)
				if tc.change != nil {
					tc.change(b)
				}
			}
			_, err := verify(t, pki, build(t, pki, change), tdxPolicy(t, tc.extra), synthNow)
			var me *policy.MismatchError
			if !errors.Is(err, attest.ErrPolicyMismatch) || !errors.As(err, &me) || me.Field != tc.key {
				t.Errorf("%s, %s: %v, want a policy mismatch on %s", tc.name, q.name, err, tc.key)
			}
		}
	}
}

// TestSyntheticFetchedCollateral: a quote that comes without collateral is
// verified with collateral fetched for its platform through the Fetcher (a
// PCCS in production); without a Fetcher it is refused.
func TestSyntheticFetchedCollateral(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	ev := build(t, pki, nil)
	ev.Collateral = nil
	v, err := tdx.NewVerifier(tdxPolicy(t, ""), tdx.Options{Now: func() time.Time { return synthNow }, TestRoot: pki.Root, Fetcher: tdxtest.Source{PKI: pki, Now: synthNow}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, pki, ev, tdxPolicy(t, ""), synthNow); !errors.Is(err, tdx.ErrCollateral) {
		t.Fatalf("without a Fetcher: %v, want ErrCollateral", err)
	}
}

// TestIssuerChainsStrict: text before a PEM block of the collateral's
// issuer chains (which encoding/pem would skip) is refused, for quotes of
// version 4 (verified by go-tdx-guest) and 5; and the replica id of both
// versions is their PCK certificate's.
func TestIssuerChainsStrict(t *testing.T) {
	pki, err := tdxtest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	pol := tdxPolicy(t, "min_tee_tcb_svn = \"03010200000000000000000000000000\"\n")
	for _, version := range []uint16{4, 5} {
		ev := build(t, pki, func(b *tdxtest.Builder) { b.Version = version })
		if _, err := verify(t, pki, ev, pol, synthNow); err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if der, err := tdx.PCKCertificateDER(ev.Raw); err != nil || len(der) == 0 {
			t.Fatalf("version %d: PCKCertificateDER: %v", version, err)
		}
		c, err := sgx.DecodeCollateral(ev.Collateral)
		if err != nil {
			t.Fatal(err)
		}
		for name, change := range map[string]func(){
			"TCB info issuer chain":    func() { c.TCBInfoIssuerChain = "not PEM\n" + c.TCBInfoIssuerChain },
			"QE identity issuer chain": func() { c.QEIdentityIssuerChain = "x" + c.QEIdentityIssuerChain },
		} {
			saved := *c
			change()
			enc, err := tdx.EncodeCollateral(c)
			if err != nil {
				t.Fatal(err)
			}
			*c = saved
			if _, err := verify(t, pki, &attest.Evidence{Type: attest.TypeTDX, Raw: ev.Raw, Collateral: enc}, pol, synthNow); err == nil {
				t.Errorf("version %d: text before the %s was accepted", version, name)
			}
		}
	}
}
