package snp_test

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
	"github.com/blindfold-ai/blindfold/policy"
)

var synthNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	pki *snptest.PKI
	crl []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pki, err := snptest.NewPKI(synthNow)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.CRL(synthNow.Add(-time.Hour), synthNow.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pki: pki, crl: crl}
}

func (f *fixture) evidence(t *testing.T, change func(*snptest.Report)) *attest.Evidence {
	t.Helper()
	r := snptest.DefaultReport()
	if change != nil {
		change(r)
	}
	raw, err := f.pki.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Evidence{Type: attest.TypeSNP, Raw: raw, Collateral: f.pki.CertTable()}
}

func (f *fixture) verify(t *testing.T, ev *attest.Evidence, pol snp.Policy, o snp.Options) error {
	t.Helper()
	if o.TestRoots == nil {
		o.TestRoots = f.pki.Roots()
	}
	if o.Now == nil {
		o.Now = func() time.Time { return synthNow }
	}
	if o.CRL == nil {
		o.CRL = f.crl
	}
	v, err := snp.NewVerifier(pol, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), ev)
	if err == nil && (!c.TestRoot || snp.ResultOf(c) == nil || !snp.ResultOf(c).CRLChecked) {
		t.Fatalf("claims %+v: want TestRoot and a result whose CRL was checked", c)
	}
	return err
}

func basePolicy(t *testing.T, extra string) *policy.SNP {
	t.Helper()
	m := snptest.Measurement()
	p, err := policy.Parse([]byte("[snp]\nmeasurement = [\"" + hex.EncodeToString(m[:]) + "\"]\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p.SNP
}

func TestSyntheticVerifies(t *testing.T) {
	f := newFixture(t)
	if err := f.verify(t, f.evidence(t, nil), basePolicy(t, "min_tcb_bootloader = 3\nmin_tcb_snp = 8\nmin_tcb_microcode = 115\nmin_firmware = \"1.55\"\nvmpl = 0\n"), snp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestSyntheticRefused: revoked ASK, CRL out of date or signed by another
// key, VCEK expired or not for this TCB or chip, another root.
func TestSyntheticRefused(t *testing.T) {
	f := newFixture(t)
	ev := f.evidence(t, nil)
	pol := basePolicy(t, "")
	revoked, _ := f.pki.CRL(synthNow.Add(-time.Hour), synthNow.Add(time.Hour), f.pki.ASK)
	expiredCRL, _ := f.pki.CRL(synthNow.Add(-48*time.Hour), synthNow.Add(-time.Hour))
	other := newFixture(t)
	for _, tc := range []struct {
		name  string
		ev    *attest.Evidence
		o     snp.Options
		want  error
		stale bool
	}{
		{"ASK revoked", ev, snp.Options{CRL: revoked}, snp.ErrCertificate, false},
		{"CRL expired", ev, snp.Options{CRL: expiredCRL}, attest.ErrStaleCollateral, true},
		{"CRL of another ARK", ev, snp.Options{CRL: other.crl}, snp.ErrCRL, false},
		{"another root", ev, snp.Options{TestRoots: other.pki.Roots()}, snp.ErrCertificate, false},
		{"VCEK expired", ev, snp.Options{Now: func() time.Time { return synthNow.Add(400 * 24 * time.Hour) }}, snp.ErrCertificate, false},
		{"report TCB not the VCEK's", f.evidence(t, func(r *snptest.Report) { r.TCB = &snp.TCB{Bootloader: 3, SNP: 9, Microcode: 115} }), snp.Options{}, snp.ErrCertificate, false},
		{"certificate table from another PKI", &attest.Evidence{Type: attest.TypeSNP, Raw: ev.Raw, Collateral: other.pki.CertTable()}, snp.Options{}, snp.ErrCertificate, false},
	} {
		err := f.verify(t, tc.ev, pol, tc.o)
		if !errors.Is(err, attest.ErrBadEvidence) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want ErrBadEvidence and %v", tc.name, err, tc.want)
		}
	}
	// A VCEK for another chip, in the certificate table.
	chip := f.pki.ChipID
	chip[0] ^= 1
	vcek, err := f.pki.NewVCEK(f.pki.TCB, chip, synthNow.Add(-time.Hour), synthNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f2 := *f.pki
	f2.VCEK = vcek
	if err := f.verify(t, &attest.Evidence{Type: attest.TypeSNP, Raw: ev.Raw, Collateral: f2.CertTable()}, pol, snp.Options{}); !errors.Is(err, snp.ErrCertificate) {
		t.Errorf("VCEK of another chip: %v, want ErrCertificate", err)
	}
}

// TestSyntheticPolicy: each [snp] key refuses a report that breaks it, and
// debug and migration agents are refused whatever the policy says.
func TestSyntheticPolicy(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		extra  string
		change func(*snptest.Report)
		key    policy.Key
	}{
		{"debug", "", func(r *snptest.Report) { r.Policy |= snp.PolicyDebug }, policy.KeySNPDebug},
		{"migration agent", "", func(r *snptest.Report) { r.Policy |= snp.PolicyMigrateMA }, policy.KeySNPMigrationMA},
		{"measurement", "", func(r *snptest.Report) { r.Measurement[0] ^= 1 }, policy.KeySNPMeasurement},
		{"min tcb", "min_tcb_snp = 9\n", nil, policy.KeySNPMinTCB},
		{"min firmware", "min_firmware = \"1.56\"\n", nil, policy.KeySNPMinFirmware},
		{"host data", "host_data = \"" + hex.EncodeToString(make([]byte, 31)) + "01\"\n", nil, policy.KeySNPHostData},
		{"family id", "family_id = \"" + hex.EncodeToString(make([]byte, 15)) + "01\"\n", nil, policy.KeySNPFamilyID},
		{"image id", "image_id = \"" + hex.EncodeToString(make([]byte, 15)) + "01\"\n", nil, policy.KeySNPImageID},
		{"vmpl", "vmpl = 0\n", func(r *snptest.Report) { r.VMPL = 2 }, policy.KeySNPVMPL},
	} {
		err := f.verify(t, f.evidence(t, tc.change), basePolicy(t, tc.extra), snp.Options{})
		var me *policy.MismatchError
		if !errors.Is(err, attest.ErrPolicyMismatch) || !errors.As(err, &me) || me.Field != tc.key {
			t.Errorf("%s: %v, want a policy mismatch on %s", tc.name, err, tc.key)
		}
	}
}

// kdsFake serves the VCEK and the ARK's CRL at AMD KDS URLs.
type kdsFake struct {
	byURL map[string][]byte
	asked []string
}

func (k *kdsFake) Get(_ context.Context, url string) ([]byte, error) {
	k.asked = append(k.asked, url)
	b, ok := k.byURL[url]
	if !ok {
		return nil, errors.New("404 " + url)
	}
	return b, nil
}

// TestSyntheticKDS: a report that comes without its certificate table is
// verified with the VCEK and CRL fetched from the KDS (through a Getter),
// at the URLs of the report's product line, chip and TCB.
func TestSyntheticKDS(t *testing.T) {
	f := newFixture(t)
	ev := f.evidence(t, func(r *snptest.Report) { r.Version = 3 })
	ev.Collateral = nil
	k := &kdsFake{byURL: map[string][]byte{}}
	v, err := snp.NewVerifier(basePolicy(t, ""), snp.Options{Now: func() time.Time { return synthNow }, TestRoots: f.pki.Roots(), Getter: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ev); !errors.Is(err, snp.ErrCertificate) {
		t.Fatalf("KDS without the VCEK: %v, want ErrCertificate", err)
	}
	if len(k.asked) != 1 || !strings.HasPrefix(k.asked[0], "https://kdsintf.amd.com/vcek/v1/Milan/") || !strings.Contains(k.asked[0], hex.EncodeToString(f.pki.ChipID[:])) {
		t.Fatalf("asked %v", k.asked)
	}
	k.byURL[k.asked[0]] = f.pki.VCEK.Raw
	if _, err := v.Verify(context.Background(), ev); !errors.Is(err, snp.ErrCRL) {
		t.Fatalf("KDS without the CRL: %v, want ErrCRL", err)
	}
	k.byURL[k.asked[len(k.asked)-1]] = f.crl
	if _, err := v.Verify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	// Version 2 reports do not name their product: the VCEK must come
	// with them.
	ev2 := f.evidence(t, nil)
	ev2.Collateral = nil
	if _, err := v.Verify(context.Background(), ev2); !errors.Is(err, snp.ErrCertificate) {
		t.Fatalf("version 2 without a VCEK: %v, want ErrCertificate", err)
	}
}
