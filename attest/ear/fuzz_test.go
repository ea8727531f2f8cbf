package ear

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// seedResult is a small valid claims set.
func seedResult(t testing.TB) *Result {
	t.Helper()
	r := Refused(errors.New("seed"), Options{Now: func() time.Time { return time.Unix(1700000000, 0) }, Nonce: []byte("0123456789")})
	if r == nil {
		t.Fatal("Refused returned nil")
	}
	return r
}

// FuzzParse: Parse (which runs Validate first) never panics on hostile
// JSON, and what it accepts encodes and parses again.
func FuzzParse(f *testing.F) {
	b, err := json.Marshal(seedResult(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"eat_profile":"tag:github.com,2023:veraison/ear","submods":{"a":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("an accepted claims set does not encode: %v", err)
		}
		if _, err := Parse(again); err != nil {
			t.Fatalf("an accepted claims set, encoded again, is refused: %v", err)
		}
	})
}

// FuzzVerifyJWT: VerifyJWT never panics on a hostile token, and accepts
// nothing that the key did not sign.
func FuzzVerifyJWT(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tok, err := Sign(seedResult(f), key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := VerifyJWT(token, &key.PublicKey); err == nil && token != tok {
			t.Fatalf("a token the key did not sign verifies: %q", token)
		}
	})
}
