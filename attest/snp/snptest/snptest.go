// Package snptest builds synthetic SEV-SNP evidence for tests: an ARK, an
// ASK and a VCEK of its own (a test PKI standing in for AMD's), a CRL, and
// attestation reports signed by the VCEK. Evidence made here verifies only
// with snp.Options.TestRoots = PKI.Roots() and proves nothing.
package snptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/uuid"

	"github.com/blindfold-ai/blindfold/attest/snp"
)

// PKI is a test ARK and ASK, and a VCEK for one chip at one TCB.
type PKI struct {
	// ARK, ASK and VCEK are the certificates.
	ARK, ASK, VCEK *x509.Certificate
	// ARKKey, ASKKey and VCEKKey are their keys.
	ARKKey, ASKKey *rsa.PrivateKey
	VCEKKey        *ecdsa.PrivateKey
	// ChipID is the VCEK's chip.
	ChipID [64]byte
	// TCB is the VCEK's TCB (Milan layout).
	TCB snp.TCB
	now time.Time
}

// TCBVersion returns the TCB version of t in Milan's layout.
func TCBVersion(t snp.TCB) uint64 {
	return uint64(t.Bootloader) | uint64(t.TEE)<<8 | uint64(t.SNP)<<48 | uint64(t.Microcode)<<56
}

func u8(v int) []byte {
	b, _ := asn1.Marshal(v)
	return b
}

// NewPKI makes a PKI valid from an hour before now for a year, with a VCEK
// for a chip at TCB {bootloader 3, TEE 0, SNP 8, microcode 115}.
func NewPKI(now time.Time) (*PKI, error) {
	p := &PKI{now: now, TCB: snp.TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115}}
	for i := range p.ChipID {
		p.ChipID[i] = byte(i + 1)
	}
	var err error
	if p.ARKKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if p.ASKKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if p.VCEKKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if p.ARK, err = p.cert(1, "ARK-Milan", true, &p.ARKKey.PublicKey, nil, p.ARKKey, nil); err != nil {
		return nil, err
	}
	if p.ASK, err = p.cert(2, "SEV-Milan", true, &p.ASKKey.PublicKey, p.ARK, p.ARKKey, nil); err != nil {
		return nil, err
	}
	if p.VCEK, err = p.NewVCEK(p.TCB, p.ChipID, now.Add(-time.Hour), now.Add(365*24*time.Hour)); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) cert(serial int64, cn string, ca bool, pub any, parent *x509.Certificate, key any, exts []pkix.Extension) (*x509.Certificate, error) {
	return p.certAt(serial, cn, ca, pub, parent, key, exts, p.now.Add(-time.Hour), p.now.Add(365*24*time.Hour))
}

func (p *PKI) certAt(serial int64, cn string, ca bool, pub any, parent *x509.Certificate, key any, exts []pkix.Extension, nb, na time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test, not AMD"}},
		NotBefore: nb, NotAfter: na, ExtraExtensions: exts,
	}
	if ca {
		// A VCEK carries only AMD's extensions (and the authority key ID).
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// NewVCEK returns a VCEK certificate for p.VCEKKey with the given TCB, chip
// and validity, signed by the ASK.
func (p *PKI) NewVCEK(t snp.TCB, chip [64]byte, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	ia5, err := asn1.MarshalWithParams("Milan-B0", "ia5")
	if err != nil {
		return nil, err
	}
	hwid, err := asn1.Marshal(chip[:])
	if err != nil {
		return nil, err
	}
	exts := []pkix.Extension{
		{Id: kds.OidStructVersion, Value: u8(1)},
		{Id: kds.OidProductName1, Value: ia5},
		{Id: kds.OidBlSpl, Value: u8(int(t.Bootloader))},
		{Id: kds.OidTeeSpl, Value: u8(int(t.TEE))},
		{Id: kds.OidSnpSpl, Value: u8(int(t.SNP))},
		{Id: kds.OidSpl4, Value: u8(0)},
		{Id: kds.OidSpl5, Value: u8(0)},
		{Id: kds.OidSpl6, Value: u8(0)},
		{Id: kds.OidSpl7, Value: u8(0)},
		{Id: kds.OidUcodeSpl, Value: u8(int(t.Microcode))},
		{Id: kds.OidHwid, Value: hwid},
	}
	return p.certAt(3, "SEV-VCEK", false, &p.VCEKKey.PublicKey, p.ASK, p.ASKKey, exts, notBefore, notAfter)
}

// Roots returns the PKI's roots for snp.Options.TestRoots.
func (p *PKI) Roots() []*snp.Roots {
	return []*snp.Roots{{Product: "Milan", ARK: p.ARK, ASK: p.ASK}}
}

// CRL returns an ARK CRL valid from thisUpdate to nextUpdate that revokes
// the given certificates.
func (p *PKI) CRL(thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) ([]byte, error) {
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedCertificateEntries: entries,
	}, p.ARK, p.ARKKey)
}

// Report is the content of a synthetic report.
type Report struct {
	// Policy is the guest policy (default 0x30000: SMT allowed, bit 17
	// set, no debug, no migration agent).
	Policy uint64
	// Measurement, HostData, FamilyID, ImageID, ReportData and VMPL are
	// the report's fields.
	Measurement [48]byte
	HostData    [32]byte
	FamilyID    [16]byte
	ImageID     [16]byte
	ReportData  [64]byte
	VMPL        uint32
	// TCB is the reported TCB (default: the VCEK's).
	TCB *snp.TCB
	// Firmware is the current major.minor (default 1.55).
	Firmware [2]uint8
	// Version is the report version (default 2); from 3 on the report
	// carries the CPUID of a Milan chip, which names its product line.
	Version uint32
}

// DefaultReport returns a report with a fixed measurement and default
// fields.
func DefaultReport() *Report {
	r := &Report{Policy: 0x30000, Firmware: [2]uint8{1, 55}}
	for i := range r.Measurement {
		r.Measurement[i] = byte(0xa0 + i)
	}
	return r
}

// Measurement is DefaultReport's measurement.
func Measurement() [48]byte { return DefaultReport().Measurement }

// Sign returns the raw report r signed by the VCEK.
func (p *PKI) Sign(r *Report) ([]byte, error) {
	tcb := p.TCB
	if r.TCB != nil {
		tcb = *r.TCB
	}
	tv := TCBVersion(tcb)
	version := r.Version
	if version == 0 {
		version = 2
	}
	rep := &spb.Report{
		Version: version, GuestSvn: 0, Policy: r.Policy, FamilyId: r.FamilyID[:], ImageId: r.ImageID[:], Vmpl: r.VMPL,
		SignatureAlgo: 1, CurrentTcb: tv, PlatformInfo: 0, SignerInfo: 0,
		ReportData: r.ReportData[:], Measurement: r.Measurement[:], HostData: r.HostData[:],
		IdKeyDigest: make([]byte, 48), AuthorKeyDigest: make([]byte, 48), ReportId: make([]byte, 32), ReportIdMa: make([]byte, 32),
		ReportedTcb: tv, ChipId: p.ChipID[:], CommittedTcb: tv, LaunchTcb: tv,
		CurrentMajor: uint32(r.Firmware[0]), CurrentMinor: uint32(r.Firmware[1]), CommittedMajor: uint32(r.Firmware[0]), CommittedMinor: uint32(r.Firmware[1]),
		Signature: make([]byte, sevabi.SignatureSize),
	}
	if version >= 3 {
		rep.Cpuid1EaxFms = sevabi.FmsToCpuid1Eax(0x19, 0x01, 0x01) // Milan B1
	}
	raw, err := sevabi.ReportToAbiBytes(rep)
	if err != nil {
		return nil, fmt.Errorf("snptest: %w", err)
	}
	h := sha512.Sum384(sevabi.SignedComponent(raw))
	rs, ss, err := ecdsa.Sign(rand.Reader, p.VCEKKey, h[:])
	if err != nil {
		return nil, err
	}
	if err := sevabi.SetSignature(rs, ss, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// CertTable returns a certificate table (the auxblob of configfs-tsm)
// holding the VCEK, ASK and ARK.
func (p *PKI) CertTable() []byte {
	g := func(s string) uuid.UUID { return uuid.MustParse(s) }
	t := &sevabi.CertTable{Entries: []sevabi.CertTableEntry{
		{GUID: g(sevabi.VcekGUID), RawCert: p.VCEK.Raw},
		{GUID: g(sevabi.AskGUID), RawCert: p.ASK.Raw},
		{GUID: g(sevabi.ArkGUID), RawCert: p.ARK.Raw},
	}}
	return t.Marshal()
}
