//go:build race

package sgx_test

// raceEnabled: the race detector slows x509 parsing and ECDSA about tenfold,
// so the every-byte flip tests run in scripts/test.sh's step without it.
const raceEnabled = true
