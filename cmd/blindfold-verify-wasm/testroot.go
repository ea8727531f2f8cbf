//go:build js && wasm && blindfold_testroot

package main

import (
	"crypto/x509"
	"errors"
	"syscall/js"

	"github.com/blindfold-ai/blindfold/identity"
)

// testBuild is true: this build, for the page's tests only, verifies SGX
// and TDX evidence against the test root CA that the page's global
// blindfoldTestRootPEM holds, instead of Intel's. Evidence that chains to
// it proves nothing.
const testBuild = true

// testRootMarker is in this build only; the tests check that the shipped
// build does not contain it.
const testRootMarker = "blindfold_testroot build: verifying against a TEST root CA"

func testRoot() (*x509.Certificate, error) {
	v := js.Global().Get("blindfoldTestRootPEM")
	if v.Type() != js.TypeString || v.String() == "" {
		return nil, errors.New(testRootMarker + ", but blindfoldTestRootPEM holds none")
	}
	return identity.ParseCertificatePEM([]byte(v.String()))
}
