package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func tokenKeygenCommand() *command {
	return &command{
		name:     "keygen",
		synopsis: "blindfold token keygen [--alg ES256|EdDSA] [--key issuer.key] [--pub issuer.pub]",
		summary:  "make a key pair for signing bearer tokens",
		help: `Makes a token-signing key pair: the private key (PEM, mode 0600) stays
with whoever issues tokens; the public key (PEM) goes into the server's
auth_keys. Existing files are never overwritten.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			alg := fs.String("alg", "ES256", "signature algorithm: ES256 (ECDSA P-256) or EdDSA (Ed25519)")
			keyPath := fs.String("key", "issuer.key", "private key output `FILE`")
			pubPath := fs.String("pub", "issuer.pub", "public key output `FILE`")
			return func(e *env, _ []string) error {
				var priv crypto.Signer
				var err error
				switch *alg {
				case "ES256":
					priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				case "EdDSA":
					_, priv, err = ed25519.GenerateKey(rand.Reader)
				default:
					return usageErrorf("--alg %q: use ES256 or EdDSA", *alg)
				}
				if err != nil {
					return withCode(exitIO, err)
				}
				privDER, err := x509.MarshalPKCS8PrivateKey(priv)
				if err != nil {
					return withCode(exitIO, err)
				}
				pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
				if err != nil {
					return withCode(exitIO, err)
				}
				if err := writeExclusive(*keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
					return err
				}
				if err := writeExclusive(*pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
					os.Remove(*keyPath)
					return err
				}
				fmt.Fprintf(e.stdout, "private key: %s (keep it secret)\npublic key:  %s (add it to the server's auth_keys)\n", *keyPath, *pubPath)
				return nil
			}
		},
	}
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return withCode(exitIO, fmt.Errorf("%s already exists; not overwriting it", path))
		}
		return withCode(exitIO, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return withCode(exitIO, err)
	}
	return withCode(exitIO, f.Close())
}

func tokenIssueCommand() *command {
	return &command{
		name:     "issue",
		synopsis: "blindfold token issue --key issuer.key --sub SUBJECT [--ttl 1h] [--iss ISSUER] [--aud AUDIENCE]",
		summary:  "sign a bearer token for a subject",
		help: `Signs a JWT (ES256 or EdDSA, by the key's type) with claims sub, iat, exp
and optionally iss and aud, and prints it on stdout. Pass it to other
commands with BLINDFOLD_TOKEN (or --token).`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			keyPath := fs.String("key", "issuer.key", "private key `FILE` made by token keygen")
			sub := fs.String("sub", "", "the token's subject (who will own uploaded models)")
			ttl := fs.Duration("ttl", time.Hour, "validity from now (e.g. 15m, 24h)")
			iss := fs.String("iss", "", "issuer claim (if the server checks auth_issuer)")
			aud := fs.String("aud", "", "audience claim (if the server checks auth_audience)")
			return func(e *env, _ []string) error {
				if *sub == "" {
					return usageErrorf("--sub is required")
				}
				if *ttl <= 0 {
					return usageErrorf("--ttl must be positive, got %s", *ttl)
				}
				data, err := os.ReadFile(*keyPath)
				if err != nil {
					return withCode(exitIO, err)
				}
				b, _ := pem.Decode(data)
				if b == nil || b.Type != "PRIVATE KEY" {
					return withCode(exitIO, fmt.Errorf("%s: no PEM \"PRIVATE KEY\" block", *keyPath))
				}
				key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
				if err != nil {
					return withCode(exitIO, fmt.Errorf("%s: %w", *keyPath, err))
				}
				var method jwt.SigningMethod
				switch k := key.(type) {
				case *ecdsa.PrivateKey:
					if k.Curve != elliptic.P256() {
						return withCode(exitIO, fmt.Errorf("%s: ECDSA keys must be P-256", *keyPath))
					}
					method = jwt.SigningMethodES256
				case ed25519.PrivateKey:
					method = jwt.SigningMethodEdDSA
				default:
					return withCode(exitIO, fmt.Errorf("%s: %T keys are not supported; use ES256 or EdDSA", *keyPath, key))
				}
				now := time.Now()
				claims := jwt.RegisteredClaims{Subject: *sub, Issuer: *iss, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(*ttl))}
				if *aud != "" {
					claims.Audience = jwt.ClaimStrings{*aud}
				}
				tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
				if err != nil {
					return withCode(exitIO, err)
				}
				fmt.Fprintln(e.stdout, tok)
				return nil
			}
		},
	}
}
