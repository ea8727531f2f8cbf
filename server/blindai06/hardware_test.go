package blindai06_test

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/gramine"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/pccs/pccstest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// hwNow is the time the test evidence is made and verified at.
var hwNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestClient063Hardware follows the 0.6.3 client against a hardware-mode
// server whose only fakes are Gramine's /dev/attestation and the PCCS:
// the Server header does not say mock; GET /quote and /collateral give a
// quote that verifies with that collateral, binds the certificate from
// GET / and passes the enclave policy; then the attested ports serve.
func TestClient063Hardware(t *testing.T) {
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
	pccsClient := &pccs.Client{}
	ga, err := gramine.New(dir, &pccs.Cache{Client: pccsClient, Now: func() time.Time { return hwNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartHardware(t, ga, testserver.BlindAI06On)
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

	c := connect06(t, srv)
	if strings.Contains(c.serverHeader, "mock") {
		t.Fatalf("a hardware server's Server header %q says mock", c.serverHeader)
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := c.unattested.Get(c.u + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := cbor.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var quote []byte
	get("/quote", &quote)
	var fields map[string]any
	get("/collateral", &fields)
	want := []string{"version", "pck_certificate", "pck_crl_issuer_chain", "pck_signing_chain", "root_ca_crl", "pck_crl", "tcb_info", "tcb_info_issuer_chain", "qe_identity", "qe_identity_issuer_chain"}
	if len(fields) != len(want) {
		t.Fatalf("collateral has %d fields, want exactly %v", len(fields), want)
	}
	for _, k := range want[1:] {
		if s, ok := fields[k].(string); !ok || s == "" {
			t.Fatalf("collateral field %s is %T, want non-empty text", k, fields[k])
		}
	}
	var col struct {
		Version               uint32 `cbor:"version"`
		PCKCertificate        string `cbor:"pck_certificate"`
		PCKCRLIssuerChain     string `cbor:"pck_crl_issuer_chain"`
		PCKSigningChain       string `cbor:"pck_signing_chain"`
		RootCACRL             string `cbor:"root_ca_crl"`
		PCKCRL                string `cbor:"pck_crl"`
		TCBInfo               string `cbor:"tcb_info"`
		TCBInfoIssuerChain    string `cbor:"tcb_info_issuer_chain"`
		QEIdentity            string `cbor:"qe_identity"`
		QEIdentityIssuerChain string `cbor:"qe_identity_issuer_chain"`
	}
	get("/collateral", &col)
	if fake.Hits("/sgx/certification/v4/tcb") == 0 {
		t.Fatal("the collateral did not come from the PCCS")
	}
	res, err := sgx.Verify(quote, &sgx.Collateral{
		Version: col.Version, PCKCertificate: col.PCKCertificate, PCKCRLIssuerChain: col.PCKCRLIssuerChain, PCKSigningChain: col.PCKSigningChain,
		RootCACRL: col.RootCACRL, PCKCRL: col.PCKCRL, TCBInfo: col.TCBInfo, TCBInfoIssuerChain: col.TCBInfoIssuerChain,
		QEIdentity: col.QEIdentity, QEIdentityIssuerChain: col.QEIdentityIssuerChain,
	}, sgx.Options{Now: func() time.Time { return hwNow }, TestRoot: pki.Root})
	if err != nil {
		t.Fatalf("the quote does not verify with the collateral served: %v", err)
	}
	if sum := sha256.Sum256(c.certDER); string(res.ReportBody.ReportData[:32]) != string(sum[:]) {
		t.Fatal("report_data[0:32] is not SHA-256 of the certificate from GET /")
	}
	if err := attesttest.Policy(attesttest.MREnclave()).Check(res); err != nil {
		t.Fatal(err)
	}
	model := testserver.Model(t, "identity_float32.onnx")
	up := c.upload(model)
	in := tensor.Tensor{Name: "x", DType: tensor.F32, Shape: []int64{1, 3}, Data: []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}}
	code, out, msg := c.run(up.ModelID, "", []tensor06{to06(in, false)})
	if code != http.StatusOK {
		t.Fatalf("run: %d %s", code, msg)
	}
	sameOutputs(t, "hardware run", out, engineOutputs(t, srv, model, []tensor.Tensor{in}))
	if code, msg := c.delete(up.ModelID); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, msg)
	}
}

// TestEvidenceUnavailable: when no evidence can be had (PCCS down), GET
// /quote and /collateral answer 503 saying why, and the ports keep
// serving.
func TestEvidenceUnavailable(t *testing.T) {
	pki, err := sgxtest.NewPKI(hwNow)
	if err != nil {
		t.Fatal(err)
	}
	att := attesttest.NewAttester(pki, hwNow)
	srv := testserver.StartHardware(t, att, testserver.BlindAI06On)
	c := connect06(t, srv)
	att.Err = errors.New("PCCS unreachable: connection refused")
	for _, p := range []string{"/quote", "/collateral"} {
		resp, err := c.unattested.Get(c.u + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "PCCS unreachable") {
			t.Fatalf("GET %s without evidence: %s %q, want 503 saying why", p, resp.Status, b)
		}
	}
	att.Err = nil
	var quote []byte
	resp, err := c.unattested.Get(c.u + "/quote")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := cbor.NewDecoder(resp.Body).Decode(&quote); err != nil || len(quote) == 0 {
		t.Fatalf("GET /quote once evidence is back: %s %v", resp.Status, err)
	}
}
