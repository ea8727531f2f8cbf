// Package identity makes and reads the TLS and signing identities of a
// Blindfold server: the attested port's key and certificate, made in memory
// at every start, with the Ed25519 response-signing key bound into the
// certificate, and the operator's certificate for the untrusted port.
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServerName is the TLS server name of both ports, fixed by the protocol:
// clients always override the name they check to this value.
const ServerName = "blindai-srv"

// OIDSigningKey is the certificate extension that holds the raw 32-byte
// Ed25519 public key with which the server signs replies.
var OIDSigningKey = asn1.ObjectIdentifier{1, 3, 6, 1, 3, 2}

// certValidity is how long generated certificates are valid. The attested
// certificate is re-made at every start; its dates are informative only.
const certValidity = 10 * 365 * 24 * time.Hour

// Attested is the identity of the attested port: a TLS key and certificate
// and the Ed25519 key that signs replies. None of it is ever written to disk.
type Attested struct {
	// Certificate is the TLS certificate to serve (leaf only, self-signed).
	Certificate tls.Certificate
	// DER is the certificate's DER encoding (what GetCertificate returns and
	// what the evidence binds).
	DER []byte
	// SigningKey signs reply payloads.
	SigningKey ed25519.PrivateKey
}

// NewAttested makes a fresh P-256 TLS key, a fresh Ed25519 signing key and a
// self-signed certificate for ServerName carrying the signing public key in
// extension OIDSigningKey.
func NewAttested() (*Attested, error) {
	signPub, signKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generating signing key: %w", err)
	}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generating TLS key: %w", err)
	}
	ext := pkix.Extension{Id: OIDSigningKey, Critical: false, Value: []byte(signPub)}
	der, err := selfSigned(tlsKey, ext)
	if err != nil {
		return nil, err
	}
	return &Attested{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey},
		DER:         der,
		SigningKey:  signKey,
	}, nil
}

// Sign signs msg with the reply-signing key.
func (a *Attested) Sign(msg []byte) []byte { return ed25519.Sign(a.SigningKey, msg) }

// SigningPublicKey returns the public half of the reply-signing key.
func (a *Attested) SigningPublicKey() ed25519.PublicKey {
	return a.SigningKey.Public().(ed25519.PublicKey)
}

func selfSigned(key crypto.Signer, extra ...pkix.Extension) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("identity: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ServerName},
		DNSNames:              []string{ServerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		ExtraExtensions:       extra,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("identity: creating certificate: %w", err)
	}
	return der, nil
}

// SigningKeyFromCertificate reads the Ed25519 reply-signing public key from
// the OIDSigningKey extension of cert.
func SigningKeyFromCertificate(cert *x509.Certificate) (ed25519.PublicKey, error) {
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSigningKey) {
			if len(e.Value) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("identity: signing key extension %s holds %d bytes, want %d", OIDSigningKey, len(e.Value), ed25519.PublicKeySize)
			}
			return ed25519.PublicKey(append([]byte(nil), e.Value...)), nil
		}
	}
	return nil, fmt.Errorf("identity: certificate has no signing key extension %s", OIDSigningKey)
}

// Fingerprint returns the SHA-256 of a certificate's DER as colon-separated
// upper-case hex, the form `openssl x509 -fingerprint -sha256` prints.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// GenerateHostCertificate makes a P-256 key and a self-signed certificate
// (CN and SAN ServerName) for the untrusted port and writes them as PEM to
// certPath and keyPath. The key file is created with mode 0600; existing
// files are never overwritten.
func GenerateHostCertificate(certPath, keyPath string) (der []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generating key: %w", err)
	}
	der, err = selfSigned(key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: encoding key: %w", err)
	}
	for _, p := range []string{certPath, keyPath} {
		if dir := filepath.Dir(p); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("identity: %w", err)
			}
		}
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return nil, err
	}
	return der, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("identity: %s already exists; not overwriting it", path)
		}
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	return f.Close()
}

// LoadCertificatePEM reads the first certificate of a PEM file.
func LoadCertificatePEM(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return ParseCertificatePEM(data)
}

// ParseCertificatePEM parses the first CERTIFICATE block of PEM data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("identity: no PEM CERTIFICATE block found")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("identity: parsing certificate: %w", err)
			}
			return c, nil
		}
	}
}

// AttestedFromKeys rebuilds an attested identity from its parts (as handed
// from one replica of a cluster to another): the certificate's DER, its TLS
// key and the reply-signing key. It checks that the certificate's public
// key is the TLS key's and that its signing key extension holds the
// signing key's public half.
func AttestedFromKeys(certDER []byte, tlsKey crypto.Signer, signingKey ed25519.PrivateKey) (*Attested, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("identity: parsing certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(tlsKey.Public()) {
		return nil, errors.New("identity: the certificate's public key is not the TLS key's")
	}
	if len(signingKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("identity: signing key holds %d bytes, want %d", len(signingKey), ed25519.PrivateKeySize)
	}
	signPub, err := SigningKeyFromCertificate(cert)
	if err != nil {
		return nil, err
	}
	if !signPub.Equal(signingKey.Public()) {
		return nil, errors.New("identity: the certificate's signing key extension does not hold the signing key's public half")
	}
	der := append([]byte(nil), certDER...)
	return &Attested{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey},
		DER:         der,
		SigningKey:  signingKey,
	}, nil
}
