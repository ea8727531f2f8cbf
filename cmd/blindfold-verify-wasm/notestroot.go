//go:build js && wasm && !blindfold_testroot

package main

import "crypto/x509"

// testBuild is false: this build verifies against the pinned vendor roots
// only.
const testBuild = false

// testRoot returns no test root: the shipped verifier never accepts one.
func testRoot() (*x509.Certificate, error) { return nil, nil }
