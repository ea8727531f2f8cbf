package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
)

var sgxNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// signerPolicy pins the signer only, so that it accepts enclaves with
// other measurements: the cluster must still refuse them.
func signerPolicy(signer [32]byte) string {
	return fmt.Sprintf(`mr_signer = %q
isv_prod_id = 7
min_isv_svn = 0
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`, hex.EncodeToString(signer[:]))
}

func TestSGXAttestorJoinRules(t *testing.T) {
	pki, err := sgxtest.NewPKI(sgxNow)
	if err != nil {
		t.Fatal(err)
	}
	signer := sgxtest.NewBuilder(pki, sgxNow).ReportBody.MRSIGNER
	pol := []byte(signerPolicy(signer))
	mk := func(t *testing.T, policyText []byte, mrenclave *[32]byte, root bool) (*SGX, error) {
		a := attesttest.NewAttester(pki, sgxNow)
		if mrenclave != nil {
			mr := *mrenclave
			a.Configure = func(b *sgxtest.Builder) { b.ReportBody.MRENCLAVE = mr }
		}
		o := SGXOptions{Attester: a, PolicyFile: policyText, Now: func() time.Time { return sgxNow }}
		if root {
			o.TestRoot = pki.Root
		}
		return NewSGX(context.Background(), o)
	}
	must := func(s *SGX, err error) *SGX {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	peerAtt := must(mk(t, pol, nil, true))
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, peerAtt)

	got, err := JoinAddr(context.Background(), addr, must(mk(t, pol, nil, true)))
	if err != nil {
		t.Fatalf("a replica with the same measurement and policy: %v", err)
	}
	if string(got.Attested.DER) != string(id.Attested.DER) {
		t.Fatal("joined with another certificate")
	}

	other := attesttest.MREnclave()
	other[3] ^= 0x55
	for _, tc := range []struct {
		name string
		att  *SGX
		want string
	}{
		{"another MRENCLAVE that the policy accepts", must(mk(t, pol, &other, true)), "MRENCLAVE"},
		{"another policy file", must(mk(t, append([]byte("# looser\n"), pol...), nil, true)), "another policy file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JoinAddr(context.Background(), addr, tc.att)
			if !errors.Is(err, ErrRefused) || got != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("join: %v, %v; want a refusal naming %q", got, err, tc.want)
			}
		})
	}
	if _, err := mk(t, pol, nil, false); err == nil {
		t.Fatal("evidence of a test PKI satisfied the policy against Intel's root")
	}
	if _, err := mk(t, []byte(attesttest.PolicyTOML(other)), nil, true); err == nil {
		t.Fatal("a replica whose own evidence does not satisfy its cluster policy started")
	}
	// A simulation proof never passes an SGX check, nor the reverse.
	simA := sim(t, "0123456789abcdef-secret")
	p, _ := simA.Prove(context.Background(), [64]byte{})
	if err := peerAtt.Check(context.Background(), p, [64]byte{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a simulation proof against SGX: %v", err)
	}
	sp, err := peerAtt.Prove(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if err := simA.Check(context.Background(), sp, [64]byte{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("an SGX proof against simulation: %v", err)
	}
	// Evidence made for another connection does not pass.
	var rd [64]byte
	rd[0] = 1
	if err := peerAtt.Check(context.Background(), sp, rd); !errors.Is(err, ErrRefused) {
		t.Fatalf("evidence over other report data: %v", err)
	}
}

// TestSGXClusterPolicyWithoutMeasurement: a cluster policy that names no
// measurement (as the SGX image's measured cluster-policy.toml) pins the
// replica's own MRENCLAVE: replicas with it join, one with another
// MRENCLAVE is refused, and the rest of the policy (debug refused) holds.
func TestSGXClusterPolicyWithoutMeasurement(t *testing.T) {
	pki, err := sgxtest.NewPKI(sgxNow)
	if err != nil {
		t.Fatal(err)
	}
	// The SGX image's own measured cluster policy.
	pol, err := os.ReadFile("../deploy/gramine/cluster-policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(change func(*sgxtest.Builder)) (*SGX, error) {
		a := attesttest.NewAttester(pki, sgxNow)
		a.Configure = change
		return NewSGX(context.Background(), SGXOptions{Attester: a, PolicyFile: pol, TestRoot: pki.Root, Now: func() time.Time { return sgxNow }})
	}
	peer, err := mk(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	addr := startPeer(t, id, peer)
	same, err := mk(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinAddr(context.Background(), addr, same); err != nil {
		t.Fatalf("a replica with the same MRENCLAVE: %v", err)
	}
	// Another MRENCLAVE satisfies its own copy of the policy (which pins
	// its own measurement) but not the peer's.
	other, err := mk(func(b *sgxtest.Builder) { b.ReportBody.MRENCLAVE[5] ^= 0xff })
	if err != nil {
		t.Fatalf("another MRENCLAVE against its own copy of the policy: %v", err)
	}
	if _, err := JoinAddr(context.Background(), addr, other); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "mr_enclave") {
		t.Fatalf("a replica with another MRENCLAVE: %v, want a refusal naming mr_enclave", err)
	}
	// A debug enclave does not even satisfy its own copy.
	if _, err := mk(func(b *sgxtest.Builder) { b.ReportBody.AttributesFlags |= 2 }); err == nil {
		t.Fatal("a debug enclave satisfied the cluster policy")
	}
}
