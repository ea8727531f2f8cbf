package main

import (
	"strings"
	"testing"
)

// TestShown: what the untrusted port reports is printed as is only when it
// is short printable text; control sequences come out escaped.
func TestShown(t *testing.T) {
	long := strings.Repeat("v", maxShown+1)
	for _, tc := range []struct{ in, want string }{
		{"0.5.2", "0.5.2"},
		{"sgx-dcap", "sgx-dcap"},
		{"\x1b]0;owned\x07", `"\x1b]0;owned\a"`},
		{"ok\nreplica: forged", `"ok\nreplica: forged"`},
		{long, `"` + long[:maxShown] + `"…`},
	} {
		if got := shown(tc.in); got != tc.want {
			t.Errorf("shown(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
