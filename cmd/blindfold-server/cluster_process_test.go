package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// needHAProxy returns the haproxy binary. Under CI a missing one is a
// failure (scripts/test.sh installs it); elsewhere the test is skipped.
func needHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is not installed (CI must install it: scripts/test.sh does, as root): %v", err)
		}
		t.Skipf("haproxy is not installed (apt-get install haproxy): %v", err)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startHAProxy balances both ports of the replicas, in TCP mode, round
// robin, and returns the balancer's untrusted address and attested port.
func startHAProxy(t *testing.T, bin string, reps []*proc) (string, int) {
	t.Helper()
	up, ap := freePort(t), freePort(t)
	haproxyOn(t, bin, up, ap, reps, nil)
	return fmt.Sprintf("127.0.0.1:%d", up), ap
}

// haproxyOn starts HAProxy on ports up and ap for reps; with old, it takes
// over from that HAProxy as a reload does (-sf): the old one stops
// accepting and finishes its connections.
func haproxyOn(t *testing.T, bin string, up, ap int, reps []*proc, old *exec.Cmd) *exec.Cmd {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5m\n  timeout server 5m\n  balance roundrobin\n")
	fmt.Fprintf(&b, "frontend untrusted\n  bind 127.0.0.1:%d\n  default_backend untrusted\nbackend untrusted\n", up)
	for i, r := range reps {
		fmt.Fprintf(&b, "  server r%d %s check inter 500ms fall 1 rise 1\n", i, r.untrusted)
	}
	fmt.Fprintf(&b, "frontend attested\n  bind 127.0.0.1:%d\n  default_backend attested\nbackend attested\n", ap)
	for i, r := range reps {
		fmt.Fprintf(&b, "  server r%d 127.0.0.1:%d check inter 500ms fall 1 rise 1\n", i, r.attested)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-db", "-f", cfg}
	if old != nil {
		args = append(args, "-sf", strconv.Itoa(old.Process.Pid))
	}
	cmd := exec.Command(bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", up))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cmd
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	peerPortLine = regexp.MustCompile(`msg="cluster peer port" addr=(\S+)`)
	certLine     = regexp.MustCompile(`msg=serving .*attested_cert_sha256=(\S+)`)
)

func peerAddr(t *testing.T, p *proc) string {
	t.Helper()
	m := peerPortLine.FindStringSubmatch(p.logs())
	if m == nil {
		t.Fatalf("no peer port in the logs:\n%s", p.logs())
	}
	return m[1]
}

func certOf(t *testing.T, p *proc) string {
	t.Helper()
	m := certLine.FindStringSubmatch(p.logs())
	if m == nil {
		t.Fatalf("no attested certificate in the logs:\n%s", p.logs())
	}
	return m[1]
}

func mlpInput(i int) (tensor.Tensor, []float32) {
	v := []float32{float32(i), 1, -2, float32(i) / 3}
	x, _ := tensor.New("x", []int64{1, 4}, v)
	return x, onnxgen.MLPWeights().Forward(v, 1)
}

func checkMLP(out *client.RunResult, want []float32) error {
	got, err := tensor.Values[float32](out.Outputs[0])
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d outputs, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			return fmt.Errorf("output %d is %v, want %v", i, got[i], want[i])
		}
	}
	return nil
}

// TestClusterBehindLoadBalancer: three simulation replicas (one
// bootstraps, two join) behind HAProxy serve as one: one certificate,
// models uploaded through any connection run and delete through any
// other, a replica killed with SIGKILL mid-load loses no acknowledged
// model, and a replica with another join secret is refused and never
// serves.
func TestClusterBehindLoadBalancer(t *testing.T) {
	hap := needHAProxy(t)
	bin := buildServer(t)
	shared := t.TempDir()
	secret := filepath.Join(t.TempDir(), "join.secret")
	if err := os.WriteFile(secret, []byte("cluster-test-join-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	hostCert, hostKey := filepath.Join(hostDir, "host.pem"), filepath.Join(hostDir, "host.key")
	if _, err := identity.GenerateHostCertificate(hostCert, hostKey); err != nil {
		t.Fatal(err)
	}
	common := []string{"--cluster-models-dir", shared, "--cluster-secret-file", secret, "--cluster-addr", "127.0.0.1:0",
		"--host-cert", hostCert, "--host-key", hostKey}
	r0 := startProc(t, bin, t.TempDir(), append([]string{"--cluster", "bootstrap"}, common...)...)
	join := append([]string{"--cluster", "join", "--cluster-peers", peerAddr(t, r0)}, common...)
	r1 := startProc(t, bin, t.TempDir(), join...)
	r2 := startProc(t, bin, t.TempDir(), join...)
	reps := []*proc{r0, r1, r2}
	for _, r := range reps[1:] {
		if certOf(t, r) != certOf(t, r0) {
			t.Fatalf("a joined replica serves another certificate: %s, want %s", certOf(t, r), certOf(t, r0))
		}
	}
	lbUntrusted, lbAttested := startHAProxy(t, hap, reps)
	ctx := context.Background()
	connect := func() (*client.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return client.Connect(cctx, lbUntrusted, client.WithSimulation(), client.WithAttestedPort(lbAttested), client.WithHostCertificateFile(hostCert),
			client.WithLogger(slog.New(slog.DiscardHandler)))
	}
	mlp, err := onnxgen.MLP()
	if err != nil {
		t.Fatal(err)
	}

	// Phase 1: every client uploads through one connection, runs through
	// another, deletes through a third and finds it gone through a fourth.
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("phase1-%d", i)
			step := func(f func(c *client.Client) error) error {
				c, err := connect()
				if err != nil {
					return err
				}
				defer c.Close()
				return f(c)
			}
			if err := step(func(c *client.Client) error {
				_, err := c.UploadModel(ctx, mlp, client.WithModelID(id))
				return err
			}); err != nil {
				errs <- fmt.Errorf("%s upload: %w", id, err)
				return
			}
			x, want := mlpInput(i)
			for range 2 {
				if err := step(func(c *client.Client) error {
					out, err := c.Run(ctx, id, []tensor.Tensor{x})
					if err != nil {
						return err
					}
					return checkMLP(out, want)
				}); err != nil {
					errs <- fmt.Errorf("%s run: %w", id, err)
					return
				}
			}
			if err := step(func(c *client.Client) error { return c.DeleteModel(ctx, id) }); err != nil {
				errs <- fmt.Errorf("%s delete: %w", id, err)
				return
			}
			for range 3 { // whichever replica: the delete was acknowledged
				if err := step(func(c *client.Client) error {
					_, err := c.Run(ctx, id, []tensor.Tensor{x})
					if status.Code(err) != codes.NotFound {
						return fmt.Errorf("run after the delete: %v, want NOT_FOUND", err)
					}
					return nil
				}); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("logs r0:\n%s\nr1:\n%s\nr2:\n%s", r0.logs(), r1.logs(), r2.logs())
	}
	picked := 0
	for _, r := range reps {
		if strings.Contains(r.logs(), "cluster: shared model added") {
			picked++
		}
	}
	if picked < 2 {
		t.Fatalf("only %d replicas ran a model uploaded through another; the balancer did not spread the connections", picked)
	}

	// Phase 2: load through the balancer; r1 is killed with SIGKILL in
	// the middle. Clients reconnect; no acknowledged model is lost.
	count, failures := testserver.KillMidLoad(t, clients, connect,
		func(c *client.Client, id string) error {
			_, err := c.UploadModel(ctx, mlp, client.WithModelID(id))
			return err
		},
		func(c *client.Client, id string, n int) error {
			x, want := mlpInput(n)
			out, err := c.Run(ctx, id, []tensor.Tensor{x})
			if err != nil {
				return err
			}
			return checkMLP(out, want)
		},
		func() {
			r1.cmd.Process.Kill()
			<-r1.exited
		})
	t.Logf("phase 2: %d models acknowledged, %d failed calls around the kill (reconnected)", count, failures)

	// Phase 3: a replica with another join secret is refused by its peers
	// and never serves.
	bad := filepath.Join(t.TempDir(), "other.secret")
	os.WriteFile(bad, []byte("another-join-secret-0123456789"), 0o600)
	args := []string{"--simulation", "--state-dir", t.TempDir(), "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0",
		"--cluster", "join", "--cluster-peers", peerAddr(t, r0) + "," + peerAddr(t, r2), "--cluster-join-timeout", "3s",
		"--cluster-models-dir", shared, "--cluster-secret-file", bad, "--cluster-addr", "127.0.0.1:0", "--host-cert", hostCert, "--host-key", hostKey}
	refusedCtx, cancelRefused := context.WithTimeout(context.Background(), time.Minute)
	defer cancelRefused()
	out, err := exec.CommandContext(refusedCtx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || refusedCtx.Err() != nil {
		t.Fatalf("the replica with another secret: %v, want a failed exit\n%s", err, out)
	}
	if strings.Contains(string(out), "msg=serving") || !strings.Contains(string(out), "could not join") {
		t.Fatalf("the replica with another secret served or did not say why it stopped:\n%s", out)
	}
	if !strings.Contains(r0.logs(), "cluster join refused") {
		t.Fatalf("the peer did not log the refusal:\n%s", r0.logs())
	}
}

// TestClusterKeyRotation rolls out a new attested identity without
// downtime: a new cluster bootstraps keeping the old cluster's sealing key
// (cluster_inherit), the balancer is reloaded onto it (HAProxy -sf: the old
// one finishes its connections), and the old replicas stop. Clients that
// connect all along keep working; after the switch they see the new
// certificate; every model stays runnable.
func TestClusterKeyRotation(t *testing.T) {
	hap := needHAProxy(t)
	bin := buildServer(t)
	shared := t.TempDir()
	secret := filepath.Join(t.TempDir(), "join.secret")
	if err := os.WriteFile(secret, []byte("rotation-test-join-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	hostCert, hostKey := filepath.Join(hostDir, "host.pem"), filepath.Join(hostDir, "host.key")
	if _, err := identity.GenerateHostCertificate(hostCert, hostKey); err != nil {
		t.Fatal(err)
	}
	common := []string{"--cluster-models-dir", shared, "--cluster-secret-file", secret, "--cluster-addr", "127.0.0.1:0",
		"--host-cert", hostCert, "--host-key", hostKey}
	o0 := startProc(t, bin, t.TempDir(), append([]string{"--cluster", "bootstrap"}, common...)...)
	o1 := startProc(t, bin, t.TempDir(), append([]string{"--cluster", "join", "--cluster-peers", peerAddr(t, o0)}, common...)...)
	up, ap := freePort(t), freePort(t)
	lb := haproxyOn(t, hap, up, ap, []*proc{o0, o1}, nil)
	ctx := context.Background()
	connect := func() (*client.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return client.Connect(cctx, fmt.Sprintf("127.0.0.1:%d", up), client.WithSimulation(), client.WithAttestedPort(ap),
			client.WithHostCertificateFile(hostCert), client.WithLogger(slog.New(slog.DiscardHandler)))
	}
	mlp, _ := onnxgen.MLP()
	c, err := connect()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadModel(ctx, mlp, client.WithModelID("before")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	oldCert := certOf(t, o0)

	// Clients connect, run and disconnect throughout the rotation.
	var ok, failed atomic.Int64
	var sawNew atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := connect()
				if err != nil {
					failed.Add(1)
					continue
				}
				x, want := mlpInput(i)
				out, err := c.Run(ctx, "before", []tensor.Tensor{x})
				if err == nil {
					if err := checkMLP(out, want); err != nil {
						t.Errorf("wrong result during the rotation: %v", err)
					}
					ok.Add(1)
					if c.AttestedCertificateFingerprint() != oldCert {
						sawNew.Store(true)
					}
				} else {
					failed.Add(1)
				}
				c.Close()
			}
		}()
	}
	n0 := startProc(t, bin, t.TempDir(), append([]string{"--cluster", "bootstrap", "--cluster-inherit", peerAddr(t, o0)}, common...)...)
	n1 := startProc(t, bin, t.TempDir(), append([]string{"--cluster", "join", "--cluster-peers", peerAddr(t, n0)}, common...)...)
	newCert := certOf(t, n0)
	if newCert == oldCert || certOf(t, n1) != newCert {
		t.Fatalf("certificates: old %s, new %s and %s; want one new certificate on both new replicas", oldCert, newCert, certOf(t, n1))
	}
	time.Sleep(time.Second)
	haproxyOn(t, hap, up, ap, []*proc{n0, n1}, lb)
	lb.Wait() // the old balancer has finished its connections
	time.Sleep(500 * time.Millisecond)
	settled := failed.Load()
	o0.cmd.Process.Kill()
	o1.cmd.Process.Kill()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if f := failed.Load() - settled; f > 0 {
		t.Fatalf("%d runs failed after the switch had settled (old replicas stopped)", f)
	}
	if !sawNew.Load() {
		t.Fatal("no client saw the new certificate after the switch")
	}
	// A connection whose certificate came from the old pool and whose
	// attested port reached the new one fails and is retried; the switch
	// must not cost more than a handful of those.
	if f := failed.Load(); f > 3*8 || ok.Load() < 50 {
		t.Fatalf("%d runs succeeded and %d failed during the rotation", ok.Load(), f)
	}
	c, err = connect()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.AttestedCertificateFingerprint() != newCert {
		t.Fatalf("after the rotation the balancer serves %s, want %s", c.AttestedCertificateFingerprint(), newCert)
	}
	x, want := mlpInput(1)
	out, err := c.Run(ctx, "before", []tensor.Tensor{x})
	if err == nil {
		err = checkMLP(out, want)
	}
	if err != nil {
		t.Fatalf("a model uploaded before the rotation: %v\n%s", err, n0.logs())
	}
	if err := c.DeleteModel(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	t.Logf("rotation: %d runs succeeded, %d failed (retried)", ok.Load(), failed.Load())
}

// TestClusterJoinOrBootstrap: cluster = "join-or-bootstrap" (the first pod
// of the Kubernetes StatefulSet) bootstraps only when no peer answers at
// all, joins when one does, and never bootstraps after a refusal.
func TestClusterJoinOrBootstrap(t *testing.T) {
	bin := buildServer(t)
	shared := t.TempDir()
	secret := filepath.Join(t.TempDir(), "join.secret")
	if err := os.WriteFile(secret, []byte("cluster-test-join-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(peers, secretFile string) []string {
		return []string{"--cluster", "join-or-bootstrap", "--cluster-peers", peers, "--cluster-join-timeout", "2s",
			"--cluster-models-dir", shared, "--cluster-secret-file", secretFile, "--cluster-addr", "127.0.0.1:0"}
	}
	// Nobody answers (as when the headless service names only this pod):
	// it bootstraps.
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r0 := startProc(t, bin, t.TempDir(), args(dead, secret)...)
	if !strings.Contains(r0.logs(), "no peer answered") || !strings.Contains(r0.logs(), "bootstrapped a NEW cluster identity") {
		t.Fatalf("the first replica did not say it bootstrapped because no peer answered:\n%s", r0.logs())
	}
	// A peer answers: it joins (a restarted first pod rejoins the others).
	r1 := startProc(t, bin, t.TempDir(), args(dead+","+peerAddr(t, r0), secret)...)
	if certOf(t, r1) != certOf(t, r0) || strings.Contains(r1.logs(), "bootstrapped") {
		t.Fatalf("with a peer answering, the replica did not join:\n%s", r1.logs())
	}
	// A peer answers and refuses: it stops, and does not bootstrap.
	bad := filepath.Join(t.TempDir(), "other.secret")
	if err := os.WriteFile(bad, []byte("another-join-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Bounded: a regression that lets it serve would otherwise hang here.
	refusedCtx, cancelRefused := context.WithTimeout(context.Background(), time.Minute)
	defer cancelRefused()
	cmd := exec.CommandContext(refusedCtx, bin, append([]string{"--simulation", "--state-dir", t.TempDir(), "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0"},
		args(peerAddr(t, r0), bad)...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || refusedCtx.Err() != nil || strings.Contains(string(out), "msg=serving") || strings.Contains(string(out), "bootstrapped") {
		t.Fatalf("a refused join-or-bootstrap replica: %v, want a failed exit without serving or bootstrapping:\n%s", err, out)
	}
	if !strings.Contains(string(out), "a peer answered, so it does not bootstrap") {
		t.Fatalf("the refused replica did not say why it stopped:\n%s", out)
	}
}
