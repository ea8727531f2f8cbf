//go:build cgo

package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/snp/snptest"
	"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest"
	"github.com/blindfold-ai/blindfold/attest/tsm"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// snpPolicy returns a policy with an [snp] section pinning measurement.
func snpPolicy(t *testing.T, measurement [48]byte) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte("[snp]\nmeasurement = [\"" + hex.EncodeToString(measurement[:]) + "\"]\nmin_tcb_snp = 8\nmin_firmware = \"1.55\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSNPE2E runs the CVM end-to-end test with a fake SEV-SNP
// configfs-tsm tree (reports signed by a synthetic AMD PKI).
func TestSNPE2E(t *testing.T) {
	pki, err := snptest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tsm.New(pki.TSM(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.CRL(hwNow.Add(-time.Hour), hwNow.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other := snptest.Measurement()
	other[0] ^= 0xff
	cvmE2E(t, iss, attest.TypeSNP, snpPolicy(t, snptest.Measurement()), snpPolicy(t, other),
		verifier.Options{Now: func() time.Time { return hwNow }, SNP: snp.Options{TestRoots: pki.Roots(), CRL: crl}})
}

// tdxPolicy returns a policy with a [tdx] section pinning mrtd.
func tdxPolicy(t *testing.T, mrtd [48]byte) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte("[tdx]\nmrtd = [\"" + hex.EncodeToString(mrtd[:]) + "\"]\nmin_tee_tcb_svn = \"03010200000000000000000000000000\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTDXE2E runs the CVM end-to-end test with a fake TDX configfs-tsm
// tree (quotes signed under a synthetic Intel PKI) and a fake PCCS.
func TestTDXE2E(t *testing.T) {
	pki, err := tdxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tsm.New(pki.TSM(hwNow, nil), tdxtest.Source{PKI: pki, Now: hwNow})
	if err != nil {
		t.Fatal(err)
	}
	other := tdxtest.MRTD()
	other[0] ^= 0xff
	cvmE2E(t, iss, attest.TypeTDX, tdxPolicy(t, tdxtest.MRTD()), tdxPolicy(t, other),
		verifier.Options{Now: func() time.Time { return hwNow }, TDXTestRoot: pki.Root})
}

// cvmE2E runs a hardware-mode server whose evidence comes from iss, over
// real TLS: a client with policy good connects, uploads and runs with
// signatures, and the proofs verify offline; a client whose policy (bad)
// pins another measurement is refused at connect, and the server holds
// nothing from it.
func cvmE2E(t *testing.T, iss attest.Issuer, typ string, good, bad *policy.Policy, vopts verifier.Options) {
	srv := testserver.StartHardware(t, iss)
	registry := func(p *policy.Policy) *attest.Registry {
		reg, err := verifier.ForPolicy(p, vopts)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	connect := func(ctx context.Context, p *policy.Policy, extra ...client.Option) (*client.Client, error) {
		opts := append([]client.Option{
			client.WithHostCertificateFile(srv.HostCertPEM),
			client.WithAttestedPort(attestedPort(t, srv)),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			client.WithVerifiers(registry(p)),
		}, extra...)
		return client.Connect(ctx, srv.UntrustedAddr, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Another measurement: refused before anything is sent.
	if _, err := connect(ctx, bad); !errors.Is(err, client.ErrPolicyMismatch) {
		t.Fatalf("Connect with another measurement pinned: %v, want ErrPolicyMismatch", err)
	}
	// An SGX-only policy does not accept this platform's evidence.
	if _, err := connect(ctx, sgxOnlyPolicy(t)); !errors.Is(err, attest.ErrNotAccepted) {
		t.Fatalf("Connect with an SGX-only policy: %v, want ErrNotAccepted", err)
	}
	if n, _ := srv.Usage(); n != 0 {
		t.Fatalf("the server holds %d models after refused clients", n)
	}

	for _, nonce := range [][]byte{nil, []byte("a fresh client nonce")} {
		c, err := connect(ctx, good, client.WithNonce(nonce))
		if err != nil {
			t.Fatalf("Connect (nonce %q): %v", nonce, err)
		}
		a := c.Attestation()
		if a == nil || a.Claims.Type != typ || !a.Claims.TestRoot || c.Simulation() {
			t.Fatalf("attestation %+v", a)
		}
		if info := c.ServerInfo(); info.EvidenceType != typ {
			t.Fatalf("server info %+v", info)
		}
		c.Close()
	}

	c, err := connect(ctx, good)
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
	for _, tc := range []struct {
		name string
		file string
		opts proof.VerifyOptions
		is   error
	}{
		{"run proof", runProof, proof.VerifyOptions{Verifiers: registry(good), InputHash: res.InputHash, ModelID: "mlp"}, nil},
		{"send proof", sendProof, proof.VerifyOptions{Verifiers: registry(good), ModelHash: proof.ModelHash(model)}, nil},
		{"another measurement", runProof, proof.VerifyOptions{Verifiers: registry(bad)}, proof.ErrPolicyMismatch},
		{"against the vendor's roots", runProof, proof.VerifyOptions{Policy: good, Now: func() time.Time { return hwNow }}, proof.ErrBadEvidence},
		{"without a policy", runProof, proof.VerifyOptions{}, proof.ErrNoPolicy},
		{"simulation allowed does not skip evidence", runProof, proof.VerifyOptions{AllowSimulation: true}, proof.ErrNoPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := proof.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if proof.IsSimulation(p) || len(p.GetAttestation().GetQuote()) != 0 || p.GetEvidence().GetType() != typ {
				t.Fatalf("the proof does not carry %s evidence: %v", typ, p.GetEvidence().GetType())
			}
			r, err := proof.Verify(p, tc.opts)
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Fatalf("Verify: %v, want %v", err, tc.is)
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
	// A flipped byte of the proof's evidence (in the signed body) fails.
	p, _ := proof.ReadFile(runProof)
	p.Evidence.Raw[0x90] ^= 1
	if _, err := proof.Verify(p, proof.VerifyOptions{Verifiers: registry(good)}); !errors.Is(err, proof.ErrBadEvidence) || !strings.Contains(err.Error(), typ) {
		t.Fatalf("tampered evidence: %v, want ErrBadEvidence", err)
	}
}

func sgxOnlyPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`mr_enclave = "` + strings.Repeat("00", 32) + `"
misc_select_hex = "0x0"
misc_mask_hex = "0xffffffff"
attributes_flags_hex = "0x4"
attributes_xfrm_hex = "0x3"
attributes_mask_flags_hex = "0xfffffffffffffffd"
attributes_mask_xfrm_hex = "0xffffffffffffff1b"
allow_debug = false
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTDXWithoutSealingKey: a TDX guest has no sealing key of its own.
// Without sealing_key_file the server serves, keeps models in memory only,
// and refuses, before reading the model, every upload that asks to save
// it, saying why and what to set.
func TestTDXWithoutSealingKey(t *testing.T) {
	pki, err := tdxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tsm.New(pki.TSM(hwNow, nil), tdxtest.Source{PKI: pki, Now: hwNow})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, iss, func(c *server.Config) {
		c.TEE, c.PCCSURL, c.SealingKeyFile = server.TEETDX, "https://pccs.invalid", ""
	})
	reg, err := verifier.ForPolicy(tdxPolicy(t, tdxtest.MRTD()), verifier.Options{Now: func() time.Time { return hwNow }, TDXTestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithHostCertificateFile(srv.HostCertPEM), client.WithAttestedPort(attestedPort(t, srv)),
		client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), client.WithVerifiers(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	model := testserver.Model(t, "mlp.onnx")
	_, err = c.UploadModel(ctx, model, client.WithModelID("kept"), client.SaveModel())
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "sealing_key_file") {
		t.Fatalf("saving upload: %v, want FAILED_PRECONDITION naming sealing_key_file", err)
	}
	if n, _ := srv.Usage(); n != 0 {
		t.Fatalf("the server holds %d models after a refused saving upload", n)
	}
	if _, err := c.UploadModel(ctx, model, client.WithModelID("in-memory")); err != nil {
		t.Fatalf("upload without saving: %v", err)
	}
	x, _ := tensor.New("x", []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	if _, err := c.Run(ctx, "in-memory", []tensor.Tensor{x}); err != nil {
		t.Fatalf("run: %v", err)
	}
	if entries, err := os.ReadDir(filepath.Join(srv.Config.StateDir, "models")); err == nil && len(entries) != 0 {
		t.Fatalf("the state folder holds %d sealed files", len(entries))
	}
}

// TestTDXCluster: two TDX replicas (fake configfs-tsm trees under one
// synthetic Intel PKI, the same measurement) form one cluster: the second
// joins the first with evidence bound to the join connection, both serve
// the same attested certificate, and a model uploaded through one runs
// through the other, its signed proof verifying with the replica that ran
// it. A replica with another MRTD is refused.
func TestTDXCluster(t *testing.T) {
	pki, err := tdxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	issuer := func(change func(*tdxtest.Builder)) attest.Issuer {
		iss, err := tsm.New(pki.TSM(hwNow, change), tdxtest.Source{PKI: pki, Now: hwNow})
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	dir := t.TempDir()
	polFile := filepath.Join(dir, "cluster-policy.toml")
	mrtd := tdxtest.MRTD()
	other := mrtd
	other[0] ^= 0xff
	// The cluster policy accepts both measurements: the same-measurement
	// rule is what must refuse the other one.
	polText := "[tdx]\nmrtd = [\"" + hex.EncodeToString(mrtd[:]) + "\", \"" + hex.EncodeToString(other[:]) + "\"]\nmin_tee_tcb_svn = \"03010200000000000000000000000000\"\n"
	if err := os.WriteFile(polFile, []byte(polText), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	cfg := func(role string, peers ...string) func(*server.Config) {
		return func(c *server.Config) {
			c.Cluster, c.ClusterPeers, c.ClusterAddr = role, peers, "127.0.0.1:0"
			c.ClusterPolicy, c.ClusterModelsDir = polFile, shared
			c.ClusterJoinTimeout = server.Duration(5 * time.Second)
		}
	}
	setup := func(o *server.Options) {
		o.ClusterTestRoot = pki.Root
		o.ClusterNow = func() time.Time { return hwNow }
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r0 := testserver.StartHardwareWith(t, quiet, issuer(nil), setup, cfg(server.ClusterBootstrap))
	r1 := testserver.StartHardwareWith(t, quiet, issuer(nil), setup, cfg(server.ClusterJoin, r0.ClusterAddr()))
	if string(r1.AttestedCertificateDER()) != string(r0.AttestedCertificateDER()) {
		t.Fatal("the joined TDX replica serves another attested certificate")
	}
	reg, err := verifier.ForPolicy(tdxPolicy(t, mrtd), verifier.Options{Now: func() time.Time { return hwNow }, TDXTestRoot: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(srv *testserver.Server) *client.Client {
		c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithHostCertificateFile(srv.HostCertPEM), client.WithAttestedPort(attestedPort(t, srv)),
			client.WithLogger(quiet), client.WithVerifiers(reg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c0, c1 := connect(r0), connect(r1)
	if _, err := c0.UploadModel(ctx, testserver.Model(t, "mlp.onnx"), client.WithModelID("shared")); err != nil {
		t.Fatal(err)
	}
	x, _ := tensor.New("x", []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	res, err := c1.Run(ctx, "shared", []tensor.Tensor{x}, client.Sign())
	if err != nil {
		t.Fatalf("run through the other replica: %v", err)
	}
	if _, err := proof.Verify(res.Proof(), proof.VerifyOptions{Verifiers: reg, RequireReplica: true, ModelID: "shared"}); err != nil {
		t.Fatalf("the run's proof: %v", err)
	}
	// Another MRTD, under the same cluster policy (which accepts it):
	// refused by the peer, for its measurement.
	c, rt := testserver.Prepare(t, true, cfg(server.ClusterJoin, r0.ClusterAddr()), func(c *server.Config) {
		c.ClusterJoinTimeout = server.Duration(2 * time.Second)
	})
	so := server.Options{Config: c, Runtime: rt, Attester: issuer(func(b *tdxtest.Builder) { b.Body.MRTD = other }), Logger: quiet}
	setup(&so)
	if srv, err := server.New(so); err == nil {
		srv.Shutdown(ctx)
		t.Fatal("a TDX replica with another MRTD joined")
	} else if !strings.Contains(err.Error(), "does not satisfy the cluster policy") || !strings.Contains(err.Error(), "measurement") {
		t.Fatalf("a TDX replica with another MRTD: %v, want a refusal naming the measurement", err)
	}
}
