package snp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustGUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	g, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testPKI is an ARK and ASK that are not AMD's.
type testPKI struct {
	roots  *Roots
	arkKey *rsa.PrivateKey
	askKey *rsa.PrivateKey
}

func newPKI(t *testing.T, now time.Time) *testPKI {
	t.Helper()
	arkKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	askKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(serial int64, cn string, pub any, parent *x509.Certificate, key *rsa.PrivateKey) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ark := mk(1, "ARK-Milan", &arkKey.PublicKey, nil, arkKey)
	ask := mk(2, "SEV-Milan", &askKey.PublicKey, ark, arkKey)
	return &testPKI{roots: &Roots{Product: "Milan", ARK: ark, ASK: ask}, arkKey: arkKey, askKey: askKey}
}
