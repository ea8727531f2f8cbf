package ear

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// jwtHeader is the protected header of every EAR JWT this package writes.
const jwtHeader = `{"alg":"ES256","typ":"JWT"}`

// ErrBadJWT means an EAR JWT is malformed, not ES256, or its signature
// does not verify.
var ErrBadJWT = errors.New("ear: the EAR JWT does not verify")

// ParseSigningKey reads an ECDSA P-256 private key from PEM: "EC PRIVATE
// KEY" (SEC 1) or "PRIVATE KEY" (PKCS #8).
func ParseSigningKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("ear: signing key: no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("ear: signing key: PEM block %q, want EC PRIVATE KEY or PRIVATE KEY", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("ear: signing key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("ear: signing key: not an ECDSA P-256 key (ES256 needs one)")
	}
	return ek, nil
}

// Sign returns r as a JWT (JWS compact serialization) signed with key
// (ECDSA P-256, ES256), whose claims set is r's JSON.
func Sign(r *Result, key *ecdsa.PrivateKey) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errors.New("ear: ES256 needs an ECDSA P-256 key")
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(jwtHeader)) + "." + enc.EncodeToString(payload)
	sig, err := jwt.SigningMethodES256.Sign(signing, key)
	if err != nil {
		return "", fmt.Errorf("ear: signing: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// VerifyJWT checks an EAR JWT signed with ES256 by the key pub and returns
// its claims set, which must pass Validate. The header must name ES256
// and no critical extension; any other algorithm is refused.
func VerifyJWT(token string, pub *ecdsa.PublicKey) (*Result, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("ear: ES256 needs an ECDSA P-256 public key")
	}
	if len(token) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadJWT, len(token), MaxSize)
	}
	parts := strings.SplitN(token, ".", 4)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d parts, want 3 (header.payload.signature)", ErrBadJWT, len(parts))
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadJWT, err)
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadJWT, err)
	}
	if h["alg"] != "ES256" {
		return nil, fmt.Errorf("%w: alg is %v, want ES256", ErrBadJWT, h["alg"])
	}
	if _, ok := h["crit"]; ok {
		return nil, fmt.Errorf("%w: the header has critical extensions", ErrBadJWT)
	}
	if t, ok := h["typ"]; ok && t != "JWT" {
		return nil, fmt.Errorf("%w: typ is %v, want JWT", ErrBadJWT, t)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadJWT, err)
	}
	if err := jwt.SigningMethodES256.Verify(parts[0]+"."+parts[1], sig, pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJWT, err)
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadJWT, err)
	}
	return Parse(payload)
}
