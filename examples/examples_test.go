// Package examples_test checks that the example files in examples/ load
// as the server and the client load them.
package examples_test

import (
	"testing"

	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/server"
)

func TestExampleServerConfigLoads(t *testing.T) {
	cfg, err := server.LoadConfig("blindfold.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Simulation || cfg.MaxModels != 8 {
		t.Errorf("simulation %t, max_models %d: the file was not applied", cfg.Simulation, cfg.MaxModels)
	}
}

func TestExamplePolicyLoads(t *testing.T) {
	p, err := policy.Load("policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.AllowDebug || p.BlindAI05 || p.MREnclave == nil {
		t.Errorf("policy: allow_debug %t, BlindAI 0.5 format %t, mr_enclave set %t", p.AllowDebug, p.BlindAI05, p.MREnclave != nil)
	}
}
