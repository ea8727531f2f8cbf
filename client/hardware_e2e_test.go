//go:build cgo

package client_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/evidence"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/gramine"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// hwNow is the time the test evidence is made and verified at.
var hwNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// hardwareServer starts a hardware-mode server whose only simulated part is
// the TEE: a test double that quotes whatever report data the server asks
// for, with collateral signed by a test PKI.
func hardwareServer(t *testing.T) (*testserver.Server, *attesttest.Attester) {
	t.Helper()
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	att := attesttest.NewAttester(pki, hwNow)
	return testserver.StartHardware(t, att), att
}

func hwConnect(ctx context.Context, t *testing.T, srv *testserver.Server, att *attesttest.Attester, extra ...client.Option) (*client.Client, error) {
	opts := append([]client.Option{
		client.WithHostCertificateFile(srv.HostCertPEM),
		client.WithAttestedPort(attestedPort(t, srv)),
		client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		client.WithPolicy(attesttest.Policy(attesttest.MREnclave())),
		client.WithTestRootCA(att.PKI.Root),
		client.WithTime(func() time.Time { return hwNow }),
	}, extra...)
	return client.Connect(ctx, srv.UntrustedAddr, opts...)
}

// TestHardwareE2E connects in hardware mode, uploads, runs with a
// signature, saves the proof and verifies it offline.
func TestHardwareE2E(t *testing.T) {
	srv, att := hardwareServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nonce := range [][]byte{nil, []byte("a fresh client nonce")} {
		c, err := hwConnect(ctx, t, srv, att, client.WithNonce(nonce))
		if err != nil {
			t.Fatalf("Connect (nonce %q): %v", nonce, err)
		}
		defer c.Close()
		if c.Simulation() {
			t.Fatal("hardware connection reports simulation")
		}
		a := c.Attestation()
		if a == nil || sgx.ResultOf(a.Claims).Status != sgx.UpToDate || sgx.ResultOf(a.Claims).ReportBody.MRENCLAVE != attesttest.MREnclave() {
			t.Fatalf("attestation result %+v", a)
		}
		if string(c.AttestedCertificate()) != string(srv.AttestedCertificateDER()) {
			t.Fatal("the client pinned a certificate other than the server's attested one")
		}
		_, rd := att.Calls()
		if rd != attest.ReportData(srv.AttestedCertificateDER(), nonce) {
			t.Fatalf("the server asked for report data %x", rd)
		}
		if info := c.ServerInfo(); info.EvidenceType != attest.TypeSGXDCAP || info.Simulation {
			t.Fatalf("server info %+v", info)
		}
	}

	c, err := hwConnect(ctx, t, srv, att)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	model := testserver.Model(t, "mlp.onnx")
	up, err := c.UploadModel(ctx, model, client.WithModelID("mlp"), client.Sign())
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	x, err := tensor.New("x", []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, up.ModelID, []tensor.Tensor{x}, client.Sign())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	dir := t.TempDir()
	runProof, sendProof := filepath.Join(dir, "run.proof"), filepath.Join(dir, "send.proof")
	if err := res.SaveProof(runProof); err != nil {
		t.Fatal(err)
	}
	if err := up.SaveProof(sendProof); err != nil {
		t.Fatal(err)
	}
	pol := attesttest.Policy(attesttest.MREnclave())
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	for _, tc := range []struct {
		name string
		file string
		opts proof.VerifyOptions
		is   error
	}{
		{"run proof", runProof, proof.VerifyOptions{Policy: pol, Now: at(hwNow.Add(time.Hour)), TestRoot: att.PKI.Root, InputHash: res.InputHash, ModelID: "mlp"}, nil},
		{"send proof", sendProof, proof.VerifyOptions{Policy: pol, Now: at(hwNow), TestRoot: att.PKI.Root, ModelHash: proof.ModelHash(model)}, nil},
		{"without a policy", runProof, proof.VerifyOptions{Now: at(hwNow), TestRoot: att.PKI.Root}, proof.ErrNoPolicy},
		{"against Intel's root", runProof, proof.VerifyOptions{Policy: pol, Now: at(hwNow)}, proof.ErrBadEvidence},
		{"after the collateral expired", runProof, proof.VerifyOptions{Policy: pol, Now: at(hwNow.AddDate(0, 2, 0)), TestRoot: att.PKI.Root}, proof.ErrStaleCollateral},
		{"simulation allowed does not skip evidence", runProof, proof.VerifyOptions{AllowSimulation: true, Now: at(hwNow)}, proof.ErrNoPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := proof.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := proof.Verify(p, tc.opts)
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Fatalf("Verify: error %v, want %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if r.Simulation || r.Evidence == nil || string(r.Certificate) != string(srv.AttestedCertificateDER()) {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// TestHardwareRefusals checks that Connect fails closed, with typed errors.
func TestHardwareRefusals(t *testing.T) {
	srv, att := hardwareServer(t)
	sim := testserver.Start(t)
	otherMR := attesttest.MREnclave()
	otherMR[31] ^= 0xff
	otherCert, err := identity.NewAttested()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name      string
		srv       *testserver.Server
		configure func(b *sgxtest.Builder)
		opts      []client.Option
		is        error
		sgxItem   sgx.Item
	}{
		{name: "wrong MRENCLAVE in the policy", opts: []client.Option{client.WithPolicy(attesttest.Policy(otherMR))}, is: client.ErrPolicyMismatch},
		{name: "report data of another certificate", configure: func(b *sgxtest.Builder) { b.ReportBody.ReportData = attest.ReportData(otherCert.DER, nil) }, is: client.ErrBadEvidence},
		{name: "report data with a stray nonce half", configure: func(b *sgxtest.Builder) { b.ReportBody.ReportData[40] ^= 1 }, is: client.ErrBadEvidence},
		{name: "replayed evidence for another nonce", configure: func(b *sgxtest.Builder) {
			b.ReportBody.ReportData = attest.ReportData(srv.AttestedCertificateDER(), []byte("old nonce"))
		}, opts: []client.Option{client.WithNonce([]byte("new nonce"))}, is: client.ErrBadEvidence},
		{name: "expired collateral", opts: []client.Option{client.WithTime(func() time.Time { return hwNow.AddDate(0, 0, 31) })}, is: client.ErrStaleCollateral},
		{name: "expired TCB info", configure: func(b *sgxtest.Builder) { b.TCBInfo.NextUpdate = hwNow.Add(-time.Minute) }, is: client.ErrStaleCollateral, sgxItem: sgx.ItemTCBInfo},
		{name: "Intel root against test evidence", opts: []client.Option{client.WithTestRootCA(nil)}, is: client.ErrBadEvidence, sgxItem: sgx.ItemCertificationData},
		{name: "debug enclave", configure: func(b *sgxtest.Builder) { b.ReportBody.AttributesFlags |= 2 }, is: client.ErrPolicyMismatch},
		{name: "no policy", opts: []client.Option{client.WithPolicy(nil)}, is: client.ErrNoPolicy},
		{name: "simulation server without opt-in", srv: sim, is: client.ErrSimulationServer},
		{name: "too long a nonce", opts: []client.Option{client.WithNonce(make([]byte, 65))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.srv
			if s == nil {
				s = srv
			}
			att.Configure = tc.configure
			defer func() { att.Configure = nil }()
			c, err := hwConnect(ctx, t, s, att, tc.opts...)
			if err == nil {
				c.Close()
				t.Fatal("Connect accepted")
			}
			var ce *client.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a ConnectError", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			var se *sgx.Error
			if tc.sgxItem != "" && (!errors.As(err, &se) || se.Item != tc.sgxItem) {
				t.Fatalf("error %v does not name %q", err, tc.sgxItem)
			}
		})
	}
	// A client given a policy never accepts a simulation server, even when
	// it also asks for simulation: that is a usage error, refused before
	// the server is asked anything, so no FAILED_PRECONDITION answer can
	// downgrade it to trusting the untrusted port's certificate.
	if c, err := hwConnect(ctx, t, sim, att, client.WithSimulation()); !errors.Is(err, client.ErrUsage) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("policy and simulation together: err = %v, want ErrUsage", err)
	}
	// Simulation alone (no policy) is accepted with the opt-in.
	c, err := hwConnect(ctx, t, sim, att, client.WithPolicy(nil), client.WithSimulation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Simulation() || c.Attestation() != nil {
		t.Fatal("simulation connection reports hardware evidence")
	}
}

// TestHardwareUnavailable: a server that cannot get evidence answers
// UNAVAILABLE and the client passes that on.
func TestHardwareUnavailable(t *testing.T) {
	srv, att := hardwareServer(t)
	att.Err = errors.New("PCCS unreachable: connection refused")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := hwConnect(ctx, t, srv, att)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("error %v, want UNAVAILABLE", err)
	}
}

// TestBlindAIStyleHardwareClient does what a BlindAI 0.5 client does in
// hardware mode, with the generated stubs only: GetSgxQuoteWithCollateral,
// the report data binding of bytes 0..31, and pinning enclave_held_data.
func TestBlindAIStyleHardwareClient(t *testing.T) {
	srv, att := hardwareServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hostCert, err := identity.LoadCertificatePEM(srv.HostCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.UntrustedAddr, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(poolOf(hostCert), identity.ServerName)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ev, err := untrusted.NewAttestationClient(conn).GetSgxQuoteWithCollateral(ctx, &untrusted.GetSgxQuoteWithCollateralRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The quote verifies, and its report data starts with SHA-256 of
	// enclave_held_data, then 32 zero bytes.
	res, err := sgx.Verify(ev.GetQuote(), sgx.CollateralFromProto(ev.GetCollateral()), sgx.Options{Now: func() time.Time { return hwNow }, TestRoot: att.PKI.Root})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ev.GetEnclaveHeldData())
	if string(res.ReportBody.ReportData[:32]) != string(sum[:]) || [32]byte(res.ReportBody.ReportData[32:]) != ([32]byte{}) {
		t.Fatalf("report data %x does not bind enclave_held_data", res.ReportBody.ReportData)
	}
	var pol *policy.Policy = attesttest.Policy(attesttest.MREnclave())
	if err := pol.Check(res); err != nil {
		t.Fatal(err)
	}
	// Pin enclave_held_data on the attested port, as BlindAI clients do.
	cert, err := x509.ParseCertificate(ev.GetEnclaveHeldData())
	if err != nil {
		t.Fatal(err)
	}
	aconn, err := grpc.NewClient(srv.AttestedAddr, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(poolOf(cert), identity.ServerName)))
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close()
	if _, err := securedexchange.NewExchangeClient(aconn).DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "absent"}); status.Code(err) != codes.NotFound {
		t.Fatalf("DeleteModel over the pinned channel: %v, want NOT_FOUND", err)
	}
	// The nonce RPC is a separate service: BlindAI's is unchanged.
	r, err := evidence.NewEvidenceClient(conn).GetEvidence(ctx, &evidence.GetEvidenceRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetEvidence without a nonce: %v %v, want INVALID_ARGUMENT", r, err)
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// switchSource is a collateral source whose answer the test changes.
type switchSource struct {
	mu  sync.Mutex
	c   *sgx.Collateral
	err error
}

func (s *switchSource) Collateral(context.Context, *abi.Quote) (*sgx.Collateral, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c, s.err
}

func (s *switchSource) set(c *sgx.Collateral, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c, s.err = c, err
}

// TestGramineAttesterOverRPC runs the server with the Gramine attester on a
// fake /dev/attestation tree: device and collateral failures reach the
// client as UNAVAILABLE with the reason; a good quote verifies.
func TestGramineAttesterOverRPC(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"attestation_type": "dcap", "user_report_data": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := &switchSource{err: errors.New("PCCS https://pccs.test: HTTP 503")}
	ga, err := gramine.New(dir, src)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, ga)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	att := &attesttest.Attester{PKI: pki}

	_, err = hwConnect(ctx, t, srv, att)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "quote") {
		t.Fatalf("no quote file: %v, want UNAVAILABLE naming the quote", err)
	}
	b := sgxtest.NewBuilder(pki, hwNow)
	b.ReportBody.ReportData = attest.ReportData(srv.AttestedCertificateDER(), nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "quote"), ev.Quote, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = hwConnect(ctx, t, srv, att)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("no collateral: %v, want UNAVAILABLE with the PCCS's answer", err)
	}
	src.set(ev.Collateral, nil)
	c, err := hwConnect(ctx, t, srv, att)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	written, err := os.ReadFile(filepath.Join(dir, "user_report_data"))
	if err != nil {
		t.Fatal(err)
	}
	if rd := attest.ReportData(srv.AttestedCertificateDER(), nil); string(written) != string(rd[:]) {
		t.Fatalf("user_report_data %x, want %x", written, rd)
	}
	if err := os.WriteFile(filepath.Join(dir, "attestation_type"), []byte("none"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = hwConnect(ctx, t, srv, att)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `"none", want "dcap"`) {
		t.Fatalf("attestation_type none: %v", err)
	}
}

// TestGramineAndPCCSEndToEnd runs the whole hardware path with nothing
// simulated but the device and the PCCS: the server's Gramine attester on a
// fake /dev/attestation tree, collateral fetched and cached from a fake PCCS
// over HTTP, both backed by the test PKI; a client with the enclave's policy
// connects, uploads and runs; a client whose policy names another MRENCLAVE
// is refused at Connect, before any model byte could be sent.
func TestGramineAndPCCSEndToEnd(t *testing.T) {
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	b := sgxtest.NewBuilder(pki, hwNow)
	dir := t.TempDir()
	for name, data := range map[string]string{"attestation_type": "dcap", "user_report_data": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The cache fetches on first use; its PCCS address is set below, once
	// the device's quote (and so the collateral that goes with it) exists.
	pccsClient := &pccs.Client{}
	cache := &pccs.Cache{Client: pccsClient, Now: func() time.Time { return hwNow }}
	ga, err := gramine.New(dir, cache)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, ga)
	// The device's quote over the report data the server will write.
	b.ReportBody.ReportData = attest.ReportData(srv.AttestedCertificateDER(), nil)
	ev, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "quote"), ev.Quote, 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := abi.ParseQuote(ev.Quote)
	if err != nil {
		t.Fatal(err)
	}
	platform, err := pccs.QuotePlatform(q)
	if err != nil {
		t.Fatal(err)
	}
	fake := pccstest.New(t, ev.Collateral, platform.FMSPC, platform.CA)
	pccsClient.BaseURL = fake.URL
	connect := func(mrenclave [32]byte) (*client.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return client.Connect(ctx, srv.UntrustedAddr,
			client.WithHostCertificateFile(srv.HostCertPEM),
			client.WithAttestedPort(attestedPort(t, srv)),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			client.WithPolicy(attesttest.Policy(mrenclave)),
			client.WithTestRootCA(pki.Root),
			client.WithTime(func() time.Time { return hwNow }))
	}

	c, err := connect(attesttest.MREnclave())
	if err != nil {
		t.Fatalf("hardware-mode connect through Gramine and the PCCS: %v", err)
	}
	defer c.Close()
	if fake.Hits("/sgx/certification/v4/tcb") == 0 || fake.Hits("/sgx/certification/v4/qe/identity") == 0 {
		t.Fatal("the collateral did not come from the PCCS")
	}
	ctx := context.Background()
	if _, err := c.UploadModel(ctx, testserver.Model(t, "mlp.onnx"), client.WithModelID("mlp")); err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if _, err := c.Run(ctx, "mlp", []tensor.Tensor{x}); err != nil {
		t.Fatal(err)
	}

	other := attesttest.MREnclave()
	other[0] ^= 0xff
	if _, err := connect(other); !errors.Is(err, client.ErrPolicyMismatch) {
		t.Fatalf("policy of another MRENCLAVE: %v, want ErrPolicyMismatch", err)
	}
	if n, _ := srv.Usage(); n != 1 {
		t.Fatalf("%d models on the server; the refused client must not have sent any", n)
	}
}
