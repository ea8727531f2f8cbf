package deploy

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/server"
)

// TestCVMConfigs: the example configurations of deploy/cvm load and
// validate.
func TestCVMConfigs(t *testing.T) {
	for file, tee := range map[string]string{"cvm/blindfold-tdx.toml": server.TEETDX, "cvm/blindfold-snp.toml": server.TEESNP} {
		cfg, err := server.LoadConfig(file, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if cfg.TEE != tee || cfg.Simulation {
			t.Fatalf("%s: tee %q, simulation %t", file, cfg.TEE, cfg.Simulation)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
}

// fakeTool writes an executable shell script named name into dir.
func fakeTool(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyValuesScript runs deploy/cvm/policy-values.sh with stand-ins
// for the measuring tools and checks that what it prints is a policy that
// pins exactly their values.
func TestPolicyValuesScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			t.Fatal("no bash")
		}
		t.Skip("no bash")
	}
	dir := t.TempDir()
	snpM := strings.Repeat("a1", 48)
	mrtd, rtmr1, rtmr2 := strings.Repeat("b2", 48), strings.Repeat("c3", 48), strings.Repeat("d4", 48)
	fakeTool(t, dir, "sev-snp-measure", "echo "+strings.ToUpper(snpM)+"\n")
	fakeTool(t, dir, "measure-td", "echo 'MRTD: "+mrtd+"'\necho 'RTMR0: "+strings.Repeat("00", 48)+"'\necho 'RTMR1: "+rtmr1+"'\necho 'RTMR2: "+rtmr2+"'\n")
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	run := func(args ...string) *policy.Policy {
		t.Helper()
		cmd := exec.Command("bash", append([]string{"cvm/policy-values.sh"}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("policy-values.sh %v: %v", args, err)
		}
		p, err := policy.Parse(out)
		if err != nil {
			t.Fatalf("policy-values.sh %v printed a policy that does not parse: %v\n%s", args, err, out)
		}
		return p
	}
	p := run("snp", "--ovmf", "OVMF.fd", "--vcpus", "2", "--vcpu-type", "EPYC-v4")
	if p.SNP == nil || len(p.SNP.Measurement) != 1 || hex.EncodeToString(p.SNP.Measurement[0][:]) != snpM || p.HasSGX() || p.TDX != nil {
		t.Fatalf("snp policy %+v", p.SNP)
	}
	p = run("tdx", "measure-td")
	if p.TDX == nil || hex.EncodeToString(p.TDX.MRTD[0][:]) != mrtd || hex.EncodeToString(p.TDX.RTMR[1][0][:]) != rtmr1 ||
		hex.EncodeToString(p.TDX.RTMR[2][0][:]) != rtmr2 || len(p.TDX.RTMR[0]) != 0 || len(p.TDX.RTMR[3]) != 0 {
		t.Fatalf("tdx policy %+v", p.TDX)
	}
	// A tool that is not installed: exit status 2.
	cmd := exec.Command("bash", "cvm/policy-values.sh", "tdx", "no-such-measuring-tool")
	cmd.Env = env
	if err := cmd.Run(); err == nil {
		t.Fatal("a missing tool did not fail")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("a missing tool: %v, want exit status 2", err)
	}
}
