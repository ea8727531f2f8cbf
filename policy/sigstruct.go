package policy

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// SigstructSize is the size of an SGX SIGSTRUCT.
const SigstructSize = 1808

// Offsets of the SIGSTRUCT fields.
const (
	sigHeader       = 0
	sigVendor       = 16
	sigDate         = 20
	sigHeader2      = 24
	sigSWDefined    = 40
	sigModulus      = 128
	sigExponent     = 512
	sigSignature    = 516
	sigMiscSelect   = 900
	sigMiscMask     = 904
	sigISVFamilyID  = 912
	sigAttributes   = 928
	sigAttrMask     = 944
	sigEnclaveHash  = 960
	sigISVExtProdID = 1008
	sigISVProdID    = 1024
	sigISVSVN       = 1026
	sigQ1           = 1040
	sigQ2           = 1424
	rsaSize         = 384
)

var (
	sigstructHeader  = []byte{0x06, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0}
	sigstructHeader2 = []byte{0x01, 0x01, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 0x01, 0, 0, 0}
)

// ErrSigstruct is wrapped by every error of ParseSigstruct.
var ErrSigstruct = errors.New("invalid SIGSTRUCT")

// Sigstruct is a parsed and verified SGX enclave signature structure.
type Sigstruct struct {
	// Vendor is 0 or 0x8086 (Intel).
	Vendor uint32
	// Date is the signing date, BCD yyyymmdd.
	Date uint32
	// SWDefined is the software-defined field.
	SWDefined uint32
	// Modulus is the RSA-3072 modulus, little-endian as stored.
	Modulus []byte
	// MiscSelect and MiscMask are the MISCSELECT value and mask.
	MiscSelect, MiscMask uint32
	// ISVFamilyID is the ISV family ID.
	ISVFamilyID [16]byte
	// AttributesFlags and AttributesXFRM are the enclave attributes.
	AttributesFlags, AttributesXFRM uint64
	// AttributesMaskFlags and AttributesMaskXFRM are the attribute masks.
	AttributesMaskFlags, AttributesMaskXFRM uint64
	// EnclaveHash is the MRENCLAVE of the enclave.
	EnclaveHash [32]byte
	// ISVExtProdID is the extended product ID.
	ISVExtProdID [16]byte
	// ISVProdID is the product ID.
	ISVProdID uint16
	// ISVSVN is the security version.
	ISVSVN uint16
}

// MRSIGNER returns SHA-256 of the modulus (little-endian, as stored): the
// MRSIGNER of every enclave signed with this key.
func (s *Sigstruct) MRSIGNER() [32]byte { return sha256.Sum256(s.Modulus) }

func sigErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSigstruct, fmt.Sprintf(format, args...))
}

func leInt(b []byte) *big.Int {
	r := slices.Clone(b)
	slices.Reverse(r)
	return new(big.Int).SetBytes(r)
}

// ParseSigstruct parses a SIGSTRUCT, checks its header constants, and
// verifies its RSA-3072 signature (public exponent 3, PKCS#1 v1.5 with
// SHA-256 over the 128 bytes at offset 0 followed by the 128 bytes at
// offset 900) and its Q1 and Q2 values.
func ParseSigstruct(b []byte) (*Sigstruct, error) {
	if len(b) != SigstructSize {
		return nil, sigErr("%d bytes, want %d", len(b), SigstructSize)
	}
	if !bytes.Equal(b[sigHeader:sigHeader+16], sigstructHeader) {
		return nil, sigErr("HEADER %x, want %x", b[sigHeader:sigHeader+16], sigstructHeader)
	}
	if !bytes.Equal(b[sigHeader2:sigHeader2+16], sigstructHeader2) {
		return nil, sigErr("HEADER2 %x, want %x", b[sigHeader2:sigHeader2+16], sigstructHeader2)
	}
	le := binary.LittleEndian
	s := &Sigstruct{
		Vendor:              le.Uint32(b[sigVendor:]),
		Date:                le.Uint32(b[sigDate:]),
		SWDefined:           le.Uint32(b[sigSWDefined:]),
		Modulus:             slices.Clone(b[sigModulus : sigModulus+rsaSize]),
		MiscSelect:          le.Uint32(b[sigMiscSelect:]),
		MiscMask:            le.Uint32(b[sigMiscMask:]),
		AttributesFlags:     le.Uint64(b[sigAttributes:]),
		AttributesXFRM:      le.Uint64(b[sigAttributes+8:]),
		AttributesMaskFlags: le.Uint64(b[sigAttrMask:]),
		AttributesMaskXFRM:  le.Uint64(b[sigAttrMask+8:]),
		ISVProdID:           le.Uint16(b[sigISVProdID:]),
		ISVSVN:              le.Uint16(b[sigISVSVN:]),
	}
	copy(s.ISVFamilyID[:], b[sigISVFamilyID:])
	copy(s.EnclaveHash[:], b[sigEnclaveHash:])
	copy(s.ISVExtProdID[:], b[sigISVExtProdID:])
	if s.Vendor != 0 && s.Vendor != 0x8086 {
		return nil, sigErr("VENDOR %#x, want 0 or 0x8086", s.Vendor)
	}
	if e := le.Uint32(b[sigExponent:]); e != 3 {
		return nil, sigErr("EXPONENT %d, want 3", e)
	}
	n := leInt(s.Modulus)
	if n.BitLen() != 3072 {
		return nil, sigErr("modulus is %d bits, want 3072", n.BitLen())
	}
	sig := leInt(b[sigSignature : sigSignature+rsaSize])
	if sig.Cmp(n) >= 0 {
		return nil, sigErr("SIGNATURE is not below the modulus")
	}
	h := sha256.New()
	h.Write(b[0:128])
	h.Write(b[900:1028])
	if err := rsa.VerifyPKCS1v15(&rsa.PublicKey{N: n, E: 3}, crypto.SHA256, h.Sum(nil), sig.FillBytes(make([]byte, rsaSize))); err != nil {
		return nil, sigErr("SIGNATURE does not verify with the MODULUS: %v", err)
	}
	q1, q2 := sigstructQ(sig, n)
	if leInt(b[sigQ1:sigQ1+rsaSize]).Cmp(q1) != 0 {
		return nil, sigErr("Q1 is not floor(SIGNATURE^2 / MODULUS)")
	}
	if leInt(b[sigQ2:sigQ2+rsaSize]).Cmp(q2) != 0 {
		return nil, sigErr("Q2 is not floor((SIGNATURE^3 - Q1*SIGNATURE*MODULUS) / MODULUS)")
	}
	return s, nil
}

// sigstructQ computes the Q1 and Q2 helper values of a SIGSTRUCT.
func sigstructQ(sig, n *big.Int) (q1, q2 *big.Int) {
	s2 := new(big.Int).Mul(sig, sig)
	q1 = new(big.Int).Quo(s2, n)
	s3 := new(big.Int).Mul(s2, sig)
	t := new(big.Int).Mul(q1, sig)
	t.Mul(t, n)
	q2 = new(big.Int).Quo(s3.Sub(s3, t), n)
	return q1, q2
}

// BuildMitigatedAdvisoryIDs are the Intel security advisories whose
// software hardening the Blindfold enclave build (Gramine, the Go server,
// ONNX Runtime, as deploy/gramine builds them) carries, so that a platform
// whose only open advisories are these is, for this enclave, as safe as an
// UpToDate one. FromSigstruct accepts SWHardeningNeeded with exactly these.
// docs/sgx.md gives the reasoning; each entry:
//
//   - INTEL-SA-00615 (MMIO stale data, CVE-2022-21123, -21125, -21166): the
//     SGX hardening is that enclave code write untrusted memory only in ways
//     that do not leave enclave data in the affected fill buffers. In a
//     Gramine enclave the application never writes untrusted memory itself:
//     every exchange with the host goes through Gramine's untrusted-memory
//     copy routines, which Gramine hardened for this advisory after its
//     publication in 2022 (deploy/Dockerfile.sgx builds on
//     gramineproject/gramine:stable, a later release).
//
// Not listed, so refused: INTEL-SA-00334 (LVI), whose hardening is a
// compiler-level load fence in every enclave instruction stream, which
// neither the Go toolchain, nor ONNX Runtime's build, nor Gramine's default
// build applies; and every advisory whose fix is microcode or BIOS
// configuration (ConfigurationNeeded, OutOfDate), which no enclave build
// can mitigate.
var BuildMitigatedAdvisoryIDs = []string{"INTEL-SA-00615"}

// FromSigstruct verifies a SIGSTRUCT (see ParseSigstruct) and returns the
// policy that pins its enclave: MRENCLAVE, and MISCSELECT and ATTRIBUTES
// under the SIGSTRUCT's masks (the values are stored already masked, as
// EINIT compares them), with debug refused, and UpToDate and
// SWHardeningNeeded accepted with exactly the advisories the enclave build
// mitigates (BuildMitigatedAdvisoryIDs).
func FromSigstruct(sigstruct []byte) (*Policy, error) {
	s, err := ParseSigstruct(sigstruct)
	if err != nil {
		return nil, err
	}
	mr := s.EnclaveHash
	return &Policy{
		MREnclave:           &mr,
		MiscSelect:          s.MiscSelect & s.MiscMask,
		MiscMask:            s.MiscMask,
		AttributesFlags:     s.AttributesFlags & s.AttributesMaskFlags,
		AttributesXFRM:      s.AttributesXFRM & s.AttributesMaskXFRM,
		AttributesMaskFlags: s.AttributesMaskFlags,
		AttributesMaskXFRM:  s.AttributesMaskXFRM,
		AllowDebug:          false,
		AcceptedTCBStatuses: []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded},
		AcceptedAdvisoryIDs: slices.Clone(BuildMitigatedAdvisoryIDs),
	}, nil
}
