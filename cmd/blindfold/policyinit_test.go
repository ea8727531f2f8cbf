package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/policy"
)

func TestPolicyInit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "policy.toml")
	mr := strings.Repeat("5a", 32)
	if code, _, errOut := runCLI(t, "policy", "init", "--mrenclave", mr, "-o", out); code != exitOK {
		t.Fatalf("init: exit %d %s", code, errOut)
	}
	p, err := policy.Load(out)
	if err != nil {
		t.Fatalf("the template does not load: %v", err)
	}
	if p.BlindAI05 || p.AllowDebug || len(p.AcceptedTCBStatuses) != 1 || string(p.AcceptedTCBStatuses[0]) != "UpToDate" || len(p.AcceptedAdvisoryIDs) != 0 {
		t.Errorf("template policy: %+v", p)
	}
	if code, _, errOut := runCLI(t, "policy", "init", "--mrenclave", mr, "-o", out); code != exitIO || !strings.Contains(errOut, "--force") {
		t.Errorf("init over an existing file: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "policy", "init", "--mrenclave", "abc"); code != exitUsage || !strings.Contains(errOut, "64 hex digits") {
		t.Errorf("short MRENCLAVE: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "policy", "init"); code != exitUsage {
		t.Errorf("init without a source: exit %d", code)
	}
	if code, stdout, errOut := runCLI(t, "policy", "show", out); code != exitOK || !strings.Contains(stdout, `mr_enclave = "`+mr+`"`) {
		t.Errorf("show: exit %d %s", code, errOut)
	}

	// show names every missing key at once.
	partial := filepath.Join(dir, "partial.toml")
	if err := os.WriteFile(partial, []byte("mr_enclave = \""+mr+"\"\nallow_debug = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "policy", "show", partial)
	for _, k := range policyRequiredKeys[:6] {
		if !strings.Contains(errOut, k) {
			t.Errorf("show of a partial policy does not name %s: exit %d %s", k, code, errOut)
		}
	}

	// Help writes -o with one dash.
	if _, stdout, _ := runCLI(t, "policy", "from-sigstruct", "--help"); !strings.Contains(stdout, "\n  -o FILE\n") || strings.Contains(stdout, "--o ") {
		t.Errorf("from-sigstruct help:\n%s", stdout)
	}
}
