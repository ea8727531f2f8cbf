package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/proof"
)

// maxCollateralFile bounds a --collateral file: collateral is a few tens
// of KiB.
const maxCollateralFile = 4 << 20

// readCollateralFile reads the JSON collateral of --collateral: either the
// SgxCollateral message of the untrusted port in protobuf JSON (keys such
// as "tcbInfo" or "tcb_info", holding the PCS responses), or the dcap-qvl
// shape (bodies and signatures apart, recognised by "tcb_info_signature").
// Nothing in it is trusted: the verifier checks every signature.
func readCollateralFile(path string) (*sgx.Collateral, error) {
	b, err := readSmallFile(path, maxCollateralFile)
	if err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--collateral: %w", err))
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--collateral %s: not a JSON object: %w", path, err))
	}
	if _, ok := keys["tcb_info_signature"]; ok {
		c, err := sgx.CollateralFromDCAPQVLJSON(b)
		if err != nil {
			return nil, withCode(exitIO, fmt.Errorf("--collateral %s: %w", path, err))
		}
		return c, nil
	}
	var m untrusted.SgxCollateral
	if err := protojson.Unmarshal(bytes.TrimSpace(b), &m); err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--collateral %s: neither the SgxCollateral JSON nor the dcap-qvl collateral shape: %w", path, err))
	}
	return sgx.CollateralFromProto(&m), nil
}

// fetchCollateral fetches the collateral of the quote's platform (FMSPC and
// PCK CA type, from the PCK certificate in the quote) from a PCCS or PCS.
func fetchCollateral(ctx context.Context, baseURL string, quote []byte, now time.Time) (*sgx.Collateral, error) {
	q, err := abi.ParseQuote(quote)
	if err != nil {
		return nil, withCode(exitProof, fmt.Errorf("--pccs-url: the proof's quote does not parse: %w", err))
	}
	platform, err := pccs.QuotePlatform(q)
	if err != nil {
		return nil, withCode(exitProof, fmt.Errorf("--pccs-url: %w", err))
	}
	c := &pccs.Client{BaseURL: baseURL}
	f, err := c.Fetch(ctx, platform, now)
	if err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--pccs-url: fetching the collateral of %s: %w", platform, err))
	}
	return f.Collateral, nil
}

// readBundle reads a --collateral-bundle file.
func readBundle(path string) (*collateral.Bundle, error) {
	b, err := collateral.ReadFile(path)
	if err != nil {
		return nil, withCode(exitIO, fmt.Errorf("--collateral-bundle: %w", err))
	}
	return b, nil
}

// bundleCollateral returns the collateral that the bundle at path holds
// for the platform of a hardware proof's quote, the whole bundle verified
// at the verification time of opts, and the words that name its source.
func bundleCollateral(path string, p *prooffiles.ResponseProof, opts proof.VerifyOptions) (*sgx.Collateral, string, error) {
	b, err := readBundle(path)
	if err != nil {
		return nil, "", err
	}
	ev, _, err := proof.Evidence(p)
	if err != nil {
		return nil, "", withCode(exitProof, fmt.Errorf("--collateral-bundle: the proof's evidence: %w", err))
	}
	c, err := b.ForQuote(ev.Raw, sgx.Options{Now: opts.Now, TestRoot: opts.TestRoot})
	if err != nil {
		return nil, "", withCode(exitProof, fmt.Errorf("--collateral-bundle %s: %w", path, err))
	}
	source := "from the bundle " + path
	if b.Source != "" && !b.FetchedAt.IsZero() {
		source += fmt.Sprintf(" (fetched from %s at %s, by its own account)", b.Source, b.FetchedAt.UTC().Format(time.RFC3339))
	}
	return c, source, nil
}
