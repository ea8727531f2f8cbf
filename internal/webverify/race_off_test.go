//go:build !race

package webverify_test

const raceEnabled = false
