package sgx

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
)

// Collateral is the Intel PCS collateral that verifies a quote. It mirrors
// the wire message SgxCollateral of the untrusted port: certificate chains
// are PEM (leaf first), CRLs PEM or DER or hex of DER, TCBInfo and
// QEIdentity the PCS JSON responses ({"tcbInfo":…,"signature":"hex"} and
// {"enclaveIdentity":…,"signature":"hex"}), whose signature covers the exact
// bytes of the body as they appear in the text.
type Collateral struct {
	// Version is the collateral version of the wire message (informational).
	Version uint32
	// PCKCRLIssuerChain is the chain of the PCK CRL's issuer (PEM, optional).
	PCKCRLIssuerChain string
	// RootCACRL is the CRL of the Intel SGX Root CA.
	RootCACRL string
	// PCKCRL is the CRL of the PCK Processor or Platform CA.
	PCKCRL string
	// TCBInfoIssuerChain is the TCB signing chain for TCBInfo (PEM).
	TCBInfoIssuerChain string
	// TCBInfo is the PCS TCB info response.
	TCBInfo string
	// QEIdentityIssuerChain is the signing chain for QEIdentity (PEM).
	QEIdentityIssuerChain string
	// QEIdentity is the PCS QE identity response.
	QEIdentity string
	// PCKCertificate is the PCK certificate (PEM, optional). The verifier
	// takes the PCK certificate from the quote's certification data; when
	// this field is set it must be that certificate, or Verify fails.
	PCKCertificate string
	// PCKSigningChain is the PCK certificate's issuer chain (PEM, optional).
	// When set it must be the certificates that follow the PCK certificate
	// in the quote's certification data, in order (the root may be left
	// out), or Verify fails.
	PCKSigningChain string
}

// CollateralFromDCAPQVLJSON builds a Collateral from the JSON collateral
// shape used by the dcap-qvl project, which stores the TCB info and QE
// identity bodies apart from their hex signatures (keys pck_crl_issuer_chain,
// root_ca_crl, pck_crl, tcb_info_issuer_chain, tcb_info, tcb_info_signature,
// qe_identity_issuer_chain, qe_identity, qe_identity_signature). The bodies
// are kept byte for byte.
func CollateralFromDCAPQVLJSON(data []byte) (*Collateral, error) {
	var in struct {
		PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
		RootCACRL             string `json:"root_ca_crl"`
		PCKCRL                string `json:"pck_crl"`
		TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
		TCBInfo               string `json:"tcb_info"`
		TCBInfoSignature      string `json:"tcb_info_signature"`
		QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
		QEIdentity            string `json:"qe_identity"`
		QEIdentitySignature   string `json:"qe_identity_signature"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("sgx: dcap-qvl collateral JSON: %w", err)
	}
	for name, sig := range map[string]string{"tcb_info_signature": in.TCBInfoSignature, "qe_identity_signature": in.QEIdentitySignature} {
		if _, err := hex.DecodeString(sig); err != nil || sig == "" {
			return nil, fmt.Errorf("sgx: dcap-qvl collateral JSON: %s is not a hex string", name)
		}
	}
	return &Collateral{
		PCKCRLIssuerChain:     in.PCKCRLIssuerChain,
		RootCACRL:             in.RootCACRL,
		PCKCRL:                in.PCKCRL,
		TCBInfoIssuerChain:    in.TCBInfoIssuerChain,
		TCBInfo:               `{"tcbInfo":` + in.TCBInfo + `,"signature":"` + in.TCBInfoSignature + `"}`,
		QEIdentityIssuerChain: in.QEIdentityIssuerChain,
		QEIdentity:            `{"enclaveIdentity":` + in.QEIdentity + `,"signature":"` + in.QEIdentitySignature + `"}`,
	}, nil
}

// ParseCertChain parses certificates in PEM, as a quote's certification
// data and the collateral's issuer chains hold them: certificate blocks
// only, each in canonical PEM (no headers; base64 that is the one encoding
// of its bytes), with nothing but space, tab, CR and LF before and between
// them and nothing but those and NUL bytes after the last. No byte of such
// a chain can change without changing a certificate, which encoding/pem
// alone does not ensure (it skips text before a block and ignores unused
// base64 bits). Its errors are *Error about item.
func ParseCertChain(item Item, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		if len(bytes.Trim(trimmed, " \t\r\n\x00")) == 0 {
			break
		}
		block, r := pem.Decode(trimmed)
		if block == nil || !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
			return nil, newErr(item, ErrMalformed, "data that is not a PEM block after certificate %d", len(certs))
		}
		if block.Type != "CERTIFICATE" {
			return nil, newErr(item, ErrMalformed, "PEM block %q, want CERTIFICATE", block.Type)
		}
		if !canonicalPEM(trimmed[:len(trimmed)-len(r)], block) {
			return nil, newErr(item, ErrMalformed, "certificate %d is not in canonical PEM (headers, or base64 that is not the one encoding of its bytes)", len(certs))
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, newErr(item, ErrMalformed, "certificate %d: %v", len(certs), err)
		}
		certs = append(certs, c)
		rest = r
	}
	if len(certs) == 0 {
		return nil, newErr(item, ErrMissing, "no certificate")
	}
	return certs, nil
}

// canonicalPEM reports whether text, one PEM block as pem.Decode consumed
// it, is the BEGIN line, the base64 of the block's bytes as the one
// encoding of them (lines broken anywhere), and the END line, with nothing
// else but PEM whitespace. pem.Decode also accepts headers and base64 whose
// unused trailing bits are set: text that differs from what was signed and
// checked while decoding to the same bytes, which a proof must not carry.
func canonicalPEM(text []byte, block *pem.Block) bool {
	begin, end := "-----BEGIN "+block.Type+"-----", "-----END "+block.Type+"-----"
	t := bytes.Trim(text, pemSpace)
	if len(block.Headers) != 0 || !bytes.HasPrefix(t, []byte(begin)) || !bytes.HasSuffix(t, []byte(end)) || len(t) < len(begin)+len(end) {
		return false
	}
	body := bytes.Map(func(r rune) rune {
		if strings.ContainsRune(pemSpace, r) {
			return -1
		}
		return r
	}, t[len(begin):len(t)-len(end)])
	return string(body) == base64.StdEncoding.EncodeToString(block.Bytes)
}

// pemSpace is the whitespace allowed around PEM blocks and hex strings.
const pemSpace = " \t\r\n"

// ParseCRL decodes a CRL given as PEM (X509 CRL), DER, or hex of DER, the
// ways collateral carries it; errors are *Error naming item.
//
// Only the whitespace that PEM and JSON know (space, tab, CR, LF) may
// surround it: collateral travels inside proofs, and a byte that changes
// nothing the verifier checks should be refused, not ignored.
func ParseCRL(item Item, s string) (*x509.RevocationList, error) {
	var der []byte
	t := strings.Trim(s, pemSpace)
	switch {
	case strings.HasPrefix(t, "-----BEGIN"):
		block, rest := pem.Decode([]byte(t))
		if block == nil || block.Type != "X509 CRL" {
			return nil, newErr(item, ErrMalformed, "PEM block is not an X509 CRL")
		}
		if !canonicalPEM([]byte(t)[:len(t)-len(rest)], block) {
			return nil, newErr(item, ErrMalformed, "the CRL is not in canonical PEM (headers, or base64 that is not the one encoding of its bytes)")
		}
		if len(bytes.Trim(rest, pemSpace)) != 0 {
			return nil, newErr(item, ErrMalformed, "data after the PEM block")
		}
		der = block.Bytes
	case isHex(t):
		der, _ = hex.DecodeString(t)
	default:
		der = []byte(s)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, newErr(item, ErrMalformed, "%v", err)
	}
	return crl, nil
}

func isHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// splitSignedJSON takes a PCS response {"<bodyKey>": <body>, "signature":
// "<hex>"} and returns the exact bytes of the body and the 64-byte raw
// signature. No other key is allowed.
func splitSignedJSON(item Item, s, bodyKey string) ([]byte, []byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, newErr(item, ErrMissing, "empty")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, nil, newErr(item, ErrMalformed, "%v", err)
	}
	body, ok := m[bodyKey]
	if !ok {
		return nil, nil, newErr(item, ErrMalformed, "no %q key", bodyKey)
	}
	sigJSON, ok := m["signature"]
	if !ok {
		return nil, nil, newErr(item, ErrMalformed, `no "signature" key`)
	}
	if len(m) != 2 {
		return nil, nil, newErr(item, ErrMalformed, "%d keys, want exactly %q and \"signature\"", len(m), bodyKey)
	}
	var sigHex string
	if err := json.Unmarshal(sigJSON, &sigHex); err != nil {
		return nil, nil, newErr(item, ErrMalformed, "signature is not a string")
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != 64 {
		return nil, nil, newErr(item, ErrMalformed, "signature is not 64 bytes of hex (raw r||s)")
	}
	return body, sig, nil
}
