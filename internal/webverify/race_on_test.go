//go:build race

package webverify_test

// raceEnabled: the race detector slows verification about tenfold, so the
// every-byte flip test runs in scripts/test.sh's step without it.
const raceEnabled = true
