// Package deploy holds no Go code: its tests check the deployment files
// (the Gramine manifest template) so that they stay usable.
package deploy

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/policy"
)

// render substitutes the template's Jinja-style placeholders with test
// values (what gramine-manifest does with -D definitions).
func render(t *testing.T, tmpl string, vars map[string]string) string {
	t.Helper()
	re := regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)
	var missing []string
	out := re.ReplaceAllStringFunc(tmpl, func(m string) string {
		expr := re.FindStringSubmatch(m)[1]
		if strings.Contains(expr, " if ") {
			return "false" // conditional expressions default to their else branch
		}
		v, ok := vars[expr]
		if !ok {
			missing = append(missing, expr)
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("template placeholders without a test value: %v", missing)
	}
	return out
}

func TestManifestTemplate(t *testing.T) {
	b, err := os.ReadFile("gramine/blindfold-server.manifest.template")
	if err != nil {
		t.Fatal(err)
	}
	text := render(t, string(b), map[string]string{
		"log_level": "error", "gramine.libos": "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so",
		"gramine.runtimedir()": "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc", "arch_libdir": "/lib/x86_64-linux-gnu",
		"blindfold_dir": "/opt/blindfold", "state_dir": "/var/lib/blindfold", "shared_dir": "/srv/blindfold-shared", "enclave_size": "8G",
		"max_threads": "128", "go_max_procs": "8", "isvprodid": "1", "isvsvn": "1",
	})
	var m struct {
		Libos struct {
			Entrypoint string `toml:"entrypoint"`
		} `toml:"libos"`
		Loader struct {
			Argv []string       `toml:"argv"`
			Env  map[string]any `toml:"env"`
		} `toml:"loader"`
		FS struct {
			Mounts []map[string]string `toml:"mounts"`
		} `toml:"fs"`
		SGX struct {
			Debug             bool     `toml:"debug"`
			EnclaveSize       string   `toml:"enclave_size"`
			MaxThreads        int      `toml:"max_threads"`
			RemoteAttestation string   `toml:"remote_attestation"`
			TrustedFiles      []string `toml:"trusted_files"`
			AllowedFiles      []string `toml:"allowed_files"`
		} `toml:"sgx"`
	}
	if _, err := toml.Decode(text, &m); err != nil {
		t.Fatalf("rendered manifest is not TOML: %v\n%s", err, text)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"libos.entrypoint is the server", m.Libos.Entrypoint == "/blindfold/blindfold-server"},
		{"sgx.remote_attestation is dcap", m.SGX.RemoteAttestation == "dcap"},
		{"sgx.debug is false", !m.SGX.Debug},
		{"sgx.max_threads >= 64", m.SGX.MaxThreads >= 64},
		{"sgx.enclave_size set", m.SGX.EnclaveSize != ""},
		{"the server binary is trusted", contains(m.SGX.TrustedFiles, "file:/opt/blindfold/blindfold-server")},
		{"ONNX Runtime is trusted", contains(m.SGX.TrustedFiles, "file:/opt/blindfold/lib/libonnxruntime.so.1")},
		{"the configuration is trusted", contains(m.SGX.TrustedFiles, "file:/opt/blindfold/blindfold.toml")},
		{"the cluster policy is trusted", contains(m.SGX.TrustedFiles, "file:/opt/blindfold/cluster-policy.toml")},
		{"the configuration is given by the manifest", strings.Join(m.Loader.Argv, " ") == "blindfold-server --config /blindfold/blindfold.toml"},
		{"ONNX Runtime path in the environment", m.Loader.Env["BLINDFOLD_ONNXRUNTIME_LIB"] == "/blindfold/lib/libonnxruntime.so.1"},
		{"the binary is not an allowed (unmeasured) file", !contains(m.SGX.AllowedFiles, "file:/opt/blindfold/blindfold-server")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("manifest: %s", c.what)
		}
	}
	// The host passes exactly one variable in: the cluster role, which
	// cannot weaken anything (see the manifest's comment). Any other value
	// is fixed by the manifest.
	for k, v := range m.Loader.Env {
		if _, fixed := v.(string); fixed {
			continue
		}
		if k != "BLINDFOLD_CLUSTER" || fmt.Sprint(v) != "map[passthrough:true]" {
			t.Errorf("loader.env.%s = %v: only BLINDFOLD_CLUSTER may come from the host", k, v)
		}
	}
	if _, ok := m.Loader.Env["BLINDFOLD_CLUSTER"]; !ok {
		t.Error("loader.env.BLINDFOLD_CLUSTER is not passed through: Kubernetes cannot give replicas their cluster role")
	}
	cfg, err := os.ReadFile("gramine/blindfold.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tee = "sgx-gramine"`, `sealing_key_file = "/dev/attestation/keys/_sgx_mrenclave"`, `attestation_dir = "/dev/attestation"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("gramine/blindfold.toml lacks %s", want)
		}
	}

	// What the enclave can read outside its measured files: exactly these
	// host files, nothing secret. A new entry must be a deliberate change.
	wantAllowed := []string{
		"file:/etc/nsswitch.conf", "file:/etc/hosts", "file:/etc/resolv.conf", "file:/etc/ssl/certs/",
		"file:/var/lib/blindfold/", "file:/srv/blindfold-shared/",
	}
	if strings.Join(m.SGX.AllowedFiles, " ") != strings.Join(wantAllowed, " ") {
		t.Errorf("sgx.allowed_files = %q, want exactly %q", m.SGX.AllowedFiles, wantAllowed)
	}
	for _, f := range m.SGX.TrustedFiles {
		if strings.Contains(f, "/var/lib/blindfold") {
			t.Errorf("trusted file %s is in the host's state folder", f)
		}
	}
	// The server's work folder is in an in-enclave tmpfs, so the host
	// cannot put files in it.
	var server struct {
		WorkDir string `toml:"work_dir"`
	}
	if _, err := toml.Decode(string(cfg), &server); err != nil {
		t.Fatal(err)
	}
	tmpfs := ""
	for _, mnt := range m.FS.Mounts {
		if mnt["type"] == "tmpfs" && strings.HasPrefix(server.WorkDir, strings.TrimSuffix(mnt["path"], "/")+"/") {
			tmpfs = mnt["path"]
		}
	}
	if server.WorkDir == "" || tmpfs == "" {
		t.Errorf("work_dir %q in gramine/blindfold.toml is not inside a tmpfs mount of the manifest", server.WorkDir)
	}
	for _, mnt := range m.FS.Mounts {
		if mnt["type"] != "tmpfs" && mnt["path"] != tmpfs && strings.HasPrefix(server.WorkDir, strings.TrimSuffix(mnt["path"], "/")+"/") && len(mnt["path"]) > len(tmpfs) {
			t.Errorf("mount %s (from the host) covers work_dir %s", mnt["path"], server.WorkDir)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestClusterPolicy: the measured cluster policy names no measurement (it
// cannot hold its own enclave's), pins the enclave's own MRENCLAVE when read
// for a cluster, refuses debug enclaves, and accepts exactly the TCB
// statuses and advisories of the client policy written for this build.
func TestClusterPolicy(t *testing.T) {
	b, err := os.ReadFile("gramine/cluster-policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Parse(b); err == nil {
		t.Error("gramine/cluster-policy.toml parses as a complete policy: it must not name a measurement")
	}
	var mr [32]byte
	mr[0] = 0xab
	p, err := policy.ParseForEnclave(b, mr)
	if err != nil {
		t.Fatal(err)
	}
	if p.MREnclave == nil || *p.MREnclave != mr || p.MRSigner != nil || p.AllowDebug || p.BlindAI05 {
		t.Fatalf("cluster policy %+v: want the given MRENCLAVE only, debug refused", p)
	}
	if p.AttributesMaskFlags&2 == 0 || p.AttributesFlags&2 != 0 {
		t.Error("the cluster policy does not check that DEBUG is off")
	}
	// The client policy that `policy from-sigstruct` writes (its TCB rules
	// do not depend on the SIGSTRUCT).
	client := &policy.Policy{AcceptedTCBStatuses: []sgx.TCBStatus{sgx.UpToDate, sgx.SWHardeningNeeded}, AcceptedAdvisoryIDs: policy.BuildMitigatedAdvisoryIDs}
	if fmt.Sprint(p.AcceptedTCBStatuses) != fmt.Sprint(client.AcceptedTCBStatuses) || fmt.Sprint(p.AcceptedAdvisoryIDs) != fmt.Sprint(client.AcceptedAdvisoryIDs) {
		t.Errorf("cluster policy accepts %v with %v; the build's client policy %v with %v", p.AcceptedTCBStatuses, p.AcceptedAdvisoryIDs, client.AcceptedTCBStatuses, client.AcceptedAdvisoryIDs)
	}
}
