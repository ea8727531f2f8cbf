package sgx

import (
	"errors"

	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
)

// PCKCertificateDER returns the DER of the PCK leaf certificate that an SGX
// quote carries in its certification data (type 5, the PCK certificate
// chain, leaf first). It parses only: it verifies nothing, so the caller
// must verify the quote (Verify) before trusting what the certificate says.
func PCKCertificateDER(quote []byte) ([]byte, error) {
	q, err := abi.ParseQuote(quote)
	if err != nil {
		sentinel := ErrMalformed
		if errors.Is(err, abi.ErrUnsupported) {
			sentinel = ErrUnsupported
		}
		return nil, newErr(ItemQuote, sentinel, "%v", err)
	}
	cd := q.SignatureData.CertificationData
	if cd.Type != abi.CertDataPCKCertChain {
		return nil, newErr(ItemCertificationData, ErrUnsupported, "certification data type %d (%v) does not carry the PCK certificate chain (type 5)", uint16(cd.Type), cd.Type)
	}
	certs, err := ParseCertChain(ItemCertificationData, cd.Data)
	if err != nil {
		return nil, err
	}
	return certs[0].Raw, nil
}
