//go:build !race

package sgx_test

const raceEnabled = false
