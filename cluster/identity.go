// Package cluster makes a set of Blindfold replicas one attested service:
// they share one identity (the attested TLS key and certificate, the
// reply-signing key and the model-sealing key), made by the replica that
// bootstraps the cluster and handed over, inside a TLS connection and
// encrypted to a key made for that connection, only to a replica whose
// evidence, bound to that connection, satisfies the cluster's policy. The
// joiner holds the peer to the same rule before it takes any key. See
// docs/cluster.md.
package cluster

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/blindfold-ai/blindfold/identity"
)

// SealingKeySize is the size of the cluster's model-sealing key.
const SealingKeySize = 32

// Identity is what every replica of a cluster shares: the attested port's
// identity and the key that seals models in the shared store. It lives in
// TEE memory only.
type Identity struct {
	// Attested is the attested port's TLS key, certificate and
	// reply-signing key.
	Attested *identity.Attested
	// SealingKey seals the models of the shared store.
	SealingKey []byte
}

// NewIdentity makes a fresh cluster identity (the bootstrap of a new
// cluster).
func NewIdentity() (*Identity, error) {
	a, err := identity.NewAttested()
	if err != nil {
		return nil, err
	}
	key := make([]byte, SealingKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("cluster: sealing key: %w", err)
	}
	return &Identity{Attested: a, SealingKey: key}, nil
}

// Zero overwrites the key bytes this identity holds that Go lets it
// reach: the sealing key and the signing key. (The ECDSA TLS key's scalar
// is held by crypto/ecdsa, which offers no way to wipe it.)
func (id *Identity) Zero() {
	if id == nil {
		return
	}
	clear(id.SealingKey)
	if id.Attested != nil {
		clear(id.Attested.SigningKey)
	}
}

const bundleVersion = 1

// marshal encodes the identity for the join reply: a version, then the
// certificate's DER, the TLS key (PKCS #8), the signing key's seed and the
// sealing key, each with a 4-byte length. The caller zeroes the result.
func (id *Identity) marshal() ([]byte, error) {
	tlsKey, ok := id.Attested.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("cluster: the attested TLS key is not ECDSA")
	}
	pk, err := x509.MarshalPKCS8PrivateKey(tlsKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: encoding the TLS key: %w", err)
	}
	defer clear(pk)
	seed := id.Attested.SigningKey.Seed()
	defer clear(seed)
	out := []byte{bundleVersion}
	for _, f := range [][]byte{id.Attested.DER, pk, seed, id.SealingKey} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out, nil
}

// unmarshalIdentity decodes what marshal made and checks that its parts
// belong together.
func unmarshalIdentity(b []byte) (*Identity, error) {
	if len(b) < 1 || b[0] != bundleVersion {
		return nil, errors.New("cluster: identity bundle of an unknown version")
	}
	b = b[1:]
	var f [4][]byte
	for i := range f {
		if len(b) < 4 {
			return nil, errors.New("cluster: truncated identity bundle")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, errors.New("cluster: truncated identity bundle")
		}
		f[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return nil, errors.New("cluster: trailing bytes after the identity bundle")
	}
	certDER, pk, seed, sealKey := f[0], f[1], f[2], f[3]
	if len(seed) != ed25519.SeedSize || len(sealKey) != SealingKeySize {
		return nil, errors.New("cluster: identity bundle holds keys of the wrong size")
	}
	key, err := x509.ParsePKCS8PrivateKey(pk)
	if err != nil {
		return nil, fmt.Errorf("cluster: TLS key: %w", err)
	}
	tlsKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("cluster: the TLS key is not ECDSA")
	}
	a, err := identity.AttestedFromKeys(certDER, tlsKey, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return &Identity{Attested: a, SealingKey: append([]byte(nil), sealKey...)}, nil
}
