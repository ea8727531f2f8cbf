package server

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blindfold.toml")
	if err := os.WriteFile(path, []byte(`
simulation = true
max_model_bytes = "2MiB"
max_input_bytes = 4096
shutdown_timeout = "5s"
untrusted_addr = "127.0.0.1:7000"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BLINDFOLD_MAX_INPUT_BYTES": "8KiB", "BLINDFOLD_LOG_LEVEL": "debug"}
	cfg, err := LoadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--untrusted-addr", "127.0.0.1:7001", "--max-models", "3"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFlags(fs, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"simulation from file", cfg.Simulation, true},
		{"size unit from file", cfg.MaxModelBytes, ByteSize(2 << 20)},
		{"env overrides file", cfg.MaxInputBytes, ByteSize(8 << 10)},
		{"env sets level", cfg.LogLevel, "debug"},
		{"flag overrides file", cfg.UntrustedAddr, "127.0.0.1:7001"},
		{"flag sets int", cfg.MaxModels, 3},
		{"duration from file", time.Duration(cfg.ShutdownTimeout), 5 * time.Second},
		{"default kept", cfg.AttestedAddr, "127.0.0.1:50051"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "simulaton = true\n", nil, `unknown key "simulaton" (did you mean "simulation"?)`},
		{"bad size", "max_model_bytes = \"lots\"\n", nil, "not a size"},
		{"bad toml", "max_models = [\n", nil, "config file"},
		{"bad env int", "", map[string]string{"BLINDFOLD_MAX_MODELS": "many"}, "BLINDFOLD_MAX_MODELS"},
		{"bad env bool", "", map[string]string{"BLINDFOLD_SIMULATION": "yes please"}, "not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"zero models", func(c *Config) { c.MaxModels = 0 }, "max_models"},
		{"total below one", func(c *Config) { c.MaxTotalModelBytes = 10 }, "max_total_model_bytes"},
		{"cert without key", func(c *Config) { c.HostCert = "x.pem" }, "host_key"},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"bad format", func(c *Config) { c.LogFormat = "xml" }, "log_format"},
		{"huge reply", func(c *Config) { c.MaxReplyBytes = 3 << 30 }, "max_reply_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth_keys") {
		t.Fatalf("hardware-mode defaults without token keys: %v, want an auth_keys error (fail closed)", err)
	}
	c.Simulation = true
	if err := c.Validate(); err != nil {
		t.Fatalf("simulation defaults do not validate: %v", err)
	}
	if c.AuthMode() != AuthNone {
		t.Fatalf("simulation auth mode %q, want none", c.AuthMode())
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1024", 1024, true}, {"1KiB", 1024, true}, {"256MiB", 256 << 20, true}, {"1 GiB", 1 << 30, true},
		{"2gb", 2e9, true}, {"10B", 10, true}, {"-1", 0, false}, {"1.5GiB", 0, false}, {"", 0, false}, {"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && b != tt.want) {
			t.Errorf("ByteSize(%q) = %d, %v; want %d, ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
	if s := ByteSize(256 << 20).String(); s != "256MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestPCCSHeader(t *testing.T) {
	c := DefaultConfig()
	c.Simulation = true
	for _, tc := range []struct {
		in, name, value string
		ok              bool
	}{
		{"Metadata: true", "Metadata", "true", true},
		{"metadata:true", "Metadata", "true", true},
		{"no colon", "", "", false},
		{": empty name", "", "", false},
		{"Bad Name: x", "", "", false},
	} {
		c.PCCSHeader = tc.in
		n, v, err := c.pccsHeader()
		if (err == nil) != tc.ok || n != tc.name || v != tc.value {
			t.Errorf("pccsHeader(%q) = %q, %q, %v", tc.in, n, v, err)
		}
		if verr := c.Validate(); (verr == nil) != tc.ok {
			t.Errorf("Validate with pccs_header %q: %v", tc.in, verr)
		}
	}
}
