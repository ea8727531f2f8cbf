package tdx

// PCKCertificateDER returns the DER of the PCK leaf certificate in a TDX
// quote's certification data (version 4 or 5). It parses only: the caller
// must verify the quote before trusting what the certificate says.
func PCKCertificateDER(quote []byte) ([]byte, error) {
	q, err := parseLayout(quote)
	if err != nil {
		return nil, err
	}
	certs, err := pckChainCerts(q.pckChain)
	if err != nil {
		return nil, err
	}
	return certs[0].Raw, nil
}
