package client

import "github.com/blindfold-ai/blindfold/attest/collateral"

// WithCollateralBundle verifies the server's SGX or TDX quote with the
// collateral that b holds for the quote's platform (FMSPC, PCK CA type,
// TEE) instead of the collateral the server sends, so that the server's
// word on its collateral's freshness is not taken. The whole bundle is
// verified first, at the verification time (WithTime) against the pinned
// Intel SGX Root CA (or WithTestRootCA): Connect fails with
// ErrStaleCollateral when the time is outside the bundle's window, and
// with ErrBadEvidence when the bundle does not verify, has nothing for the
// quote's platform, or the server offers evidence of another platform.
// Read a bundle with collateral.ReadFile ("blindfold collateral fetch
// --out" writes one).
func WithCollateralBundle(b *collateral.Bundle) Option { return func(c *config) { c.bundle = b } }
