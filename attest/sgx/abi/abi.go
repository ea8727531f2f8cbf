// Package abi converts Intel SGX DCAP quotes (version 3) between their byte
// layout and Go structs. It only parses: it checks every length and constant
// of the layout, refuses trailing bytes, and never panics on any input, but
// it verifies no signature. Verification lives in package
// github.com/blindfold-ai/blindfold/attest/sgx.
//
// All multi-byte integers of the layout are little-endian.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes and offsets of the SGX quote v3 layout.
const (
	// HeaderSize is the size of the quote header.
	HeaderSize = 48
	// ReportBodySize is the size of an SGX report body (ISV enclave report
	// or QE report).
	ReportBodySize = 384
	// SignedSize is the size of the part of the quote that the attestation
	// key signs: header || ISV enclave report body.
	SignedSize = HeaderSize + ReportBodySize
	// SignatureDataOffset is the offset of the signature data (after its
	// 4-byte length).
	SignatureDataOffset = SignedSize + 4
	// MinQuoteSize is the smallest possible quote: header, report body,
	// signature data length, and a signature data with empty QE
	// authentication data and empty certification data.
	MinQuoteSize = SignatureDataOffset + minSignatureDataSize

	// SignatureSize is the size of a raw ECDSA P-256 signature (r || s).
	SignatureSize = 64
	// PublicKeySize is the size of a raw ECDSA P-256 public key (x || y).
	PublicKeySize = 64

	minSignatureDataSize = SignatureSize + PublicKeySize + ReportBodySize + SignatureSize + 2 + 2 + 4
)

// Constants of the quote header.
const (
	// QuoteVersion3 is the only quote version this package parses.
	QuoteVersion3 = 3
	// AttestationKeyTypeECDSAP256 is ECDSA-256-with-P-256, the only
	// attestation key type of DCAP quotes.
	AttestationKeyTypeECDSAP256 = 2
	// TEETypeSGX is the TEE type of SGX quotes.
	TEETypeSGX = 0
)

// IntelQEVendorID is the QE vendor ID of Intel's quoting enclave.
var IntelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Attribute flag bits of an SGX report body.
const (
	AttributeInit          uint64 = 0x01
	AttributeDebug         uint64 = 0x02
	AttributeMode64Bit     uint64 = 0x04
	AttributeProvisionKey  uint64 = 0x10
	AttributeEInitTokenKey uint64 = 0x20
	AttributeKSS           uint64 = 0x80
)

// CertificationDataType says what the certification data of a quote holds.
type CertificationDataType uint16

// Certification data types defined by Intel.
const (
	CertDataPPIDCleartext      CertificationDataType = 1
	CertDataPPIDRSA2048OAEP    CertificationDataType = 2
	CertDataPPIDRSA3072OAEP    CertificationDataType = 3
	CertDataPCKLeafCertificate CertificationDataType = 4
	CertDataPCKCertChain       CertificationDataType = 5
	CertDataQEReport           CertificationDataType = 6
	CertDataPlatformManifest   CertificationDataType = 7
)

// String names the certification data type.
func (t CertificationDataType) String() string {
	switch t {
	case CertDataPPIDCleartext:
		return "plaintext PPID"
	case CertDataPPIDRSA2048OAEP:
		return "encrypted PPID (RSA-2048-OAEP)"
	case CertDataPPIDRSA3072OAEP:
		return "encrypted PPID (RSA-3072-OAEP)"
	case CertDataPCKLeafCertificate:
		return "PCK leaf certificate"
	case CertDataPCKCertChain:
		return "PCK certificate chain"
	case CertDataQEReport:
		return "QE report certification data"
	case CertDataPlatformManifest:
		return "platform manifest"
	}
	return fmt.Sprintf("unknown certification data type %d", uint16(t))
}

// Known reports whether t is one of the types Intel defines (1 to 7).
func (t CertificationDataType) Known() bool { return t >= 1 && t <= 7 }

// Errors returned by parsing. Every parse error wraps one of them, and most
// are *FieldError values that name the field.
var (
	// ErrTruncated means the input ends before a field that the layout needs.
	ErrTruncated = errors.New("quote truncated")
	// ErrTrailingBytes means bytes follow the end of the structure.
	ErrTrailingBytes = errors.New("trailing bytes after the quote")
	// ErrUnsupported means a header constant has a value this package does
	// not accept (version, attestation key type, TEE type).
	ErrUnsupported = errors.New("unsupported quote")
	// ErrMalformed means a length or type field is inconsistent.
	ErrMalformed = errors.New("malformed quote")
)

// FieldError says which field of the quote failed to parse, and why.
type FieldError struct {
	// Field names the field, e.g. "header.version".
	Field string
	// Err is ErrTruncated, ErrTrailingBytes, ErrUnsupported or ErrMalformed.
	Err error
	// Detail says what was found and what was expected.
	Detail string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("sgx quote: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("sgx quote: %s: %v: %s", e.Field, e.Err, e.Detail)
}

// Unwrap returns the sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error, format string, args ...any) error {
	return &FieldError{Field: field, Err: err, Detail: fmt.Sprintf(format, args...)}
}

// Header is the 48-byte quote header.
type Header struct {
	// Version is the quote version (3).
	Version uint16
	// AttestationKeyType is the attestation key type (2, ECDSA P-256).
	AttestationKeyType uint16
	// TEEType is the TEE type (0 for SGX; reserved in early v3 layouts).
	TEEType uint32
	// QESVN is the security version of the quoting enclave.
	QESVN uint16
	// PCESVN is the security version of the provisioning certification enclave.
	PCESVN uint16
	// QEVendorID identifies the vendor of the quoting enclave.
	QEVendorID [16]byte
	// UserData is custom data of the quoting enclave (the first 16 bytes
	// are the platform's QE ID).
	UserData [20]byte
}

// ReportBody is a 384-byte SGX report body (sgx_report_body_t).
type ReportBody struct {
	// CPUSVN is the security version of the CPU.
	CPUSVN [16]byte
	// MiscSelect is MISCSELECT, the extended features saved on exit.
	MiscSelect uint32
	// Reserved1 is reserved (offset 20, 12 bytes).
	Reserved1 [12]byte
	// ISVExtProdID is the extended product ID (offset 32).
	ISVExtProdID [16]byte
	// AttributesFlags is the first 8 bytes of ATTRIBUTES (INIT, DEBUG, ...).
	AttributesFlags uint64
	// AttributesXFRM is the last 8 bytes of ATTRIBUTES.
	AttributesXFRM uint64
	// MRENCLAVE is the enclave measurement (offset 64).
	MRENCLAVE [32]byte
	// Reserved2 is reserved (offset 96).
	Reserved2 [32]byte
	// MRSIGNER is SHA-256 of the enclave signer's modulus (offset 128).
	MRSIGNER [32]byte
	// Reserved3 is reserved (offset 160).
	Reserved3 [32]byte
	// ConfigID is the configuration ID (offset 192).
	ConfigID [64]byte
	// ISVProdID is the product ID (offset 256).
	ISVProdID uint16
	// ISVSVN is the enclave's security version (offset 258).
	ISVSVN uint16
	// ConfigSVN is the configuration security version (offset 260).
	ConfigSVN uint16
	// Reserved4 is reserved (offset 262, 42 bytes).
	Reserved4 [42]byte
	// ISVFamilyID is the family ID (offset 304).
	ISVFamilyID [16]byte
	// ReportData is the 64 bytes the enclave chose (offset 320).
	ReportData [64]byte
}

// Offsets of the report body fields.
const (
	offCPUSVN       = 0
	offMiscSelect   = 16
	offReserved1    = 20
	offISVExtProdID = 32
	offAttributes   = 48
	offMRENCLAVE    = 64
	offReserved2    = 96
	offMRSIGNER     = 128
	offReserved3    = 160
	offConfigID     = 192
	offISVProdID    = 256
	offISVSVN       = 258
	offConfigSVN    = 260
	offReserved4    = 262
	offISVFamilyID  = 304
	offReportData   = 320
)

// Debug reports whether the DEBUG attribute is set.
func (r *ReportBody) Debug() bool { return r.AttributesFlags&AttributeDebug != 0 }

// ParseReportBody parses exactly 384 bytes of SGX report body.
func ParseReportBody(b []byte) (*ReportBody, error) {
	if len(b) < ReportBodySize {
		return nil, fieldErr("report body", ErrTruncated, "%d bytes, want %d", len(b), ReportBodySize)
	}
	if len(b) > ReportBodySize {
		return nil, fieldErr("report body", ErrTrailingBytes, "%d bytes, want %d", len(b), ReportBodySize)
	}
	r := &ReportBody{}
	copy(r.CPUSVN[:], b[offCPUSVN:])
	r.MiscSelect = binary.LittleEndian.Uint32(b[offMiscSelect:])
	copy(r.Reserved1[:], b[offReserved1:])
	copy(r.ISVExtProdID[:], b[offISVExtProdID:])
	r.AttributesFlags = binary.LittleEndian.Uint64(b[offAttributes:])
	r.AttributesXFRM = binary.LittleEndian.Uint64(b[offAttributes+8:])
	copy(r.MRENCLAVE[:], b[offMRENCLAVE:])
	copy(r.Reserved2[:], b[offReserved2:])
	copy(r.MRSIGNER[:], b[offMRSIGNER:])
	copy(r.Reserved3[:], b[offReserved3:])
	copy(r.ConfigID[:], b[offConfigID:])
	r.ISVProdID = binary.LittleEndian.Uint16(b[offISVProdID:])
	r.ISVSVN = binary.LittleEndian.Uint16(b[offISVSVN:])
	r.ConfigSVN = binary.LittleEndian.Uint16(b[offConfigSVN:])
	copy(r.Reserved4[:], b[offReserved4:])
	copy(r.ISVFamilyID[:], b[offISVFamilyID:])
	copy(r.ReportData[:], b[offReportData:])
	return r, nil
}

// Marshal returns the 384-byte layout of the report body.
func (r *ReportBody) Marshal() []byte {
	b := make([]byte, ReportBodySize)
	copy(b[offCPUSVN:], r.CPUSVN[:])
	binary.LittleEndian.PutUint32(b[offMiscSelect:], r.MiscSelect)
	copy(b[offReserved1:], r.Reserved1[:])
	copy(b[offISVExtProdID:], r.ISVExtProdID[:])
	binary.LittleEndian.PutUint64(b[offAttributes:], r.AttributesFlags)
	binary.LittleEndian.PutUint64(b[offAttributes+8:], r.AttributesXFRM)
	copy(b[offMRENCLAVE:], r.MRENCLAVE[:])
	copy(b[offReserved2:], r.Reserved2[:])
	copy(b[offMRSIGNER:], r.MRSIGNER[:])
	copy(b[offReserved3:], r.Reserved3[:])
	copy(b[offConfigID:], r.ConfigID[:])
	binary.LittleEndian.PutUint16(b[offISVProdID:], r.ISVProdID)
	binary.LittleEndian.PutUint16(b[offISVSVN:], r.ISVSVN)
	binary.LittleEndian.PutUint16(b[offConfigSVN:], r.ConfigSVN)
	copy(b[offReserved4:], r.Reserved4[:])
	copy(b[offISVFamilyID:], r.ISVFamilyID[:])
	copy(b[offReportData:], r.ReportData[:])
	return b
}

// Marshal returns the 48-byte layout of the header.
func (h *Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint16(b[0:], h.Version)
	binary.LittleEndian.PutUint16(b[2:], h.AttestationKeyType)
	binary.LittleEndian.PutUint32(b[4:], h.TEEType)
	binary.LittleEndian.PutUint16(b[8:], h.QESVN)
	binary.LittleEndian.PutUint16(b[10:], h.PCESVN)
	copy(b[12:], h.QEVendorID[:])
	copy(b[28:], h.UserData[:])
	return b
}

func parseHeader(b []byte) (*Header, error) {
	h := &Header{
		Version:            binary.LittleEndian.Uint16(b[0:]),
		AttestationKeyType: binary.LittleEndian.Uint16(b[2:]),
		TEEType:            binary.LittleEndian.Uint32(b[4:]),
		QESVN:              binary.LittleEndian.Uint16(b[8:]),
		PCESVN:             binary.LittleEndian.Uint16(b[10:]),
	}
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	if h.Version != QuoteVersion3 {
		return nil, fieldErr("header.version", ErrUnsupported, "version %d, want %d", h.Version, QuoteVersion3)
	}
	if h.AttestationKeyType != AttestationKeyTypeECDSAP256 {
		return nil, fieldErr("header.attestation_key_type", ErrUnsupported, "type %d, want %d (ECDSA-256-with-P-256)", h.AttestationKeyType, AttestationKeyTypeECDSAP256)
	}
	if h.TEEType != TEETypeSGX {
		return nil, fieldErr("header.tee_type", ErrUnsupported, "TEE type %#x, want %#x (SGX)", h.TEEType, TEETypeSGX)
	}
	return h, nil
}

// CertificationData is the certification data at the end of the quote
// signature data.
type CertificationData struct {
	// Type says what Data holds.
	Type CertificationDataType
	// Data is the raw certification data; for CertDataPCKCertChain it is the
	// PEM of the PCK certificate chain, leaf first.
	Data []byte
}

// SignatureData is the ECDSA quote signature data (sgx_ql_ecdsa_sig_data_t
// followed by the QE authentication data and the certification data).
type SignatureData struct {
	// Signature is the attestation key's ECDSA signature (r || s) over
	// header || ISV enclave report body.
	Signature [SignatureSize]byte
	// AttestationKey is the raw ECDSA P-256 attestation public key (x || y).
	AttestationKey [PublicKeySize]byte
	// QEReport is the report of the quoting enclave.
	QEReport ReportBody
	// QEReportRaw is the 384 bytes of QEReport as they appear in the quote
	// (the bytes that QEReportSignature covers).
	QEReportRaw []byte
	// QEReportSignature is the PCK key's ECDSA signature (r || s) over QEReportRaw.
	QEReportSignature [SignatureSize]byte
	// QEAuthData is the QE authentication data.
	QEAuthData []byte
	// CertificationData is the certification data.
	CertificationData CertificationData
}

// Quote is a parsed SGX DCAP quote, version 3.
type Quote struct {
	// Header is the quote header.
	Header Header
	// ReportBody is the ISV enclave report body.
	ReportBody ReportBody
	// SignatureData is the signature data.
	SignatureData SignatureData
	// Signed is the exact bytes that the attestation key signs:
	// header || ISV enclave report body (432 bytes).
	Signed []byte
	// Raw is the whole quote.
	Raw []byte
}

// reader is a bounds-checked cursor over a byte slice.
type reader struct {
	b   []byte
	off int
}

func (r *reader) take(field string, n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, fieldErr(field, ErrTruncated, "need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out, nil
}

// ParseQuote parses an SGX DCAP quote, version 3, with an ECDSA P-256
// attestation key. The input must hold exactly one quote: trailing bytes are
// an error. // byte slices point into a private copy of b, so the caller may reuse b.
func ParseQuote(b []byte) (*Quote, error) {
	b = append([]byte(nil), b...)
	r := &reader{b: b}
	hb, err := r.take("header", HeaderSize)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	bb, err := r.take("report body", ReportBodySize)
	if err != nil {
		return nil, err
	}
	body, err := ParseReportBody(bb)
	if err != nil {
		return nil, err
	}
	lb, err := r.take("signature_data_len", 4)
	if err != nil {
		return nil, err
	}
	sigLen := binary.LittleEndian.Uint32(lb)
	rest := len(b) - r.off
	if uint64(sigLen) > uint64(rest) {
		return nil, fieldErr("signature_data_len", ErrTruncated, "declares %d bytes, %d remain", sigLen, rest)
	}
	if uint64(sigLen) < uint64(rest) {
		return nil, fieldErr("signature_data_len", ErrTrailingBytes, "declares %d bytes, %d remain", sigLen, rest)
	}
	sd, err := parseSignatureData(b[r.off:])
	if err != nil {
		return nil, err
	}
	return &Quote{Header: *h, ReportBody: *body, SignatureData: *sd, Signed: b[:SignedSize], Raw: b}, nil
}

func parseSignatureData(b []byte) (*SignatureData, error) {
	r := &reader{b: b}
	sd := &SignatureData{}
	p, err := r.take("signature_data.signature", SignatureSize)
	if err != nil {
		return nil, err
	}
	copy(sd.Signature[:], p)
	if p, err = r.take("signature_data.attestation_key", PublicKeySize); err != nil {
		return nil, err
	}
	copy(sd.AttestationKey[:], p)
	if p, err = r.take("signature_data.qe_report", ReportBodySize); err != nil {
		return nil, err
	}
	qr, err := ParseReportBody(p)
	if err != nil {
		return nil, err
	}
	sd.QEReport = *qr
	sd.QEReportRaw = p
	if p, err = r.take("signature_data.qe_report_signature", SignatureSize); err != nil {
		return nil, err
	}
	copy(sd.QEReportSignature[:], p)
	if p, err = r.take("signature_data.qe_auth_data.size", 2); err != nil {
		return nil, err
	}
	authLen := int(binary.LittleEndian.Uint16(p))
	if sd.QEAuthData, err = r.take("signature_data.qe_auth_data", authLen); err != nil {
		return nil, err
	}
	if p, err = r.take("signature_data.certification_data.type", 2); err != nil {
		return nil, err
	}
	sd.CertificationData.Type = CertificationDataType(binary.LittleEndian.Uint16(p))
	if !sd.CertificationData.Type.Known() {
		return nil, fieldErr("signature_data.certification_data.type", ErrMalformed, "type %d, want 1 to 7", uint16(sd.CertificationData.Type))
	}
	if p, err = r.take("signature_data.certification_data.size", 4); err != nil {
		return nil, err
	}
	certLen := binary.LittleEndian.Uint32(p)
	rest := len(b) - r.off
	if uint64(certLen) > uint64(rest) {
		return nil, fieldErr("signature_data.certification_data.size", ErrTruncated, "declares %d bytes, %d remain", certLen, rest)
	}
	if uint64(certLen) < uint64(rest) {
		return nil, fieldErr("signature_data.certification_data.size", ErrTrailingBytes, "declares %d bytes, %d remain in the signature data", certLen, rest)
	}
	sd.CertificationData.Data = b[r.off:]
	return sd, nil
}

// Marshal returns the byte layout of the signature data, built from its
// fields (QEReportRaw is ignored). QEAuthData must be under 64 KiB.
func (sd *SignatureData) Marshal() []byte {
	var out []byte
	out = append(out, sd.Signature[:]...)
	out = append(out, sd.AttestationKey[:]...)
	out = append(out, sd.QEReport.Marshal()...)
	out = append(out, sd.QEReportSignature[:]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(sd.QEAuthData)))
	out = append(out, sd.QEAuthData...)
	out = binary.LittleEndian.AppendUint16(out, uint16(sd.CertificationData.Type))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sd.CertificationData.Data)))
	out = append(out, sd.CertificationData.Data...)
	return out
}

// Marshal returns the byte layout of the quote, built from Header,
// ReportBody and SignatureData (Raw and Signed are ignored).
func (q *Quote) Marshal() []byte {
	out := q.Header.Marshal()
	out = append(out, q.ReportBody.Marshal()...)
	sd := q.SignatureData.Marshal()
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sd)))
	return append(out, sd...)
}
