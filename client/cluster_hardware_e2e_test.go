//go:build cgo

package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/cluster"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/server/blindai06"
	"github.com/blindfold-ai/blindfold/tensor"
)

// replicaEnv, when set, makes this test binary a hardware-mode replica
// (runReplica, called from TestMain) instead of running tests: the
// hardware cluster test starts its replicas as separate processes so that
// it can kill one with SIGKILL. Its value is a replicaSpec in JSON.
const replicaEnv = "BLINDFOLD_TEST_HARDWARE_REPLICA"

// replicaSpec is what a replica process runs with.
type replicaSpec struct {
	// RootCert and RootKey are the synthetic SGX PKI's root (PEM files):
	// the replica's TEE double quotes under it, and it verifies its peers'
	// quotes against it.
	RootCert, RootKey string
	// MREnclave is the measurement its quotes carry (hex).
	MREnclave string
	// Role is server.ClusterBootstrap or server.ClusterJoin; Peers the
	// peers' cluster addresses for a join.
	Role  string
	Peers []string
	// Policy, ModelsDir, HostCert, HostKey, StateDir: the settings of the
	// same names.
	Policy, ModelsDir, HostCert, HostKey, StateDir string
}

// replicaReady is the line a replica prints on its standard output once
// it serves.
type replicaReady struct {
	Untrusted, Attested, Cluster string
	// CertSHA256 is the SHA-256 of the attested certificate it serves.
	CertSHA256 string
}

// runReplica runs a hardware-mode replica as the spec in replicaEnv says,
// until SIGTERM (or SIGKILL), and returns the process's exit code.
func runReplica(specJSON string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "replica: "+format+"\n", args...)
		return 3
	}
	var spec replicaSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fail("spec: %v", err)
	}
	pki, err := readPKI(spec.RootCert, spec.RootKey)
	if err != nil {
		return fail("%v", err)
	}
	mr, err := hex.DecodeString(spec.MREnclave)
	if err != nil || len(mr) != 32 {
		return fail("MRENCLAVE %q", spec.MREnclave)
	}
	att := attesttest.NewAttester(pki, hwNow)
	att.Configure = func(b *sgxtest.Builder) { copy(b.ReportBody.MRENCLAVE[:], mr) }
	att.Machine = &sgxtest.Machine{} // one platform per replica, as on hardware
	cfg := server.DefaultConfig()
	cfg.UntrustedAddr, cfg.AttestedAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.StateDir = spec.StateDir
	cfg.Auth = server.AuthNone
	cfg.SealingKeyFile = filepath.Join(spec.StateDir, "sealing.key")
	if err := os.WriteFile(cfg.SealingKeyFile, bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
		return fail("%v", err)
	}
	cfg.ShutdownTimeout = server.Duration(5 * time.Second)
	cfg.Cluster, cfg.ClusterPeers, cfg.ClusterAddr = spec.Role, spec.Peers, "127.0.0.1:0"
	cfg.ClusterPolicy, cfg.ClusterModelsDir = spec.Policy, spec.ModelsDir
	cfg.ClusterJoinTimeout = server.Duration(5 * time.Second)
	cfg.HostCert, cfg.HostKey = spec.HostCert, spec.HostKey
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		return fail("ONNX Runtime: %v", err)
	}
	srv, err := server.New(server.Options{
		Config: cfg, Runtime: rt, Attester: att, Frontends: []server.Frontend{blindai06.New()},
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
		ClusterTestRoot: pki.Root, ClusterNow: func() time.Time { return hwNow },
	})
	if err != nil {
		return fail("could not start: %v", err)
	}
	if err := srv.Start(); err != nil {
		return fail("could not serve: %v", err)
	}
	sum := sha256.Sum256(srv.AttestedCertificateDER())
	ready, _ := json.Marshal(replicaReady{Untrusted: srv.UntrustedAddr(), Attested: srv.AttestedAddr(), Cluster: srv.ClusterAddr(), CertSHA256: hex.EncodeToString(sum[:])})
	fmt.Printf("READY %s\n", ready)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fail("shutdown: %v", err)
	}
	return 0
}

func writePKI(t *testing.T, pki *sgxtest.PKI, dir string) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(pki.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "root.pem"), filepath.Join(dir, "root.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func readPKI(certFile, keyFile string) (*sgxtest.PKI, error) {
	read := func(path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", path)
		}
		return blk.Bytes, nil
	}
	c, err := read(certFile)
	if err != nil {
		return nil, err
	}
	k, err := read(keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(c)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &sgxtest.PKI{Root: cert, RootKey: (*ecdsa.PrivateKey)(key)}, nil
}

// replica is a replica process.
type replica struct {
	replicaReady
	cmd    *exec.Cmd
	log    *lockedLog
	exited chan struct{}
}

// startReplica starts this test binary as a replica and waits until it
// serves. With wantFail, it waits for the process to exit instead and
// returns its logs.
func startReplica(t *testing.T, spec replicaSpec, wantFail bool) *replica {
	t.Helper()
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(js))
	r := &replica{cmd: cmd, log: &lockedLog{}, exited: make(chan struct{})}
	cmd.Stderr = r.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				lines <- l
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-r.exited
		}
	})
	select {
	case l := <-lines:
		if wantFail {
			t.Fatalf("the replica serves, want it refused:\n%s", r.log.String())
		}
		if err := json.Unmarshal([]byte(l), &r.replicaReady); err != nil {
			t.Fatal(err)
		}
	case <-r.exited:
		if !wantFail {
			t.Fatalf("the replica exited (%v):\n%s", cmd.ProcessState, r.log.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the replica did not start in 2 minutes:\n%s", r.log.String())
	}
	return r
}

// lockedLog collects a process's logs for the test to read.
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

// TestClusterHardwareBehindLoadBalancer: three hardware-mode replica
// processes whose TEE is the synthetic SGX PKI (one bootstraps, two join,
// each proving itself with a quote bound to the join connection) behind
// HAProxy. Clients verify evidence against the policy through the
// balancer, whichever replica answers; models uploaded through one
// connection run and delete through others; a replica killed with SIGKILL
// mid-load loses no acknowledged model and clients reconnect; replicas
// with another MRENCLAVE are refused by their peers and never serve.
func TestClusterHardwareBehindLoadBalancer(t *testing.T) {
	testserver.Runtime(t) // the replicas need ONNX Runtime: skip or fail here, saying so
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootCert, rootKey := writePKI(t, pki, dir)
	polFile := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(polFile, []byte(attesttest.PolicyTOML(attesttest.MREnclave())), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	hostCert, hostKey := filepath.Join(dir, "host.pem"), filepath.Join(dir, "host.key")
	if _, err := identity.GenerateHostCertificate(hostCert, hostKey); err != nil {
		t.Fatal(err)
	}
	mr := attesttest.MREnclave()
	spec := func(role string, peers ...string) replicaSpec {
		return replicaSpec{RootCert: rootCert, RootKey: rootKey, MREnclave: hex.EncodeToString(mr[:]), Role: role, Peers: peers,
			Policy: polFile, ModelsDir: shared, HostCert: hostCert, HostKey: hostKey, StateDir: t.TempDir()}
	}
	r0 := startReplica(t, spec(server.ClusterBootstrap), false)
	r1 := startReplica(t, spec(server.ClusterJoin, r0.Cluster), false)
	r2 := startReplica(t, spec(server.ClusterJoin, r0.Cluster), false)
	reps := []*replica{r0, r1, r2}
	for _, r := range reps[1:] {
		if r.CertSHA256 != r0.CertSHA256 {
			t.Fatalf("a joined replica serves another attested certificate: %s, want %s", r.CertSHA256, r0.CertSHA256)
		}
	}
	var untr, att []string
	for _, r := range reps {
		untr = append(untr, r.Untrusted)
		att = append(att, r.Attested)
	}
	lbUntrusted, lbAttested := testserver.HAProxy(t, untr, att)
	ctx := context.Background()
	connect := func() (*client.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return client.Connect(cctx, lbUntrusted,
			client.WithHostCertificateFile(hostCert),
			client.WithAttestedPort(lbAttested),
			client.WithLogger(slog.New(slog.DiscardHandler)),
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
	var otherReplica atomic.Int64
	check := func(c *client.Client, id string, i int) error {
		x, want := input(i)
		out, err := c.Run(ctx, id, []tensor.Tensor{x}, client.Sign())
		if err != nil {
			return err
		}
		// The proof carries the evidence of the replica that ran the
		// request, whichever replica the untrusted port's evidence came
		// from: its receipt's replica is checked.
		p := out.Proof()
		if _, err := proof.Verify(p, proof.VerifyOptions{Policy: attesttest.Policy(attesttest.MREnclave()), TestRoot: pki.Root,
			Now: func() time.Time { return hwNow }, RequireReplica: true, ModelID: id}); err != nil {
			return fmt.Errorf("the run's proof: %w", err)
		}
		if !bytes.Equal(p.GetAttestation().GetQuote(), c.Attestation().Evidence.Raw) {
			otherReplica.Add(1)
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

	// Phase 1: every client uploads through one connection, runs through
	// others, deletes through another and finds it gone through more.
	const clients = 50
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
			for range 2 {
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
	for _, r := range reps {
		if strings.Contains(r.log.String(), "cluster: shared model added") {
			picked++
		}
	}
	if picked < 2 {
		t.Fatalf("only %d replicas ran a model uploaded through another", picked)
	}
	if otherReplica.Load() == 0 {
		t.Fatal("no signed run was served by another replica than the one whose evidence its client verified at connect: the balancer did not spread the two ports")
	}
	t.Logf("phase 1: %d signed runs served by another replica than the connect-time evidence's; their proofs carry the serving replica's evidence", otherReplica.Load())

	// Phase 2: load through the balancer; r1 is killed with SIGKILL in
	// the middle. Clients reconnect; no acknowledged model is lost.
	count, failures := testserver.KillMidLoad(t, 8, connect,
		func(c *client.Client, id string) error {
			_, err := c.UploadModel(ctx, mlp, client.WithModelID(id))
			return err
		},
		check,
		func() {
			if err := r1.cmd.Process.Kill(); err != nil {
				t.Error(err)
			}
			<-r1.exited
		})
	t.Logf("phase 2: %d models acknowledged, %d failed calls around the SIGKILL (reconnected)", count, failures)

	// Phase 3: a replica with another MRENCLAVE is refused by its peers
	// and never serves, whether its own policy accepts that measurement
	// or is the cluster's.
	otherMR := attesttest.MREnclave()
	otherMR[0] ^= 0xff
	otherPol := filepath.Join(dir, "other.toml")
	if err := os.WriteFile(otherPol, []byte(attesttest.PolicyTOML(otherMR)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pol := range []string{otherPol, polFile} {
		s := spec(server.ClusterJoin, r0.Cluster, r2.Cluster)
		s.MREnclave, s.Policy = hex.EncodeToString(otherMR[:]), pol
		bad := startReplica(t, s, true)
		logs := bad.log.String()
		if !strings.Contains(logs, "could not start") {
			t.Fatalf("the replica with another MRENCLAVE (policy %s) did not say why it stopped:\n%s", filepath.Base(pol), logs)
		}
		if pol == otherPol && !strings.Contains(logs, cluster.ErrRefused.Error()) {
			t.Fatalf("the replica with another MRENCLAVE and a policy that accepts it was not refused by its peers:\n%s", logs)
		}
		t.Logf("policy %s: %s", filepath.Base(pol), logs[strings.LastIndex(logs, "replica: could not start"):])
	}
	if !strings.Contains(r0.log.String(), "cluster join refused") {
		t.Fatalf("the peer did not log the refusal:\n%s", r0.log.String())
	}
	if !strings.Contains(r0.log.String(), "mr_enclave") {
		t.Fatalf("the refusal does not say the measurement differs:\n%s", r0.log.String())
	}
}
