package soak

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/server/blindai06"
	"github.com/blindfold-ai/blindfold/tensor"
)

// client06 speaks BlindAI 0.6's HTTP/CBOR protocol, as the blindai 0.6
// Python client does, to the soak's server.
type client06 struct {
	secure   *http.Client
	run, mgm string // base URLs of the attested and management ports
}

// connect06 gets the attested certificate from the unattested port and
// trusts only it on the others.
func connect06(ctx context.Context, fe *blindai06.Frontend, hostCertPEM string) (*client06, error) {
	host, err := identity.LoadCertificatePEM(hostCertPEM)
	if err != nil {
		return nil, err
	}
	unattested := newHTTPClient(host)
	defer unattested.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+fe.Addr(blindai06.Unattested)+"/", nil)
	resp, err := unattested.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var der []byte
	if err := cbor.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&der); err != nil {
		return nil, fmt.Errorf("GET /: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &client06{secure: newHTTPClient(cert), run: "https://" + fe.Addr(blindai06.Attested), mgm: "https://" + fe.Addr(blindai06.Management)}, nil
}

func newHTTPClient(ca *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: identity.ServerName}}}
}

func (c *client06) close() { c.secure.CloseIdleConnections() }

// post sends body (CBOR unless []byte); a non-200 answer is an error with
// the gRPC code of its HTTP status.
func (c *client06) post(ctx context.Context, url string, body, reply any) error {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = cbor.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	resp, err := c.secure.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if reply == nil {
			return nil
		}
		return cbor.Unmarshal(b, reply)
	case http.StatusBadRequest:
		return status.Error(codes.InvalidArgument, string(b))
	case http.StatusNotFound:
		return status.Error(codes.NotFound, string(b))
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return status.Error(codes.ResourceExhausted, string(b))
	default:
		return status.Errorf(codes.Unknown, "HTTP %d: %s", resp.StatusCode, b)
	}
}

type tensor06 struct {
	Info struct {
		Fact      []int64 `cbor:"fact"`
		DatumType int     `cbor:"datum_type"`
		NodeName  *string `cbor:"node_name"`
	} `cbor:"info"`
	BytesData []byte `cbor:"bytes_data"`
}

func tensors06(ts []tensor.Tensor) []tensor06 {
	out := make([]tensor06, len(ts))
	for i, t := range ts {
		out[i].Info.Fact, out[i].Info.DatumType, out[i].BytesData = t.Shape, int(t.DType), t.Data
	}
	return out
}

func (c *client06) runModel(ctx context.Context, id string, inputs []tensor.Tensor) ([]tensor06, error) {
	var reply struct {
		Outputs []tensor06 `cbor:"outputs"`
	}
	err := c.post(ctx, c.run+"/run", map[string]any{"model_id": id, "model_hash": "", "inputs": tensors06(inputs), "client_info": nil}, &reply)
	return reply.Outputs, err
}

func (c *client06) upload(ctx context.Context, model []byte) (string, error) {
	ints := make([]uint16, len(model))
	for i, b := range model {
		ints[i] = uint16(b)
	}
	var reply struct {
		ModelID string `cbor:"model_id"`
	}
	err := c.post(ctx, c.mgm+"/upload", map[string]any{"model": ints, "length": len(model), "model_name": "soak", "optimize": false, "client_info": map[string]any{}}, &reply)
	return reply.ModelID, err
}

func (c *client06) delete(ctx context.Context, id string) error {
	return c.post(ctx, c.mgm+"/delete", map[string]any{"model_id": id}, nil)
}

func compare06(out []tensor06, err error, want []tensor.Tensor) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	if len(out) != len(want) {
		return fmt.Sprintf("%d outputs, want %d", len(out), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(out[i].BytesData, w.Data) || out[i].Info.DatumType != int(w.DType) {
			return fmt.Sprintf("output %q differs from the engine's", w.Name)
		}
	}
	return ""
}

// drive06 sends one BlindAI 0.6 request of a random kind and checks its
// answer. Uploads, and the runs and deletes of their models, are not cut
// by the end of the load (the server picks the id, so a cut upload could
// leave a model nobody knows).
func drive06(ctx context.Context, c *client06, r *rand.Rand, work []workload, copies int, save bool,
	record func(string, error, string), expect func(string, error, codes.Code)) {
	w := work[r.IntN(len(work))]
	shared := sharedID(w, r.IntN(copies), save)
	deadline, hasDeadline := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || (hasDeadline && !time.Now().Before(deadline)) }
	switch p := r.IntN(100); {
	case p < 45:
		out, err := c.runModel(ctx, shared, w.inputs)
		if !over() {
			record("http-run", err, compare06(out, err, w.want))
		}
	case p < 65:
		bg, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id, err := c.upload(bg, w.model)
		record("http-upload", err, errString(err))
		if err != nil {
			return
		}
		out, err := c.runModel(bg, id, w.inputs)
		record("http-run-own", err, compare06(out, err, w.want))
		err = c.delete(bg, id)
		record("http-delete", err, errString(err))
	case p < 78:
		err := c.post(ctx, c.run+"/run", []byte{0xa1, 0x68, 'm', 'o', 'd', 'e', 'l', '_', 'i', 'd', 0x9f}, nil)
		if !over() {
			expect("http-bad-cbor", err, codes.InvalidArgument)
		}
	case p < 90:
		_, err := c.runModel(ctx, "absent-http", w.inputs)
		if !over() {
			expect("http-not-found", err, codes.NotFound)
		}
	default:
		bad := append([]tensor.Tensor(nil), w.inputs...)
		bad[0].Shape = append([]int64{1}, bad[0].Shape...)
		_, err := c.runModel(ctx, shared, bad)
		if !over() {
			expect("http-bad-input", err, codes.InvalidArgument)
		}
	}
}
