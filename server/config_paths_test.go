package server

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPathsRelativeToFile: relative paths in a configuration file are
// resolved against the file's folder, wherever the server starts; those
// from flags or the environment against the current folder.
func TestConfigPathsRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "blindfold.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`
state_dir = "state"
host_cert = "../certs/host_server.pem"
host_key = "/abs/host_server.key"
auth_keys = ["keys/a.pem", "/abs/b.pem"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Start from elsewhere, with a relative path to the file.
	t.Chdir(dir)
	env := map[string]string{"BLINDFOLD_SEALING_KEY_FILE": "sealing.key"}
	cfg, err := LoadConfig(filepath.Join("conf", "blindfold.toml"), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--work-dir", "empty"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFlags(fs, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.MakePathsAbsolute(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	for _, c := range []struct{ name, got, want string }{
		{"state_dir from the file", cfg.StateDir, filepath.Join(conf, "state")},
		{"host_cert from the file, going up", cfg.HostCert, filepath.Join(dir, "certs", "host_server.pem")},
		{"absolute path kept", cfg.HostKey, "/abs/host_server.key"},
		{"list entry from the file", cfg.AuthKeys[0], filepath.Join(conf, "keys", "a.pem")},
		{"absolute list entry kept", cfg.AuthKeys[1], "/abs/b.pem"},
		{"environment: current folder", cfg.SealingKeyFile, filepath.Join(dir, "sealing.key")},
		{"flag: current folder", cfg.WorkDir, filepath.Join(dir, "empty")},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestUnknownKeySuggestions(t *testing.T) {
	for key, want := range map[string]string{
		"max_model_byte":   `unknown key "max_model_byte" (did you mean "max_model_bytes"?)`,
		"auth_key":         `unknown key "auth_key" (did you mean "auth_keys"?)`,
		"untrusted_adress": `unknown key "untrusted_adress" (did you mean "untrusted_addr"?)`,
		"completely_else":  `unknown key "completely_else"`,
	} {
		if got := unknownKey(key); got != want {
			t.Errorf("unknownKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestSettingsHaveTypesAndDefaults(t *testing.T) {
	byKey := map[string]Setting{}
	for _, s := range Settings() {
		byKey[s.Key] = s
	}
	for key, want := range map[string][2]string{
		"max_model_bytes":  {"size", "1GiB"},
		"shutdown_timeout": {"duration", "30s"},
		"simulation":       {"bool", "false"},
		"max_models":       {"int", "256"},
		"auth_keys":        {"list", ""},
		"rate_limit":       {"number", "0"},
		"untrusted_addr":   {"string", "127.0.0.1:50052"},
	} {
		if s := byKey[key]; s.Type != want[0] || s.Default != want[1] {
			t.Errorf("%s: type %q default %q, want %q %q", key, s.Type, s.Default, want[0], want[1])
		}
	}
	// A flag is checked as its type when given.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--max-models", "many"}); err == nil || !strings.Contains(err.Error(), "not a whole number") {
		t.Errorf("--max-models many: %v", err)
	}
	if err := fs.Parse([]string{"--simulation"}); err != nil {
		t.Errorf("bare --simulation: %v", err)
	}
}
