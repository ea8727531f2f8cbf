package tdx

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"fmt"

	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// Sizes of the TDX quote layout (Intel TDX DCAP quote, versions 4 and 5).
const (
	quoteHeaderSize = 48
	// tdBody10Size is a TD report 1.0 body (the body of a version 4 quote).
	tdBody10Size = 584
	// tdBody15Size is a TD report 1.5 body: the 1.0 body, TEE_TCB_SVN_2
	// (16 bytes) and MRSERVICETD (48 bytes).
	tdBody15Size = tdBody10Size + 16 + 48
	sigSize      = 64
	keySize      = 64
)

// Body types of a version 5 quote.
const (
	// BodySGX is an SGX enclave report body, refused here.
	BodySGX uint16 = 1
	// BodyTD10 is a TD report 1.0 body (TDX 1.0), as in a version 4 quote.
	BodyTD10 uint16 = 2
	// BodyTD15 is a TD report 1.5 body (TDX 1.5): the 1.0 body followed by
	// TEE_TCB_SVN_2 and MRSERVICETD.
	BodyTD15 uint16 = 3
)

// Header constants of a TDX quote.
const (
	attestationKeyECDSAP256 = 2
	teeTypeTDX              = 0x81
	// certDataQEReport is certification data of type 6: the QE report,
	// its signature, the QE authentication data and the inner
	// certification data.
	certDataQEReport = 6
	// certDataPCKChain is certification data of type 5: the PCK
	// certificate chain, PEM.
	certDataPCKChain = 5
)

// rawQuote is the layout of a TDX quote of version 5 or, with the body of
// type BodyTD10 and no body descriptor, of version 4. Every slice points
// into raw.
type rawQuote struct {
	raw     []byte
	version uint16
	// signed is what the attestation key signs: header || body type ||
	// body size || body (version 4: header || body).
	signed   []byte
	bodyType uint16
	// body is the TD report body, tdBody10Size or tdBody15Size bytes.
	body           []byte
	signature      []byte
	attestationKey []byte
	// qeReport is the 384-byte SGX report of the quoting enclave.
	qeReport          []byte
	qeReportSignature []byte
	qeAuthData        []byte
	// pckChain is the PEM PCK certificate chain, leaf first.
	pckChain []byte
}

// reader reads the little-endian fields of a quote, refusing to read past
// its end; sizes read from the quote are checked against what is left
// before any slice is taken.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) next(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: %s: %d bytes at offset %d, only %d left", ErrMalformed, what, n, r.off, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *reader) u16(what string) uint16 {
	if b := r.next(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.next(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// rest reads a u32 size and then that many bytes, which must be exactly
// what is left.
func (r *reader) rest(what string) []byte {
	n := r.u32(what + " size")
	if r.err != nil {
		return nil
	}
	if left := len(r.b) - r.off; int64(n) != int64(left) {
		r.err = fmt.Errorf("%w: %s size %d, but %d bytes follow it (bytes after the quote are refused)", ErrMalformed, what, n, left)
		return nil
	}
	return r.next(int(n), what)
}

// parseQuoteV5 parses a version 5 TDX quote (see parseLayout).
func parseQuoteV5(raw []byte) (*rawQuote, error) {
	q, err := parseLayout(raw)
	if err != nil {
		return nil, err
	}
	if q.version != 5 {
		return nil, fmt.Errorf("%w: quote version %d, not 5", ErrUnsupported, q.version)
	}
	return q, nil
}

// parseLayout parses the layout of a TDX quote of version 4 or 5: ECDSA
// P-256 attestation key, TEE type TDX, Intel's QE vendor ID; for version 5
// a TD report body of type 2 or 3 and of that type's size, for version 4 a
// TD report 1.0 body; certification data of type 6 holding a PCK
// certificate chain (type 5); every size inside the quote consistent, and
// no byte after the signature data.
func parseLayout(raw []byte) (*rawQuote, error) {
	if len(raw) > MaxQuoteBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxQuoteBytes)
	}
	r := &reader{b: raw}
	h := r.next(quoteHeaderSize, "header")
	if r.err != nil {
		return nil, r.err
	}
	version := binary.LittleEndian.Uint16(h[0:])
	if version != 4 && version != 5 {
		return nil, fmt.Errorf("%w: quote version %d (versions 4 and 5 are verified)", ErrUnsupported, version)
	}
	if k := binary.LittleEndian.Uint16(h[2:]); k != attestationKeyECDSAP256 {
		return nil, fmt.Errorf("%w: attestation key type %d (only 2, ECDSA P-256, is verified)", ErrUnsupported, k)
	}
	if t := binary.LittleEndian.Uint32(h[4:]); t != teeTypeTDX {
		return nil, fmt.Errorf("%w: TEE type %#x is not TDX", ErrUnsupported, t)
	}
	if !bytes.Equal(h[12:28], abi.IntelQEVendorID[:]) {
		return nil, fmt.Errorf("%w: QE vendor ID %x, want Intel's %x", ErrUnsupported, h[12:28], abi.IntelQEVendorID)
	}
	q := &rawQuote{raw: raw, version: version, bodyType: BodyTD10}
	size := uint32(tdBody10Size)
	if version == 5 {
		q.bodyType = r.u16("body type")
		size = r.u32("body size")
		if r.err != nil {
			return nil, r.err
		}
	}
	want := 0
	switch q.bodyType {
	case BodyTD10:
		want = tdBody10Size
	case BodyTD15:
		want = tdBody15Size
	case BodySGX:
		return nil, fmt.Errorf("%w: body type 1 (an SGX enclave report) in a TDX quote", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: unknown body type %d", ErrUnsupported, q.bodyType)
	}
	if int64(size) != int64(want) {
		return nil, fmt.Errorf("%w: body type %d with body size %d, want %d", ErrMalformed, q.bodyType, size, want)
	}
	q.body = r.next(want, "TD report body")
	if r.err != nil {
		return nil, r.err
	}
	q.signed = raw[:r.off:r.off]
	sd := &reader{b: r.rest("signature data")}
	if r.err != nil {
		return nil, r.err
	}
	q.signature = sd.next(sigSize, "quote signature")
	q.attestationKey = sd.next(keySize, "attestation key")
	if t := sd.u16("certification data type"); sd.err == nil && t != certDataQEReport {
		return nil, fmt.Errorf("%w: certification data type %d, want %d (QE report certification data)", ErrUnsupported, t, certDataQEReport)
	}
	cd := &reader{b: sd.rest("certification data")}
	if sd.err != nil {
		return nil, sd.err
	}
	q.qeReport = cd.next(abi.ReportBodySize, "QE report")
	q.qeReportSignature = cd.next(sigSize, "QE report signature")
	q.qeAuthData = cd.next(int(cd.u16("QE authentication data size")), "QE authentication data")
	if t := cd.u16("inner certification data type"); cd.err == nil && t != certDataPCKChain {
		return nil, fmt.Errorf("%w: inner certification data type %d, want %d (PCK certificate chain)", ErrUnsupported, t, certDataPCKChain)
	}
	q.pckChain = cd.rest("PCK certificate chain")
	if cd.err != nil {
		return nil, cd.err
	}
	return q, nil
}

// pckChainCerts parses a quote's PEM PCK certificate chain with the
// strict parser of SGX quotes (sgx.ParseCertChain: canonical PEM, nothing
// but white space between blocks, NUL bytes after), which must hold the
// PCK certificate, the PCK CA and the root.
func pckChainCerts(chain []byte) ([]*x509.Certificate, error) {
	certs, err := sgx.ParseCertChain(sgx.ItemCertificationData, chain)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate chain: %v", ErrMalformed, err)
	}
	if len(certs) != 3 {
		return nil, fmt.Errorf("%w: PCK certificate chain of %d certificates, want 3 (PCK certificate, PCK CA, root)", ErrMalformed, len(certs))
	}
	return certs, nil
}

// platformOf returns the FMSPC and CA type of a PCK certificate.
func platformOf(pck *x509.Certificate) (pccs.Platform, error) {
	ca := ""
	switch pck.Issuer.CommonName {
	case "Intel SGX PCK Processor CA":
		ca = pccs.CAProcessor
	case "Intel SGX PCK Platform CA":
		ca = pccs.CAPlatform
	default:
		return pccs.Platform{}, fmt.Errorf("%w: PCK certificate issuer %q", ErrMalformed, pck.Issuer.CommonName)
	}
	ext, err := sgxPCKExtensions(pck)
	if err != nil {
		return pccs.Platform{}, err
	}
	return pccs.Platform{FMSPC: ext.FMSPC, CA: ca, TEE: pccs.TEETDX}, nil
}

// PlatformOf returns the platform (FMSPC, PCK CA type, TEE tdx) of a TDX
// quote of version 4 or 5, read from the PCK certificate it carries: what
// its collateral is fetched for. The quote is parsed, not verified.
func PlatformOf(raw []byte) (pccs.Platform, error) {
	q, err := parseLayout(raw)
	if err != nil {
		return pccs.Platform{}, err
	}
	certs, err := pckChainCerts(q.pckChain)
	if err != nil {
		return pccs.Platform{}, err
	}
	return platformOf(certs[0])
}
