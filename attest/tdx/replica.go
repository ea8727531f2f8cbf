package tdx

// PCKCertificateDER returns the DER of the PCK leaf certificate in a TDX
// quote's certification data. It parses only: the caller must verify the
// quote before trusting what the certificate says.
func PCKCertificateDER(quote []byte) ([]byte, error) {
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, err
	}
	c, err := pckCertificate(q)
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}
