package identity

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestNewAttested(t *testing.T) {
	a, err := NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(a.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname(ServerName); err != nil {
		t.Fatalf("certificate is not for %s: %v", ServerName, err)
	}
	// Self-signed, and usable as the sole root, as clients use it.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: ServerName}); err != nil {
		t.Fatalf("certificate does not verify as its own root: %v", err)
	}
	key, err := SigningKeyFromCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(a.SigningPublicKey()) {
		t.Fatal("the extension holds another key than the signing key")
	}
	msg := []byte("payload")
	if !ed25519.Verify(key, msg, a.Sign(msg)) {
		t.Fatal("a signature does not verify with the certificate's key")
	}
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSigningKey) && e.Critical {
			t.Fatal("the signing key extension is critical; clients that do not know it would refuse the certificate")
		}
	}
	if _, err := tls.X509KeyPair(pemCert(a.DER), nil); err == nil {
		t.Fatal("sanity: a key pair without a key parsed")
	}
	b, _ := NewAttested()
	if string(b.DER) == string(a.DER) || b.SigningPublicKey().Equal(a.SigningPublicKey()) {
		t.Fatal("two identities share a certificate or key")
	}
}

func TestSigningKeyFromCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	der, err := GenerateHostCertificate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if _, err := SigningKeyFromCertificate(cert); err == nil || !strings.Contains(err.Error(), "no signing key extension") {
		t.Fatalf("host certificate without the extension: %v", err)
	}
	a, _ := NewAttested()
	bad, _ := x509.ParseCertificate(a.DER)
	for i, e := range bad.Extensions {
		if e.Id.Equal(OIDSigningKey) {
			bad.Extensions[i].Value = e.Value[:31]
		}
	}
	if _, err := SigningKeyFromCertificate(bad); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Fatalf("short key: %v", err)
	}
}

func TestGenerateHostCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "sub", "host_server.pem"), filepath.Join(dir, "sub", "host_server.key")
	der, err := GenerateHostCertificate(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("written files are not a TLS key pair: %v", err)
	}
	if string(pair.Certificate[0]) != string(der) {
		t.Fatal("returned DER differs from the file")
	}
	c, err := LoadCertificatePEM(certPath)
	if err != nil || c.Subject.CommonName != ServerName || c.VerifyHostname(ServerName) != nil {
		t.Fatalf("certificate CN/SAN: %v %v", c.Subject.CommonName, err)
	}
	// Never overwrites.
	before, _ := os.ReadFile(keyPath)
	if _, err := GenerateHostCertificate(certPath, keyPath); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second generate: %v", err)
	}
	after, _ := os.ReadFile(keyPath)
	if string(before) != string(after) {
		t.Fatal("the existing key was changed")
	}
}

func TestFingerprint(t *testing.T) {
	f := Fingerprint([]byte("x"))
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(f) {
		t.Fatalf("fingerprint %q is not colon-separated upper-case SHA-256", f)
	}
	if f != "2D:71:16:42:B7:26:B0:44:01:62:7C:A9:FB:AC:32:F5:C8:53:0F:B1:90:3C:C4:DB:02:25:87:17:92:1A:48:81" {
		t.Fatalf("fingerprint of \"x\" = %s", f)
	}
}

func TestParseCertificatePEM(t *testing.T) {
	a, _ := NewAttested()
	data := append([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), pemCert(a.DER)...)
	c, err := ParseCertificatePEM(data)
	if err != nil || string(c.Raw) != string(a.DER) {
		t.Fatalf("certificate after another block: %v", err)
	}
	if _, err := ParseCertificatePEM([]byte("not pem")); err == nil {
		t.Fatal("garbage parsed")
	}
	if _, err := LoadCertificatePEM(filepath.Join(t.TempDir(), "absent.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
