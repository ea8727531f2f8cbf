package blindai06_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/server/blindai06"
	"github.com/blindfold-ai/blindfold/tensor"
)

var quiet = client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func grpcClient(t *testing.T, srv *testserver.Server, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, srv.UntrustedAddr, append([]client.Option{client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation(), quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCrossProtocol: a model uploaded over gRPC runs over HTTP and the
// reverse, with the same outputs; deleting over one protocol makes the
// other answer not found.
func TestCrossProtocol(t *testing.T) {
	srv := testserver.Start(t, testserver.BlindAI06On)
	h := connect06(t, srv)
	g := grpcClient(t, srv)
	ctx := context.Background()
	model := testserver.Model(t, "multi.onnx")
	r := mrand.New(mrand.NewPCG(3, 4))
	in := []tensor.Tensor{randomTensor(r, "a", tensor.F32, []int64{2, 3}), randomTensor(r, "b", tensor.I64, []int64{3}), randomTensor(r, "mask", tensor.Bool, []int64{2, 3})}
	want := engineOutputs(t, srv, model, in)
	in06 := []tensor06{to06(in[0], false), to06(in[1], false), to06(in[2], false)}

	// gRPC upload, HTTP run, HTTP delete, gRPC not found.
	if _, err := g.UploadModel(ctx, model, client.WithModelID("from-grpc")); err != nil {
		t.Fatal(err)
	}
	code, out, msg := h.run("from-grpc", "", in06)
	if code != http.StatusOK {
		t.Fatalf("HTTP run of a gRPC upload: %d %s", code, msg)
	}
	sameOutputs(t, "HTTP run of a gRPC upload", out, want)
	if code, msg := h.delete("from-grpc"); code != http.StatusOK {
		t.Fatalf("HTTP delete of a gRPC upload: %d %s", code, msg)
	}
	if _, err := g.Run(ctx, "from-grpc", in); status.Code(err) != codes.NotFound {
		t.Fatalf("gRPC run after HTTP delete: %v, want NotFound", err)
	}

	// HTTP upload, gRPC run, gRPC delete, HTTP not found.
	up := h.upload(model)
	res, err := g.Run(ctx, up.ModelID, in)
	if err != nil {
		t.Fatalf("gRPC run of an HTTP upload: %v", err)
	}
	for i, w := range want {
		if o := res.Outputs[i]; o.Name != w.Name || o.DType != w.DType || !bytes.Equal(o.Data, w.Data) {
			t.Fatalf("gRPC output %d differs from the engine's", i)
		}
	}
	if err := g.DeleteModel(ctx, up.ModelID); err != nil {
		t.Fatalf("gRPC delete of an HTTP upload: %v", err)
	}
	if code, _, _ := h.run(up.ModelID, "", in06); code != http.StatusNotFound {
		t.Fatalf("HTTP run after gRPC delete: %d, want 404", code)
	}
	if code, _ := h.delete(up.ModelID); code != http.StatusNotFound {
		t.Fatalf("HTTP delete after gRPC delete: %d, want 404", code)
	}
	// The id is taken across protocols while the model lives.
	if _, err := g.UploadModel(ctx, model, client.WithModelID("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.UploadModel(ctx, model, client.WithModelID("x")); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second gRPC upload under the same id: %v", err)
	}
}

// TestAuth: with auth required, 0.6 clients (no token) can run public
// models only; Blindfold tokens in Authorization: Bearer work over HTTP
// like over gRPC, with the same owners.
func TestAuth(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(keys, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	token := func(sub string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv := testserver.Start(t, testserver.BlindAI06On, func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{keys}
	})
	ctx := context.Background()
	alice := grpcClient(t, srv, client.WithToken(token("alice")))
	model := testserver.Model(t, "identity_float32.onnx")
	if _, err := alice.UploadModel(ctx, model, client.WithModelID("pub"), client.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UploadModel(ctx, model, client.WithModelID("priv")); err != nil {
		t.Fatal(err)
	}
	in := []tensor06{to06(tensor.Tensor{Name: "x", DType: tensor.F32, Shape: []int64{1, 3}, Data: make([]byte, 12)}, false)}

	anon := connect06(t, srv)
	if code, _, msg := anon.run("pub", "", in); code != http.StatusOK {
		t.Fatalf("tokenless run of a public model: %d %s", code, msg)
	}
	if code, _, _ := anon.run("priv", "", in); code != http.StatusNotFound {
		t.Fatalf("tokenless run of a private model: %d, want 404", code)
	}
	code, b := anon.post(anon.m+"/upload", map[string]any{"model": modelArray(model), "length": len(model)})
	if code != http.StatusUnauthorized || !strings.Contains(string(b), "bearer token") {
		t.Fatalf("tokenless upload: %d %s, want 401 naming the bearer token", code, b)
	}
	if code, _ := anon.delete("pub"); code != http.StatusUnauthorized {
		t.Fatalf("tokenless delete: %d, want 401", code)
	}
	anon.token = "not-a-jwt"
	if code, _, _ := anon.run("pub", "", in); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d, want 401", code)
	}

	// Alice over HTTP sees her own models; bob does not.
	a06 := connect06(t, srv)
	a06.token = token("alice")
	if code, _, msg := a06.run("priv", "", in); code != http.StatusOK {
		t.Fatalf("alice's run of her private model over HTTP: %d %s", code, msg)
	}
	up := a06.upload(model)
	if _, err := alice.Run(ctx, up.ModelID, []tensor.Tensor{{Name: "x", DType: tensor.F32, Shape: []int64{1, 3}, Data: make([]byte, 12)}}); err != nil {
		t.Fatalf("alice's gRPC run of her HTTP upload: %v", err)
	}
	b06 := connect06(t, srv)
	b06.token = token("bob")
	if code, _, _ := b06.run(up.ModelID, "", in); code != http.StatusNotFound {
		t.Fatalf("bob's run of alice's model: %d, want 404", code)
	}
	if code, _ := b06.delete(up.ModelID); code != http.StatusNotFound {
		t.Fatalf("bob's delete of alice's model: %d, want 404", code)
	}
}

// hostileServer is a simulation server with small limits and a short
// progress timeout.
func hostileServer(t *testing.T) *testserver.Server {
	return testserver.Start(t, testserver.BlindAI06On, func(c *server.Config) {
		c.MaxModelBytes = 64 << 10
		c.MaxInputBytes = 4 << 10
		c.StreamProgressTimeout = server.Duration(500 * time.Millisecond)
	})
}

// TestBadInputs: every malformed or hostile request gets its status and
// says what was wrong; the server keeps serving.
func TestBadInputs(t *testing.T) {
	srv := hostileServer(t)
	c := connect06(t, srv)
	model := testserver.Model(t, "identity_float32.onnx")
	up := c.upload(model)
	good := []tensor06{to06(tensor.Tensor{Name: "x", DType: tensor.F32, Shape: []int64{2, 3}, Data: make([]byte, 24)}, false)}
	deep := bytes.Repeat([]byte{0x81}, 10000)
	runWith := func(f func(m map[string]any)) map[string]any {
		m := map[string]any{"model_id": up.ModelID, "model_hash": "", "inputs": good, "client_info": nil}
		f(m)
		return m
	}
	goodUpload, _ := encodeCBOR(map[string]any{"model": modelArray(model), "length": len(model)})
	cases := []struct {
		name, url string
		body      any
		code      int
		says      string
	}{
		{"run: not CBOR", "/run", []byte{0xff, 0x00, 0x12}, 400, "CBOR"},
		{"run: empty body", "/run", []byte{}, 400, "empty"},
		{"run: not a map", "/run", []int{1, 2}, 400, "CBOR"},
		{"run: model_id a number", "/run", runWith(func(m map[string]any) { m["model_id"] = 5 }), 400, "model_id"},
		{"run: inputs a string", "/run", runWith(func(m map[string]any) { m["inputs"] = "x" }), 400, "CBOR"},
		{"run: fact of text", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []any{map[string]any{"info": map[string]any{"fact": []string{"a"}, "datum_type": 0}, "bytes_data": []byte{}}}
		}), 400, "CBOR"},
		{"run: huge array", "/run", append([]byte{0xa1, 0x66, 'i', 'n', 'p', 'u', 't', 's', 0x9a, 0x7f, 0xff, 0xff, 0xff}, 0x80), 400, "max number of elements"},
		{"run: deep nesting", "/run", append([]byte{0xa1, 0x66, 'i', 'n', 'p', 'u', 't', 's'}, deep...), 400, "nested"},
		{"run: truncated", "/run", mustCBOR(t, runWith(func(map[string]any) {}))[:40], 400, "truncated"},
		{"run: duplicate key", "/run", []byte{0xa2, 0x68, 'm', 'o', 'd', 'e', 'l', '_', 'i', 'd', 0x61, 'a', 0x68, 'm', 'o', 'd', 'e', 'l', '_', 'i', 'd', 0x61, 'b'}, 400, "duplicate"},
		{"run: unknown model", "/run", runWith(func(m map[string]any) { m["model_id"] = "nope" }), 404, "nope"},
		{"run: unknown hash", "/run", runWith(func(m map[string]any) { m["model_id"] = ""; m["model_hash"] = strings.Repeat("ab", 32) }), 404, "SHA-256"},
		{"run: bad hash", "/run", runWith(func(m map[string]any) { m["model_id"] = ""; m["model_hash"] = "xyz" }), 400, "64 hex"},
		{"run: both id and hash", "/run", runWith(func(m map[string]any) { m["model_hash"] = strings.Repeat("ab", 32) }), 400, "not both"},
		{"run: no model", "/run", runWith(func(m map[string]any) { m["model_id"] = "" }), 400, "model_id or model_hash"},
		{"run: wrong dtype", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []tensor06{to06(tensor.Tensor{Name: "x", DType: tensor.I32, Shape: []int64{2, 3}, Data: make([]byte, 24)}, false)}
		}), 400, "expected float32"},
		{"run: unknown dtype", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []any{map[string]any{"info": map[string]any{"fact": []int{2, 3}, "datum_type": 1 << 40}, "bytes_data": make([]byte, 24)}}
		}), 400, "datum_type"},
		{"run: wrong shape", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []tensor06{to06(tensor.Tensor{Name: "x", DType: tensor.F32, Shape: []int64{2, 4}, Data: make([]byte, 32)}, false)}
		}), 400, "dimension 1"},
		{"run: short data", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []tensor06{{Info: info06{Fact: []int64{2, 3}}, BytesData: make([]byte, 20)}}
		}), 400, "x"},
		{"run: missing input", "/run", runWith(func(m map[string]any) { m["inputs"] = []tensor06{} }), 400, "missing input"},
		{"run: unknown input name", "/run", runWith(func(m map[string]any) {
			name := "nope"
			m["inputs"] = []tensor06{{Info: info06{Fact: []int64{2, 3}, NodeName: &name}, BytesData: make([]byte, 24)}}
		}), 400, "unknown input name"},
		{"run: declared shape over the limit", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []tensor06{{Info: info06{Fact: []int64{1 << 40, 3}}, BytesData: nil}}
		}), 413, "max_input_bytes"},
		{"run: body over max_input_bytes", "/run", runWith(func(m map[string]any) {
			m["inputs"] = []tensor06{{Info: info06{Fact: []int64{1 << 20, 3}}, BytesData: make([]byte, 2<<20)}}
		}), 413, "max_input_bytes"},
		{"upload: not a map", "/upload", []byte{0x80}, 400, "CBOR map"},
		{"upload: no model", "/upload", map[string]any{"length": 3}, 400, "no \"model\""},
		{"upload: model a string", "/upload", map[string]any{"model": "abc"}, 400, "model must be"},
		{"upload: element over 255", "/upload", map[string]any{"model": []int{1, 2, 256}}, 400, "model[2]"},
		{"upload: negative element", "/upload", map[string]any{"model": []int{1, -2}}, 400, "model[1]"},
		{"upload: length mismatch", "/upload", map[string]any{"model": modelArray(model), "length": len(model) + 1}, 400, "length says"},
		{"upload: length a string", "/upload", map[string]any{"model": modelArray(model), "length": "x"}, 400, "length must be"},
		{"upload: not ONNX", "/upload", map[string]any{"model": []int{1, 2, 3, 4}}, 400, "not a valid ONNX model"},
		{"upload: empty model", "/upload", map[string]any{"model": []int{}}, 400, "empty upload"},
		{"upload: huge array", "/upload", []byte{0xa1, 0x65, 'm', 'o', 'd', 'e', 'l', 0x9b, 0, 0, 1, 0, 0, 0, 0, 0, 1}, 413, "max_model_bytes"},
		{"upload: indefinite array over the limit", "/upload", append(append([]byte{0xa1, 0x65, 'm', 'o', 'd', 'e', 'l', 0x9f}, bytes.Repeat([]byte{1}, 70<<10)...), 0xff), 413, "max_model_bytes"},
		{"upload: body over the limit", "/upload", append([]byte{0xa1, 0x65, 'm', 'o', 'd', 'e', 'l', 0x5a, 0, 0x10, 0, 0}, make([]byte, 1<<20)...), 413, "max_model_bytes"},
		{"upload: truncated", "/upload", goodUpload[:len(goodUpload)/2], 400, "truncated"},
		{"upload: trailing bytes", "/upload", append(append([]byte{}, goodUpload...), 0), 400, "follow"},
		{"upload: deep client_info", "/upload", append([]byte{0xa1, 0x6b, 'c', 'l', 'i', 'e', 'n', 't', '_', 'i', 'n', 'f', 'o'}, deep...), 400, "deeper"},
		{"upload: huge model_name", "/upload", map[string]any{"model": modelArray(model), "model_name": strings.Repeat("n", 70<<10)}, 400, "over"},
		{"delete: empty id", "/delete", map[string]any{"model_id": ""}, 400, "model_id is empty"},
		{"delete: unknown", "/delete", map[string]any{"model_id": "nope"}, 404, "nope"},
		{"delete: not CBOR", "/delete", []byte{0x1f}, 400, "CBOR"},
	}
	for _, tc := range cases {
		base := c.m
		if tc.url == "/run" {
			base = c.a
		}
		code, b := c.post(base+tc.url, tc.body)
		if code != tc.code || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, code, b, tc.code, tc.says)
		}
		// The server keeps serving.
		if code, _, msg := c.run(up.ModelID, "", good); code != http.StatusOK {
			t.Fatalf("after %s: a good run fails: %d %s", tc.name, code, msg)
		}
	}
	// Wrong methods and paths.
	for _, p := range []struct {
		method, url string
		code        int
	}{{"GET", c.a + "/run", 405}, {"GET", c.m + "/upload", 405}, {"POST", c.u + "/", 405}, {"GET", c.a + "/nope", 404}, {"GET", c.u + "/nope", 404}, {"POST", c.m + "/run", 404}} {
		req, _ := http.NewRequest(p.method, p.url, nil)
		cl := c.secure
		if strings.HasPrefix(p.url, c.u) {
			cl = c.unattested
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != p.code {
			t.Errorf("%s %s: %d, want %d", p.method, p.url, resp.StatusCode, p.code)
		}
	}
	if n, _ := srv.Usage(); n != 1 {
		t.Fatalf("the server holds %d models after the bad uploads, want 1", n)
	}
}

// TestSlowBody: a client that stops sending mid-body gets 504 after
// stream_progress_timeout, and what it held is released.
func TestSlowBody(t *testing.T) {
	srv := hostileServer(t)
	c := connect06(t, srv)
	cert, err := x509.ParseCertificate(c.certDER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	for _, p := range []struct{ addr, path string }{{srv.BlindAI06.Addr(blindai06.Management), "/upload"}, {srv.BlindAI06.Addr(blindai06.Attested), "/run"}} {
		conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: pool, ServerName: "blindai-srv"})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: blindai-srv\r\nContent-Length: 1000\r\n\r\n", p.path)
		conn.Write([]byte{0xa1, 0x65, 'm', 'o', 'd', 'e', 'l', 0x99, 0x03, 0xe0, 1, 2})
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := readLine(conn)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: no answer to a stalled body: %v", p.path, err)
		}
		if !strings.HasPrefix(line, "HTTP/1.1 504") {
			t.Fatalf("%s: a stalled body got %q, want 504", p.path, line)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: answered after %s", p.path, d)
		}
	}
	if _, bytes := srv.Usage(); bytes != 0 {
		t.Fatalf("%d model bytes still reserved after the stalled upload", bytes)
	}
	// Still serving.
	c.upload(testserver.Model(t, "identity_float32.onnx"))
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 200 {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return strings.TrimSpace(string(b)), nil
		}
		b = append(b, one[0])
	}
	return string(b), nil
}

func encodeCBOR(v any) ([]byte, error) { return cbor.Marshal(v) }

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
