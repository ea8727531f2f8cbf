package blindai06_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server/blindai06"
	"github.com/blindfold-ai/blindfold/tensor"
)

// client06 does what the BlindAI 0.6.3 Python client does, call by call
// (see PROTOCOL-0.6.md): real HTTPS over real TLS.
type client06 struct {
	t                  testing.TB
	unattested, secure *http.Client
	u, a, m            string // base URLs of the three ports
	token              string // sent as Authorization: Bearer when set
	certDER            []byte // the attested certificate, from GET /
	serverHeader       string
}

// connect06 fetches the attested certificate from the unattested port
// (verified against the operator certificate, as REQUESTS_CA_BUNDLE
// would), then trusts only it, for host name blindai-srv, on the other
// ports, and checks that the attested port answers.
func connect06(t testing.TB, srv *testserver.Server) *client06 {
	t.Helper()
	host, err := identity.LoadCertificatePEM(srv.HostCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := &client06{t: t,
		u: "https://" + srv.BlindAI06.Addr(blindai06.Unattested),
		a: "https://" + srv.BlindAI06.Addr(blindai06.Attested),
		m: "https://" + srv.BlindAI06.Addr(blindai06.Management),
	}
	c.unattested = httpClient(host, identity.ServerName)
	resp, err := c.unattested.Get(c.u + "/")
	if err != nil {
		t.Fatalf("GET / on the unattested port: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / on the unattested port: %s: %s", resp.Status, b)
	}
	c.serverHeader = resp.Header.Get("Server")
	if err := cbor.Unmarshal(b, &c.certDER); err != nil {
		t.Fatalf("GET / is not a CBOR byte string: %v", err)
	}
	if !bytes.Equal(c.certDER, srv.AttestedCertificateDER()) {
		t.Fatal("GET / did not return the attested certificate")
	}
	cert, err := x509.ParseCertificate(c.certDER)
	if err != nil {
		t.Fatal(err)
	}
	c.secure = httpClient(cert, "blindai-srv")
	resp, err = c.secure.Get(c.a + "/")
	if err != nil {
		t.Fatalf("GET / on the attested port over the attested TLS: %v", err)
	}
	resp.Body.Close()
	return c
}

func httpClient(ca *x509.Certificate, name string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: false,
	}}
}

// post sends body (CBOR-encoded unless it is []byte) and returns the
// status and the reply's bytes.
func (c *client06) post(url string, body any) (int, []byte) {
	c.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = cbor.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.secure.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// modelArray is a model as 0.6 sends it: one integer per byte.
func modelArray(model []byte) []uint16 {
	out := make([]uint16, len(model))
	for i, b := range model {
		out[i] = uint16(b)
	}
	return out
}

var clientInfo = map[string]any{"uid": "test", "platform_name": "Linux", "platform_arch": "x86_64", "platform_version": "1",
	"platform_release": "6", "user_agent": "blindai_python", "user_agent_version": "0.6.3", "is_colab": false}

type upReply struct {
	Hash    []byte `cbor:"hash"`
	ModelID string `cbor:"model_id"`
}

// upload sends model as 0.6 does and returns its id.
func (c *client06) upload(model []byte) upReply {
	c.t.Helper()
	code, b := c.post(c.m+"/upload", map[string]any{"model": modelArray(model), "length": len(model), "model_name": "m.onnx", "optimize": true, "client_info": clientInfo})
	if code != http.StatusOK {
		c.t.Fatalf("upload: %d: %s", code, b)
	}
	var r upReply
	if err := cbor.Unmarshal(b, &r); err != nil {
		c.t.Fatal(err)
	}
	if sum := sha256.Sum256(model); !bytes.Equal(r.Hash, sum[:]) || r.ModelID == "" {
		c.t.Fatalf("upload reply: hash %x id %q, want hash %x", r.Hash, r.ModelID, sum)
	}
	return r
}

type info06 struct {
	Fact      []int64 `cbor:"fact"`
	DatumType int     `cbor:"datum_type"`
	NodeName  *string `cbor:"node_name"`
}

type tensor06 struct {
	Info      info06 `cbor:"info"`
	BytesData []byte `cbor:"bytes_data"`
}

func to06(t tensor.Tensor, named bool) tensor06 {
	out := tensor06{Info: info06{Fact: t.Shape, DatumType: int(t.DType)}, BytesData: t.Data}
	if named {
		name := t.Name
		out.Info.NodeName = &name
	}
	return out
}

// run runs by id, or by hash when id is "", and returns the status and
// the outputs (on 200).
func (c *client06) run(id, hash string, inputs []tensor06) (int, []tensor06, string) {
	c.t.Helper()
	code, b := c.post(c.a+"/run", map[string]any{"model_id": id, "model_hash": hash, "inputs": inputs, "client_info": clientInfo})
	if code != http.StatusOK {
		return code, nil, string(b)
	}
	var r struct {
		Outputs []tensor06 `cbor:"outputs"`
	}
	if err := cbor.Unmarshal(b, &r); err != nil {
		c.t.Fatal(err)
	}
	return code, r.Outputs, ""
}

func (c *client06) delete(id string) (int, string) {
	c.t.Helper()
	code, b := c.post(c.m+"/delete", map[string]any{"model_id": id})
	return code, string(b)
}

// engineOutputs runs the model in the test's own engine.
func engineOutputs(t *testing.T, srv *testserver.Server, model []byte, inputs []tensor.Tensor) []tensor.Tensor {
	t.Helper()
	sess, err := srv.Runtime.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameOutputs checks outputs bit for bit against the engine's.
func sameOutputs(t *testing.T, what string, got []tensor06, want []tensor.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Info.DatumType != int(w.DType) || fmt.Sprint(g.Info.Fact) != fmt.Sprint(w.Shape) || !bytes.Equal(g.BytesData, w.Data) ||
			g.Info.NodeName == nil || *g.Info.NodeName != w.Name {
			t.Fatalf("%s: output %d is %v, want %s %s%v (%d bytes, equal: %v)", what, i, g.Info, w.Name, w.DType, w.Shape, len(w.Data), bytes.Equal(g.BytesData, w.Data))
		}
	}
}

func randomTensor(r *rand.Rand, name string, d tensor.DType, shape []int64) tensor.Tensor {
	n, err := tensor.ByteSize(d, shape)
	if err != nil {
		panic(err)
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
		if d == tensor.Bool {
			data[i] &= 1
		}
	}
	return tensor.Tensor{Name: name, DType: d, Shape: shape, Data: data}
}

// TestClient063Sequence follows the BlindAI 0.6.3 client through a
// simulation server: GET / with the mock Server header, the attested
// port's GET /, uploads as integer arrays, runs by id and by hash with
// every type, several inputs and outputs, and delete.
func TestClient063Sequence(t *testing.T) {
	srv := testserver.Start(t, testserver.BlindAI06On)
	c := connect06(t, srv)
	if !strings.Contains(c.serverHeader, "mock") {
		t.Fatalf("a simulation server's Server header %q does not say mock", c.serverHeader)
	}
	// Quote and collateral do not exist in simulation.
	for _, p := range []string{"/quote", "/collateral"} {
		resp, err := c.unattested.Get(c.u + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Fatalf("GET %s in simulation: %s, want 412", p, resp.Status)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range tensor.DTypes() {
		model := testserver.Model(t, onnxgen.IdentityFile(d))
		up := c.upload(model)
		in := randomTensor(r, "x", d, []int64{2, 3})
		want := engineOutputs(t, srv, model, []tensor.Tensor{in})
		code, out, msg := c.run(up.ModelID, "", []tensor06{to06(in, false)})
		if code != http.StatusOK {
			t.Fatalf("%s: run by id: %d %s", d, code, msg)
		}
		sameOutputs(t, d.String()+" by id", out, want)
		code, out, msg = c.run("", hex.EncodeToString(up.Hash), []tensor06{to06(in, true)})
		if code != http.StatusOK {
			t.Fatalf("%s: run by hash: %d %s", d, code, msg)
		}
		sameOutputs(t, d.String()+" by hash", out, want)
		if code, msg := c.delete(up.ModelID); code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, msg)
		}
		if code, _, _ := c.run(up.ModelID, "", []tensor06{to06(in, false)}); code != http.StatusNotFound {
			t.Fatalf("run after delete: %d, want 404", code)
		}
		if code, _ := c.delete(up.ModelID); code != http.StatusNotFound {
			t.Fatalf("second delete: %d, want 404", code)
		}
	}
	// Several inputs and outputs, by position and by name in another order.
	model := testserver.Model(t, "multi.onnx")
	up := c.upload(model)
	a := randomTensor(r, "a", tensor.F32, []int64{2, 3})
	b := randomTensor(r, "b", tensor.I64, []int64{3})
	mask := randomTensor(r, "mask", tensor.Bool, []int64{2, 3})
	want := engineOutputs(t, srv, model, []tensor.Tensor{a, b, mask})
	code, out, msg := c.run(up.ModelID, "", []tensor06{to06(a, false), to06(b, false), to06(mask, false)})
	if code != http.StatusOK {
		t.Fatalf("multi: %d %s", code, msg)
	}
	sameOutputs(t, "multi", out, want)
	code, out, msg = c.run("", hex.EncodeToString(up.Hash), []tensor06{to06(mask, true), to06(a, true), to06(b, true)})
	if code != http.StatusOK {
		t.Fatalf("multi by name: %d %s", code, msg)
	}
	sameOutputs(t, "multi by name", out, want)
}

// TestLargeModel uploads a 1 MiB model as 0.6 does (about 2 MB of CBOR,
// over many TLS records and decoder chunks) and runs it; its hash and
// outputs match.
func TestLargeModel(t *testing.T) {
	srv := testserver.Start(t, testserver.BlindAI06On)
	c := connect06(t, srv)
	model, err := onnxgen.Scaled(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	up := c.upload(model) // checks the hash
	in := randomTensor(rand.New(rand.NewPCG(5, 6)), "x", tensor.F32, []int64{2, 512})
	for i := 0; i < len(in.Data); i += 4 {
		in.Data[i+3] &= 0x3f // finite values
	}
	code, out, msg := c.run(up.ModelID, "", []tensor06{to06(in, false)})
	if code != http.StatusOK {
		t.Fatalf("run: %d %s", code, msg)
	}
	sameOutputs(t, "large model", out, engineOutputs(t, srv, model, []tensor.Tensor{in}))
}

// TestOffByDefault: without blindai06 = true no 0.6 port is opened.
func TestOffByDefault(t *testing.T) {
	srv := testserver.Start(t)
	for _, p := range []int{blindai06.Unattested, blindai06.Attested, blindai06.Management} {
		if a := srv.BlindAI06.Addr(p); a != "" {
			t.Fatalf("port %d listens on %s with blindai06 off", p, a)
		}
	}
}

// TestOutputBuffersGivenBack: a 0.6 run's static output comes from the
// server's buffer pool and goes back to it once the reply is written.
func TestOutputBuffersGivenBack(t *testing.T) {
	srv := testserver.Start(t, testserver.BlindAI06On)
	c := connect06(t, srv)
	model, err := onnxgen.Slow(128, 1) // y = x·x, float32 [128,128]: 64 KiB
	if err != nil {
		t.Fatal(err)
	}
	up := c.upload(model)
	base := bufpool.Outstanding()
	r := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		in := randomTensor(r, "x", tensor.F32, []int64{128, 128})
		want := engineOutputs(t, srv, model, []tensor.Tensor{in})
		code, out, msg := c.run(up.ModelID, "", []tensor06{to06(in, false)})
		if code != http.StatusOK {
			t.Fatalf("run: %d %s", code, msg)
		}
		sameOutputs(t, "slow", out, want)
	}
	// The handler gives the buffers back just after writing the reply.
	deadline := time.Now().Add(5 * time.Second)
	for bufpool.Outstanding() != base && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := bufpool.Outstanding(); got != base {
		t.Fatalf("%d output buffers not given back", got-base)
	}
}
