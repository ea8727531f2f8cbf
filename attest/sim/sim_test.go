package sim_test

import (
	"context"
	"errors"
	"testing"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sim"
	"github.com/blindfold-ai/blindfold/identity"
)

func TestConsentRequired(t *testing.T) {
	if _, err := sim.NewVerifier(false); !errors.Is(err, sim.ErrNoConsent) {
		t.Fatalf("NewVerifier(false) = %v, want ErrNoConsent", err)
	}
}

func TestRoundTripThroughRegistry(t *testing.T) {
	ctx := context.Background()
	id, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("n0nce")
	ev, err := sim.Issuer{}.Evidence(ctx, attest.ReportData(id.DER, nonce))
	if err != nil {
		t.Fatal(err)
	}
	v, err := sim.NewVerifier(sim.IUnderstandThisProtectsNothing)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := attest.NewRegistry(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.Verify(ctx, ev, id.DER, attest.NonceEqual, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Claims.Simulation || got.SigningKey == nil {
		t.Fatalf("claims %+v: want Simulation and a signing key", got.Claims)
	}
	// Another nonce: the binding fails.
	if _, err := reg.Verify(ctx, ev, id.DER, attest.NonceEqual, []byte("other")); !errors.Is(err, attest.ErrBadEvidence) {
		t.Fatalf("wrong nonce: %v, want ErrBadEvidence", err)
	}
	// Every truncation or flipped banner byte is refused.
	for i := range len(sim.Banner) {
		bad := *ev
		bad.Raw = append([]byte(nil), ev.Raw...)
		bad.Raw[i] ^= 1
		if _, err := v.Verify(ctx, &bad); !errors.Is(err, attest.ErrBadEvidence) {
			t.Fatalf("byte %d flipped: %v, want ErrBadEvidence", i, err)
		}
	}
	bad := *ev
	bad.Raw = ev.Raw[:len(ev.Raw)-1]
	if _, err := v.Verify(ctx, &bad); !errors.Is(err, attest.ErrBadEvidence) {
		t.Fatalf("truncated: %v, want ErrBadEvidence", err)
	}
}

// TestNotAcceptedWithoutSimulation: a registry without the simulation
// verifier refuses simulation evidence as a platform the policy does not
// accept.
func TestNotAcceptedWithoutSimulation(t *testing.T) {
	ctx := context.Background()
	ev, _ := sim.Issuer{}.Evidence(ctx, [64]byte{})
	reg, err := attest.NewRegistry(fakeVerifier{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Verify(ctx, ev, []byte{1}, attest.NonceZero, nil)
	if !errors.Is(err, attest.ErrNotAccepted) || !errors.Is(err, attest.ErrPolicyMismatch) {
		t.Fatalf("got %v, want ErrNotAccepted and ErrPolicyMismatch", err)
	}
}

type fakeVerifier struct{}

func (fakeVerifier) Type() string { return "other" }
func (fakeVerifier) Verify(context.Context, *attest.Evidence) (*attest.Claims, error) {
	return nil, errors.New("not reached")
}
