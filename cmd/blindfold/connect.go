package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/policy"
)

// connFlags are the flags of every networked command.
type connFlags struct {
	hostCert     string
	tofu         bool
	simulation   bool
	attestedPort int
	timeout      time.Duration
	token        string
	policy       string
	testRootCA   string
	nonce        []byte         // set by commands that ask for fresh evidence
	loaded       *policy.Policy // the --policy file, once connect has read it
}

func addConnFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{}
	fs.StringVar(&c.hostCert, "host-cert", "", "trust the untrusted port through the operator's certificate `FILE` (host_server.pem)")
	fs.BoolVar(&c.tofu, "insecure-trust-on-first-use", false, "INSECURE: trust whatever certificate the untrusted port presents (prints its fingerprint)")
	fs.BoolVar(&c.simulation, "simulation", false, "UNSAFE: accept a simulation-mode server (no TEE; protects nothing; for testing only); not with --policy")
	fs.IntVar(&c.attestedPort, "attested-port", client.DefaultAttestedPort, "attested port of the server (not derived from ADDR's port)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "time limit for the whole command (e.g. 30s, 5m)")
	fs.StringVar(&c.policy, "policy", "", "verify the server's hardware evidence against the enclave policy `FILE` (policy.toml)")
	fs.StringVar(&c.testRootCA, "insecure-test-root-ca", "", "FOR TESTS ONLY: verify evidence against this test root CA `FILE` (PEM) instead of Intel's; proves nothing")
	fs.StringVar(&c.token, "token", "", "bearer `JWT` for servers that require authentication (default: $BLINDFOLD_TOKEN; prefer the variable, as flags show in process lists)")
	return c
}

const simulationBanner = `
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  WARNING: SIMULATION MODE (--simulation). THIS PROTECTS NOTHING.     !!
!!  There is no TEE and no attestation. The server's operator can read  !!
!!  every model and input you send, and "signed" results prove nothing  !!
!!  about where they were computed. Use it for testing only.            !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

`

const tofuBanner = `WARNING: --insecure-trust-on-first-use: the untrusted port's certificate is
not checked against the operator's. Compare the fingerprint printed below
with the operator's host_server.pem (openssl x509 -fingerprint -sha256).
`

// connect validates the connection flags and connects. The returned cancel
// releases the command's timeout.
func (c *connFlags) connect(e *env, addr string) (*client.Client, context.Context, context.CancelFunc, error) {
	if c.policy != "" && c.simulation {
		return nil, nil, nil, usageErrorf("--policy and --simulation exclude each other: with a policy, a simulation server is never accepted; pass --simulation alone to accept one (it protects nothing)")
	}
	if c.hostCert != "" && c.tofu {
		return nil, nil, nil, usageErrorf("--host-cert and --insecure-trust-on-first-use exclude each other; pass one")
	}
	if c.hostCert == "" && !c.tofu {
		return nil, nil, nil, usageErrorf("no way to trust the server: pass --host-cert FILE (the operator's host_server.pem) or, insecurely, --insecure-trust-on-first-use")
	}
	if c.timeout <= 0 {
		return nil, nil, nil, usageErrorf("--timeout must be positive, got %s", c.timeout)
	}
	if c.attestedPort < 1 || c.attestedPort > 65535 {
		return nil, nil, nil, usageErrorf("--attested-port must be from 1 to 65535, got %d", c.attestedPort)
	}
	if _, _, err := client.SplitAddr(addr); err != nil {
		return nil, nil, nil, withCode(exitUsage, err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []client.Option{client.WithAttestedPort(c.attestedPort), client.WithLogger(log)}
	if c.hostCert != "" {
		opts = append(opts, client.WithHostCertificateFile(c.hostCert))
	} else {
		fmt.Fprint(e.stderr, tofuBanner)
		opts = append(opts, client.WithInsecureTrustOnFirstUse())
	}
	if c.policy != "" {
		p, err := loadPolicy(e, c.policy)
		if err != nil {
			return nil, nil, nil, err
		}
		c.loaded = p
		opts = append(opts, client.WithPolicy(p))
	}
	if c.testRootCA != "" {
		root, err := loadTestRoot(c.testRootCA)
		if err != nil {
			return nil, nil, nil, err
		}
		fmt.Fprint(e.stderr, testRootBanner)
		opts = append(opts, client.WithTestRootCA(root))
	}
	if len(c.nonce) > 0 {
		opts = append(opts, client.WithNonce(c.nonce))
	}
	if c.simulation {
		fmt.Fprint(e.stderr, simulationBanner)
		opts = append(opts, client.WithSimulation())
	}
	tok := c.token
	if tok == "" {
		tok = os.Getenv("BLINDFOLD_TOKEN")
	}
	if tok = strings.TrimSpace(tok); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	ctx, cancel := context.WithTimeout(e.ctx, c.timeout)
	cl, err := client.Connect(ctx, addr, opts...)
	if err != nil {
		cancel()
		var ce *client.ConnectError
		if errors.Is(err, client.ErrSimulationServer) {
			err = fmt.Errorf("%w\n(the server runs in simulation mode: pass --simulation, without --policy, to accept it; it protects nothing)", err)
		}
		if errors.As(err, &ce) && ce.Step == client.StepAttestedPort {
			err = fmt.Errorf("%w\n(the attested port is %d, from --attested-port (default %d), whatever the port in %s; pass --attested-port if the server listens elsewhere)", err, c.attestedPort, client.DefaultAttestedPort, addr)
		}
		return nil, nil, nil, err
	}
	return cl, ctx, func() { cl.Close(); cancel() }, nil
}
