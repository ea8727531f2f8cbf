package server

import (
	"strings"
	"testing"
)

func TestClusterSettingsValidated(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.StateDir = t.TempDir()
		c.Simulation = true
		c.Cluster = ClusterJoin
		c.ClusterPeers = []string{"peer:50053"}
		c.ClusterModelsDir = t.TempDir()
		c.ClusterSecretFile = "secret"
		return c
	}
	if c := base(); c.Validate() != nil {
		t.Fatalf("a complete simulation joiner: %v", c.Validate())
	}
	for _, tc := range []struct {
		name, want string
		change     func(*Config)
	}{
		{"unknown role", "cluster", func(c *Config) { c.Cluster = "leader" }},
		{"join without peers", "cluster_peers", func(c *Config) { c.ClusterPeers = nil }},
		{"no shared folder", "cluster_models_dir", func(c *Config) { c.ClusterModelsDir = "" }},
		{"simulation without a secret", "cluster_secret_file", func(c *Config) { c.ClusterSecretFile = "" }},
		{"simulation with a policy", "cluster_policy", func(c *Config) { c.ClusterPolicy = "policy.toml" }},
		{"hardware without a policy", "cluster_policy", func(c *Config) {
			c.Simulation, c.ClusterSecretFile = false, ""
			c.TEE, c.PCCSURL = TEESGXGramine, "https://pccs.example"
		}},
		{"hardware with a join secret", "cluster_secret_file", func(c *Config) {
			c.Simulation, c.ClusterPolicy = false, "policy.toml"
			c.TEE, c.PCCSURL = TEESGXGramine, "https://pccs.example"
		}},
		{"a joiner that inherits", "cluster_inherit", func(c *Config) { c.ClusterInherit = []string{"old:50053"} }},
		{"no join timeout", "cluster_join_timeout", func(c *Config) { c.ClusterJoinTimeout = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), "config "+tc.want+":") {
				t.Fatalf("Validate: %v; want an error about %s", err, tc.want)
			}
		})
	}
}
