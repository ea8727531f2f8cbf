package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
)

// withMetrics turns the metrics listener on, on a free loopback port.
func withMetrics(c *server.Config) {
	c.Metrics = true
	c.MetricsAddr = "127.0.0.1:0"
}

// pinnedTLS trusts exactly the certificate der (the server name in these
// certificates is not the address dialled).
func pinnedTLS(der []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the exact match below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], der) {
				return errors.New("not the pinned certificate")
			}
			return nil
		},
	}
}

func dialPinned(t *testing.T, addr string, der []byte) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pinnedTLS(der))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// healthOf asks a port's gRPC health service about service ("" for the
// server as a whole).
func healthOf(t *testing.T, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check %q: %v", service, err)
	}
	return r.Status
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestHealthOverTLS checks the gRPC health service on both ports, over
// TLS with each port's real certificate, and /healthz and /readyz.
func TestHealthOverTLS(t *testing.T) {
	ts := testserver.Start(t, withMetrics)
	untr := dialPinned(t, ts.UntrustedAddr, ts.HostCertificateDER())
	att := dialPinned(t, ts.AttestedAddr, ts.AttestedCertificateDER())
	for _, c := range []struct {
		conn    *grpc.ClientConn
		service string
	}{
		{untr, ""}, {untr, "untrusted.Attestation"}, {untr, "blindfold.v1.Evidence"},
		{att, ""}, {att, "securedexchange.Exchange"}, {att, "blindfold.v1.Models"},
	} {
		if st := healthOf(t, c.conn, c.service); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("service %q: %v, want SERVING", c.service, st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(att).Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); err == nil {
		t.Error("health of an unknown service: no error")
	}
	base := "http://" + ts.MetricsAddr()
	if code, body := httpGet(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	// Shutting down: NOT_SERVING at once, then the port closes.
	watch, err := healthpb.NewHealthClient(untr).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch during shutdown: %v %v", r, err)
	}
	cancel() // ends the watch, so that the graceful stop can finish
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReadinessWaitsForIdentity: a server told its identity is pending is
// alive but not ready until SetIdentityReady.
func TestReadinessWaitsForIdentity(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Simulation = true
	cfg.UntrustedAddr, cfg.AttestedAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	withMetrics(&cfg)
	srv, err := server.New(server.Options{Config: cfg, Runtime: testserver.Runtime(t), IdentityPending: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	base := "http://" + srv.MetricsAddr()
	conn := dialPinned(t, srv.UntrustedAddr(), srv.HostCertificateDER())
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "identity") {
		t.Errorf("/readyz before the identity: %d %q", code, body)
	}
	if st := healthOf(t, conn, ""); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health before the identity: %v", st)
	}
	srv.SetIdentityReady(true)
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after the identity: %d %q", code, body)
	}
	if st := healthOf(t, conn, "untrusted.Attestation"); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health after the identity: %v", st)
	}
}

// TestReadinessWaitsForEvidence: on a TEE the server is ready only once
// the TEE has produced evidence.
func TestReadinessWaitsForEvidence(t *testing.T) {
	pki, err := sgxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	att := &failingAttester{Attester: attesttest.NewAttester(pki, time.Now())}
	att.failing.Store(true)
	ts := testserver.StartHardware(t, att, withMetrics)
	base := "http://" + ts.MetricsAddr()
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "evidence") {
		t.Errorf("/readyz without evidence: %d %q", code, body)
	}
	conn := dialPinned(t, ts.UntrustedAddr, ts.HostCertificateDER())
	if st := healthOf(t, conn, ""); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health without evidence: %v", st)
	}
	att.failing.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 20s after the TEE answers: %d %q", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := healthOf(t, conn, ""); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health with evidence: %v", st)
	}
	code, body := httpGet(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `blindfold_evidence_requests_total{result="ok"}`) || !strings.Contains(body, `blindfold_evidence_requests_total{result="error"}`) {
		t.Errorf("/metrics lacks the evidence counts: %d", code)
	}
}

// TestMetricsOffByDefault: no listener unless metrics are turned on, and
// then on loopback.
func TestMetricsOffByDefault(t *testing.T) {
	if c := server.DefaultConfig(); c.Metrics || !strings.HasPrefix(c.MetricsAddr, "127.0.0.1:") {
		t.Errorf("default metrics %v on %q; want off, loopback", c.Metrics, c.MetricsAddr)
	}
	ts := testserver.Start(t)
	if a := ts.MetricsAddr(); a != "" {
		t.Errorf("metrics listener on %s with metrics off", a)
	}
}

// TestMetricsNoSubjects: with authentication, no series names the subject
// or the model unless metrics_subject_labels is on.
func TestMetricsNoSubjects(t *testing.T) {
	for _, labels := range []bool{false, true} {
		ts := testserver.Start(t, withMetrics, func(c *server.Config) { c.MetricsSubjectLabels = labels })
		b := connectLikeBlindAI(t, ts)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, _, _, err := b.upload(ctx, testserver.Model(t, "mlp.onnx"), "secret-model-name", false); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, body := httpGet(t, "http://"+ts.MetricsAddr()+"/metrics")
		if strings.Contains(body, "secret-model-name") {
			t.Error("a metric names the model")
		}
		if got := strings.Contains(body, "blindfold_tenant_models{subject="); got != labels {
			t.Errorf("metrics_subject_labels %v: per-subject series present: %v", labels, got)
		}
	}
}

// connectUntrusted returns an Attestation client of ts over TLS.
func connectUntrusted(t *testing.T, ts *testserver.Server) untrusted.AttestationClient {
	return untrusted.NewAttestationClient(dialPinned(t, ts.UntrustedAddr, ts.HostCertificateDER()))
}

// needTool returns the path of a program the test needs; under CI a
// missing one fails the test (scripts/test.sh installs it).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := execLookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package %s; scripts/test.sh installs it): %v", name, pkg, err)
		}
		t.Skipf("%s not found (apt-get install %s): %v", name, pkg, err)
	}
	return p
}

// failingAttester fails while failing is set.
type failingAttester struct {
	*attesttest.Attester
	failing atomic.Bool
}

func (a *failingAttester) Evidence(ctx context.Context, rd [64]byte) (*attest.Evidence, error) {
	if a.failing.Load() {
		return nil, errors.New("no quote yet")
	}
	return a.Attester.Evidence(ctx, rd)
}

// TestRecordRequest: a front end's requests are counted with the gRPC
// ports', and gRPC status codes are named as in the gRPC specification.
func TestRecordRequest(t *testing.T) {
	ts := testserver.Start(t, withMetrics)
	ts.RecordRequest("http", server.ProtocolBlindAI06, "run", "OK", 30*time.Millisecond, 1000, 200)
	ts.RecordRequest("http", server.ProtocolBlindAI06, "run", "NOT_FOUND", time.Millisecond, 10, 20)
	conn := dialPinned(t, ts.AttestedAddr, ts.AttestedCertificateDER())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); err == nil {
		t.Fatal("health of an unknown service: no error")
	}
	_, body := httpGet(t, "http://"+ts.MetricsAddr()+"/metrics")
	for _, want := range []string{
		`blindfold_requests_total{code="OK",port="http",protocol="blindai06",rpc="run"} 1`,
		`blindfold_requests_total{code="NOT_FOUND",port="http",protocol="blindai06",rpc="run"} 1`,
		`blindfold_received_bytes_total{port="http",protocol="blindai06"} 1010`,
		`blindfold_sent_bytes_total{port="http",protocol="blindai06"} 220`,
		`blindfold_request_duration_seconds_count{port="http",protocol="blindai06",rpc="run"} 2`,
		`blindfold_requests_total{code="NOT_FOUND",port="attested",protocol="grpc-health",rpc="grpc.health.v1.Health/Check"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
