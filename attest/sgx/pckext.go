package sgx

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// Object identifiers of the SGX extensions of PCK certificates.
var (
	// OIDSGXExtensions is the SGX extensions extension of a PCK certificate.
	OIDSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	// OIDPPID is the platform provisioning ID (16 bytes).
	OIDPPID = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	// OIDTCB is the TCB sequence: 16 CPUSVN components (…2.1 to …2.16),
	// PCESVN (…2.17) and CPUSVN (…2.18).
	OIDTCB = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	// OIDPCEID is the PCE ID (2 bytes).
	OIDPCEID = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	// OIDFMSPC is the FMSPC (6 bytes).
	OIDFMSPC = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	// OIDSGXType is the SGX type (enumerated: 0 standard, 1 scalable, …).
	OIDSGXType = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
)

// PCKExtensions holds the SGX extensions of a PCK certificate.
type PCKExtensions struct {
	// PPID is the platform provisioning ID.
	PPID []byte
	// CPUSVNComponents are the 16 CPUSVN component SVNs of the TCB.
	CPUSVNComponents [16]uint8
	// PCESVN is the PCE security version of the TCB.
	PCESVN uint16
	// CPUSVN is the raw CPUSVN of the TCB.
	CPUSVN [16]byte
	// PCEID is the PCE ID.
	PCEID [2]byte
	// FMSPC is the family-model-stepping-platform-custom SKU.
	FMSPC [6]byte
	// SGXType is the SGX type (0 standard, 1 scalable, 2 scalable with
	// integrity), or -1 when absent.
	SGXType int
}

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func parseOIDSequence(der []byte) ([]oidValue, error) {
	var seq []oidValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(rest))
	}
	return seq, nil
}

func octets(v asn1.RawValue, n int, name string) ([]byte, error) {
	var b []byte
	rest, err := asn1.Unmarshal(v.FullBytes, &b)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%s is not an OCTET STRING", name)
	}
	if n >= 0 && len(b) != n {
		return nil, fmt.Errorf("%s is %d bytes, want %d", name, len(b), n)
	}
	return b, nil
}

func integer(v asn1.RawValue, max int, name string) (int, error) {
	var i int
	rest, err := asn1.Unmarshal(v.FullBytes, &i)
	if err != nil || len(rest) != 0 {
		return 0, fmt.Errorf("%s is not an INTEGER", name)
	}
	if i < 0 || i > max {
		return 0, fmt.Errorf("%s = %d, out of range 0..%d", name, i, max)
	}
	return i, nil
}

// ParsePCKExtensions reads the SGX extensions of a PCK certificate. The
// TCB (all 16 components, PCESVN and CPUSVN), PCE ID and FMSPC must be
// present exactly once.
func ParsePCKExtensions(cert *x509.Certificate) (*PCKExtensions, error) {
	var raw []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSGXExtensions) {
			if raw != nil {
				return nil, fmt.Errorf("SGX extensions extension appears twice")
			}
			raw = e.Value
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("no SGX extensions extension (OID %v)", OIDSGXExtensions)
	}
	seq, err := parseOIDSequence(raw)
	if err != nil {
		return nil, fmt.Errorf("SGX extensions: %v", err)
	}
	ext := &PCKExtensions{SGXType: -1}
	seen := map[string]bool{}
	for _, kv := range seq {
		key := kv.ID.String()
		if seen[key] {
			return nil, fmt.Errorf("SGX extension %s appears twice", key)
		}
		seen[key] = true
		switch {
		case kv.ID.Equal(OIDPPID):
			if ext.PPID, err = octets(kv.Value, 16, "PPID"); err != nil {
				return nil, err
			}
		case kv.ID.Equal(OIDTCB):
			if err := parseTCBExt(kv.Value, ext); err != nil {
				return nil, err
			}
		case kv.ID.Equal(OIDPCEID):
			b, err := octets(kv.Value, 2, "PCE-ID")
			if err != nil {
				return nil, err
			}
			copy(ext.PCEID[:], b)
		case kv.ID.Equal(OIDFMSPC):
			b, err := octets(kv.Value, 6, "FMSPC")
			if err != nil {
				return nil, err
			}
			copy(ext.FMSPC[:], b)
		case kv.ID.Equal(OIDSGXType):
			var e asn1.Enumerated
			if rest, err := asn1.Unmarshal(kv.Value.FullBytes, &e); err != nil || len(rest) != 0 {
				return nil, fmt.Errorf("SGX type is not ENUMERATED")
			}
			ext.SGXType = int(e)
		}
	}
	for _, need := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{{OIDTCB, "TCB"}, {OIDPCEID, "PCE-ID"}, {OIDFMSPC, "FMSPC"}} {
		if !seen[need.oid.String()] {
			return nil, fmt.Errorf("SGX extension %s (%v) missing", need.name, need.oid)
		}
	}
	return ext, nil
}

func parseTCBExt(v asn1.RawValue, ext *PCKExtensions) error {
	seq, err := parseOIDSequence(v.FullBytes)
	if err != nil {
		return fmt.Errorf("SGX TCB extension: %v", err)
	}
	seen := make([]bool, 19)
	for _, kv := range seq {
		id := kv.ID
		if len(id) != len(OIDTCB)+1 || !id[:len(OIDTCB)].Equal(OIDTCB) || id[len(OIDTCB)] < 1 || id[len(OIDTCB)] > 18 {
			continue
		}
		n := id[len(OIDTCB)]
		if seen[n] {
			return fmt.Errorf("SGX TCB extension %v appears twice", id)
		}
		seen[n] = true
		switch {
		case n <= 16:
			svn, err := integer(kv.Value, 255, fmt.Sprintf("CPUSVN component %d", n))
			if err != nil {
				return err
			}
			ext.CPUSVNComponents[n-1] = uint8(svn)
		case n == 17:
			svn, err := integer(kv.Value, 65535, "PCESVN")
			if err != nil {
				return err
			}
			ext.PCESVN = uint16(svn)
		case n == 18:
			b, err := octets(kv.Value, 16, "CPUSVN")
			if err != nil {
				return err
			}
			copy(ext.CPUSVN[:], b)
		}
	}
	for n := 1; n <= 18; n++ {
		if !seen[n] {
			return fmt.Errorf("SGX TCB extension %v.%d missing", OIDTCB, n)
		}
	}
	return nil
}
