//go:build cgo

package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/cluster"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// lockedLog collects a server's logs for the test to read.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestClusterHardwareBehindLoadBalancer: three hardware-mode replicas
// whose TEE is the synthetic SGX PKI (one bootstraps, two join, each
// proving itself with a quote bound to the join connection) behind HAProxy.
// Clients verify evidence against the policy through the balancer,
// whichever replica answers; models uploaded through one connection run
// and delete through others; a replica that stops abruptly loses no
// acknowledged model; replicas with another MRENCLAVE are refused.
func TestClusterHardwareBehindLoadBalancer(t *testing.T) {
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	polFile := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(polFile, []byte(attesttest.PolicyTOML(attesttest.MREnclave())), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	hostCert, hostKey := filepath.Join(dir, "host.pem"), filepath.Join(dir, "host.key")
	if _, err := identity.GenerateHostCertificate(hostCert, hostKey); err != nil {
		t.Fatal(err)
	}
	clusterCfg := func(role string, peers ...string) testserver.Option {
		return func(c *server.Config) {
			c.Cluster, c.ClusterPeers, c.ClusterAddr = role, peers, "127.0.0.1:0"
			c.ClusterPolicy, c.ClusterModelsDir = polFile, shared
			c.ClusterJoinTimeout = server.Duration(5 * time.Second)
			c.HostCert, c.HostKey = hostCert, hostKey
		}
	}
	setup := func(o *server.Options) {
		o.ClusterTestRoot = pki.Root
		o.ClusterNow = func() time.Time { return hwNow }
	}
	var logs [3]*lockedLog
	var reps [3]*testserver.Server
	for i := range reps {
		logs[i] = &lockedLog{}
		opt := clusterCfg(server.ClusterBootstrap)
		if i > 0 {
			opt = clusterCfg(server.ClusterJoin, reps[0].ClusterAddr())
		}
		reps[i] = testserver.StartHardwareWith(t, slog.New(slog.NewTextHandler(logs[i], nil)), attesttest.NewAttester(pki, hwNow), setup, opt)
	}
	for _, r := range reps[1:] {
		if !bytes.Equal(r.AttestedCertificateDER(), reps[0].AttestedCertificateDER()) {
			t.Fatal("a joined replica serves another attested certificate")
		}
	}
	var untr, att []string
	for _, r := range reps {
		untr = append(untr, r.UntrustedAddr)
		att = append(att, r.AttestedAddr)
	}
	lbUntrusted, lbAttested := testserver.HAProxy(t, untr, att)
	ctx := context.Background()
	connect := func() (*client.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return client.Connect(cctx, lbUntrusted,
			client.WithHostCertificateFile(hostCert),
			client.WithAttestedPort(lbAttested),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			client.WithPolicy(attesttest.Policy(attesttest.MREnclave())),
			client.WithTestRootCA(pki.Root),
			client.WithTime(func() time.Time { return hwNow }),
			client.WithNonce([]byte("fresh evidence from whichever replica answers")))
	}
	mlp, err := onnxgen.MLP()
	if err != nil {
		t.Fatal(err)
	}
	input := func(i int) (tensor.Tensor, []float32) {
		v := []float32{float32(i), 2, -1, 0.5}
		x, _ := tensor.New("x", []int64{1, 4}, v)
		return x, onnxgen.MLPWeights().Forward(v, 1)
	}
	check := func(c *client.Client, id string, i int) error {
		x, want := input(i)
		out, err := c.Run(ctx, id, []tensor.Tensor{x}, client.Sign())
		if err != nil {
			return err
		}
		got, err := tensor.Values[float32](out.Outputs[0])
		if err != nil {
			return err
		}
		if !out.Signed || len(got) != len(want) {
			return fmt.Errorf("signed %v, %d outputs", out.Signed, len(got))
		}
		for k := range got {
			if math.Abs(float64(got[k]-want[k])) > 1e-4 {
				return fmt.Errorf("output %d is %v, want %v", k, got[k], want[k])
			}
		}
		return nil
	}
	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("hw-%d", i)
			step := func(f func(c *client.Client) error) error {
				c, err := connect()
				if err != nil {
					return err
				}
				defer c.Close()
				return f(c)
			}
			err := step(func(c *client.Client) error {
				_, err := c.UploadModel(ctx, mlp, client.WithModelID(id), client.Sign())
				return err
			})
			for range 2 {
				if err == nil {
					err = step(func(c *client.Client) error { return check(c, id, i) })
				}
			}
			if err == nil {
				err = step(func(c *client.Client) error { return c.DeleteModel(ctx, id) })
			}
			for range 3 {
				if err == nil {
					err = step(func(c *client.Client) error {
						x, _ := input(i)
						if _, err := c.Run(ctx, id, []tensor.Tensor{x}); status.Code(err) != codes.NotFound {
							return fmt.Errorf("run after the delete: %v, want NOT_FOUND", err)
						}
						return nil
					})
				}
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	picked := 0
	for _, l := range logs {
		if strings.Contains(l.String(), "cluster: shared model added") {
			picked++
		}
	}
	if picked < 2 {
		t.Fatalf("only %d replicas ran a model uploaded through another", picked)
	}

	// Acknowledged models survive a replica that stops abruptly (its
	// connections cut, nothing flushed after the acknowledgements).
	c, err := connect()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := c.UploadModel(ctx, mlp, client.WithModelID(fmt.Sprintf("keep-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	cut, cancel := context.WithCancel(ctx)
	cancel()
	reps[1].Shutdown(cut)
	time.Sleep(time.Second) // HAProxy's health check takes it out
	for i := range 6 {
		c, err := connect()
		if err != nil {
			t.Fatal(err)
		}
		if err := check(c, fmt.Sprintf("keep-%d", i), i); err != nil {
			t.Errorf("keep-%d after a replica stopped: %v", i, err)
		}
		c.Close()
	}

	// A replica with another MRENCLAVE, held to a policy that accepts it,
	// is refused by its peers and never serves.
	otherMR := attesttest.MREnclave()
	otherMR[0] ^= 0xff
	otherPol := filepath.Join(dir, "other.toml")
	os.WriteFile(otherPol, []byte(attesttest.PolicyTOML(otherMR)), 0o600)
	other := attesttest.NewAttester(pki, hwNow)
	other.Configure = func(b *sgxtest.Builder) { b.ReportBody.MRENCLAVE = otherMR }
	for _, tc := range []struct {
		name string
		pol  string
	}{{"other MRENCLAVE, other policy", otherPol}, {"other MRENCLAVE, the cluster's policy", polFile}} {
		cfg, rt := testserver.Prepare(t, true, clusterCfg(server.ClusterJoin, reps[0].ClusterAddr(), reps[2].ClusterAddr()), func(c *server.Config) {
			c.ClusterPolicy = tc.pol
			c.ClusterJoinTimeout = server.Duration(2 * time.Second)
		})
		so := server.Options{Config: cfg, Runtime: rt, Attester: other, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		setup(&so)
		srv, err := server.New(so)
		if err == nil {
			srv.Shutdown(ctx)
			t.Fatalf("%s: the replica started", tc.name)
		}
		if tc.pol == otherPol && !errors.Is(err, cluster.ErrRefused) {
			t.Fatalf("%s: %v, want a refusal", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if !strings.Contains(logs[0].String(), "cluster join refused") {
		t.Fatalf("the peer did not log the refusal:\n%s", logs[0].String())
	}
	if !strings.Contains(logs[0].String(), "mr_enclave") {
		t.Fatalf("the refusal does not say the measurement differs:\n%s", logs[0].String())
	}
}
