package policy

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// e3Key makes an RSA-3072 key with public exponent 3, as SGX requires
// (crypto/rsa.GenerateKey always uses 65537).
func e3Key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		e := big.NewInt(3)
		one := big.NewInt(1)
		prime := func() *big.Int {
			for {
				p, err := rand.Prime(rand.Reader, 1536)
				if err != nil {
					panic(err)
				}
				if new(big.Int).Mod(new(big.Int).Sub(p, one), e).Sign() != 0 {
					return p
				}
			}
		}
		for {
			p, q := prime(), prime()
			n := new(big.Int).Mul(p, q)
			if p.Cmp(q) == 0 || n.BitLen() != 3072 {
				continue
			}
			phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
			k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: new(big.Int).ModInverse(e, phi), Primes: []*big.Int{p, q}}
			k.Precompute()
			if err := k.Validate(); err != nil {
				panic(err)
			}
			testKey = k
			return
		}
	})
	return testKey
}

func le(n *big.Int) []byte {
	b := n.FillBytes(make([]byte, 384))
	slices.Reverse(b)
	return b
}

type sigFields struct {
	misc, miscMask            uint32
	flags, xfrm, maskF, maskX uint64
	mrenclave                 [32]byte
	prodID, svn               uint16
}

// makeSigstruct builds and signs a SIGSTRUCT.
func makeSigstruct(t *testing.T, f sigFields) []byte {
	k := e3Key(t)
	b := make([]byte, SigstructSize)
	copy(b[0:], sigstructHeader)
	binary.LittleEndian.PutUint32(b[16:], 0)
	binary.LittleEndian.PutUint32(b[20:], 0x20260301)
	copy(b[24:], sigstructHeader2)
	copy(b[128:], le(k.N))
	binary.LittleEndian.PutUint32(b[512:], 3)
	binary.LittleEndian.PutUint32(b[900:], f.misc)
	binary.LittleEndian.PutUint32(b[904:], f.miscMask)
	binary.LittleEndian.PutUint64(b[928:], f.flags)
	binary.LittleEndian.PutUint64(b[936:], f.xfrm)
	binary.LittleEndian.PutUint64(b[944:], f.maskF)
	binary.LittleEndian.PutUint64(b[952:], f.maskX)
	copy(b[960:], f.mrenclave[:])
	binary.LittleEndian.PutUint16(b[1024:], f.prodID)
	binary.LittleEndian.PutUint16(b[1026:], f.svn)
	h := sha256.New()
	h.Write(b[0:128])
	h.Write(b[900:1028])
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := new(big.Int).SetBytes(sig)
	copy(b[516:], le(s))
	q1, q2 := sigstructQ(s, k.N)
	copy(b[1040:], le(q1))
	copy(b[1424:], le(q2))
	return b
}

func gramineLike() sigFields {
	f := sigFields{miscMask: 0xffffffff, flags: abi.AttributeMode64Bit, xfrm: 3, maskF: 0xfffffffffffffffd, maskX: 0xffffffffffffff1b, prodID: 4, svn: 2}
	for i := range f.mrenclave {
		f.mrenclave[i] = byte(0xa0 + i)
	}
	return f
}

func TestFromSigstruct(t *testing.T) {
	f := gramineLike()
	raw := makeSigstruct(t, f)
	s, err := ParseSigstruct(raw)
	if err != nil {
		t.Fatal(err)
	}
	mrsigner := sha256.Sum256(le(e3Key(t).N))
	if s.MRSIGNER() != mrsigner || s.EnclaveHash != f.mrenclave || s.ISVProdID != 4 || s.ISVSVN != 2 || s.Date != 0x20260301 {
		t.Fatalf("%+v", s)
	}
	p, err := FromSigstruct(raw)
	if err != nil {
		t.Fatal(err)
	}
	text := string(p.TOML())
	for _, want := range []string{
		`mr_enclave = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"`,
		`misc_select_hex = "0x0"`, `misc_mask_hex = "0xffffffff"`,
		`attributes_flags_hex = "0x4"`, `attributes_xfrm_hex = "0x3"`,
		`attributes_mask_flags_hex = "0xfffffffffffffffd"`, `attributes_mask_xfrm_hex = "0xffffffffffffff1b"`,
		`allow_debug = false`, `accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]`,
		`accepted_advisory_ids = ["INTEL-SA-00615"]`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("generated policy lacks %s:\n%s", want, text)
		}
	}
	q, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	// The enclave this SIGSTRUCT initialises passes its own policy: EINIT
	// sets INIT, and the XFRM may have bits outside the mask.
	r := &abi.ReportBody{MRENCLAVE: f.mrenclave, AttributesFlags: abi.AttributeInit | abi.AttributeMode64Bit, AttributesXFRM: 0x7}
	if err := q.CheckReport(r); err != nil {
		t.Fatal(err)
	}
	// It accepts exactly what the build mitigates: SWHardeningNeeded for
	// INTEL-SA-00615 alone, not with an advisory it does not mitigate.
	if q.BlindAI05 || !slices.Equal(q.AcceptedAdvisoryIDs, BuildMitigatedAdvisoryIDs) {
		t.Errorf("generated policy: BlindAI05 %t, advisories %v", q.BlindAI05, q.AcceptedAdvisoryIDs)
	}
	if err := q.CheckStatus(sgx.SWHardeningNeeded, []string{"INTEL-SA-00615"}); err != nil {
		t.Errorf("SWHardeningNeeded for INTEL-SA-00615: %v", err)
	}
	for _, adv := range [][]string{{"INTEL-SA-00615", "INTEL-SA-00334"}, {"INTEL-SA-00999"}} {
		if err := q.CheckStatus(sgx.SWHardeningNeeded, adv); err == nil {
			t.Errorf("SWHardeningNeeded for %v accepted", adv)
		}
	}
	if err := q.CheckStatus(sgx.ConfigurationAndSWHardeningNeeded, []string{"INTEL-SA-00615"}); err == nil {
		t.Error("ConfigurationAndSWHardeningNeeded accepted")
	}
	r.AttributesFlags |= abi.AttributeDebug
	if err := q.CheckReport(r); err == nil {
		t.Fatal("debug enclave accepted")
	}
}

// A SIGSTRUCT value with bits outside its mask is stored masked.
func TestFromSigstructMasksValues(t *testing.T) {
	f := gramineLike()
	f.flags |= abi.AttributeDebug // outside the mask 0x...fd
	f.misc, f.miscMask = 0x3, 0x1
	p, err := FromSigstruct(makeSigstruct(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if p.AttributesFlags != abi.AttributeMode64Bit || p.MiscSelect != 1 || p.AllowDebug {
		t.Fatalf("%+v", p)
	}
}

func TestParseSigstructErrors(t *testing.T) {
	good := makeSigstruct(t, gramineLike())
	mod := func(off int) []byte { b := slices.Clone(good); b[off] ^= 1; return b }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short", good[:1807], "1807 bytes"},
		{"long", append(slices.Clone(good), 0), "1809 bytes"},
		{"header", mod(0), "HEADER"},
		{"header2", mod(24), "HEADER2"},
		{"vendor", mod(17), "VENDOR"},
		{"exponent", mod(512), "EXPONENT"},
		{"signature", mod(600), "SIGNATURE does not verify"},
		{"signed header field (date)", mod(20), "SIGNATURE does not verify"},
		{"MRENCLAVE", mod(970), "SIGNATURE does not verify"},
		{"attributes", mod(928), "SIGNATURE does not verify"},
		{"ISVSVN", mod(1026), "SIGNATURE does not verify"},
		{"modulus", mod(200), "SIGNATURE does not verify"},
		{"Q1", mod(1100), "Q1"},
		{"Q2", mod(1500), "Q2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSigstruct(tc.in)
			if !errors.Is(err, ErrSigstruct) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// The reserved bytes at 1028..1040 lie outside both signed regions:
	// SGX ignores them too.
	if _, err := ParseSigstruct(mod(1030)); err != nil {
		t.Fatalf("reserved byte: %v", err)
	}
}
