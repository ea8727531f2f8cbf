// Package blindai06 serves BlindAI 0.6's protocol (HTTP/1.1 with CBOR
// bodies, as spoken by the blindai Python package 0.6.x) on three HTTPS
// ports beside Blindfold's gRPC ports: the unattested port (GET /, /quote,
// /collateral; operator certificate), the attested port (POST /run) and
// the model management port (POST /upload, /delete), both with the
// attested certificate. Every request goes to the server's Core: the same
// store, engine, limits, owners and sealing as gRPC, so a model uploaded
// through one protocol runs through the other. It is on when the
// configuration sets blindai06 = true.
package blindai06

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/server"
)

// Name is the front end's name in logs and errors.
const Name = server.BlindAI06Frontend

// ServerHeader is the Server header of every reply. BlindAI 0.6 clients
// treat a server whose header contains "mock" as a simulation server; a
// simulation server adds " (mock: simulation, no TEE)".
const ServerHeader = "blindfold"

// maxHeaderBytes bounds a request's headers.
const maxHeaderBytes = 64 << 10

// replyWriteTime bounds the writing of a reply, so that a client that
// stops reading cannot hold a connection and its reply forever.
const replyWriteTime = 5 * time.Minute

// Frontend serves the three 0.6 ports. Make one with New and give it to
// server.Options.Frontends.
type Frontend struct {
	mu      sync.Mutex
	core    *server.Core
	servers []*http.Server
	addrs   [3]string
}

// New returns the 0.6 front end; it serves only when the configuration
// sets blindai06 = true.
func New() *Frontend { return &Frontend{} }

// Name implements server.Frontend.
func (f *Frontend) Name() string { return Name }

// Port numbers of the three ports, for Addr.
const (
	// Unattested is the port of GET /, /quote and /collateral.
	Unattested = iota
	// Attested is the port of POST /run.
	Attested
	// Management is the port of POST /upload and /delete.
	Management
)

// Addr returns the bound address of one of the ports (Unattested,
// Attested, Management), or "" when the front end does not serve.
func (f *Frontend) Addr(port int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[port]
}

// Start implements server.Frontend: it listens on the three ports and
// serves in the background.
func (f *Frontend) Start(c *server.Core) error {
	cfg := c.Config()
	if !cfg.BlindAI06 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.core != nil {
		return errors.New("already started")
	}
	f.core = c
	h := &handler{core: c, log: c.Logger(), simulation: cfg.Simulation}
	ports := []struct {
		addr  string
		name  string
		cert  tls.Certificate
		minV  uint16
		route http.Handler
	}{
		{cfg.BlindAI06UnattestedAddr, "blindai06-unattested", c.HostCertificate(), tls.VersionTLS12, http.HandlerFunc(h.unattested)},
		{cfg.BlindAI06AttestedAddr, "blindai06-attested", c.AttestedCertificate(), tls.VersionTLS13, http.HandlerFunc(h.attested)},
		{cfg.BlindAI06ManagementAddr, "blindai06-management", c.AttestedCertificate(), tls.VersionTLS13, http.HandlerFunc(h.management)},
	}
	var lis []net.Listener
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			f.core = nil
			return fmt.Errorf("%s port: %w", p.name, err)
		}
		lis = append(lis, l)
	}
	for i, p := range ports {
		srv := &http.Server{
			Handler:           h.guard(p.name, p.route),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: p.minV, NextProtos: []string{"http/1.1"}},
			ReadHeaderTimeout: time.Duration(cfg.HandshakeTimeout),
			IdleTimeout:       time.Duration(cfg.IdleTimeout),
			MaxHeaderBytes:    maxHeaderBytes,
			// Connection-level errors (TLS handshakes) go to the debug log.
			ErrorLog: slog.NewLogLogger(c.Logger().Handler(), slog.LevelDebug),
			ConnState: func(conn net.Conn, st http.ConnState) {
				if st != http.StateNew {
					return
				}
				if cfg.Simulation {
					c.Logger().Warn(server.SimulationWarning, "port", p.name, "remote", conn.RemoteAddr().String())
					return
				}
				c.Logger().Debug("connection", "port", p.name, "remote", conn.RemoteAddr().String())
			},
			// HTTP/2 is not offered: 0.6 clients speak HTTP/1.1.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		}
		f.servers = append(f.servers, srv)
		f.addrs[i] = lis[i].Addr().String()
		l := netutil.LimitListener(lis[i], cfg.MaxConnections)
		go func() {
			if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				c.Logger().Error("BlindAI 0.6 port stopped", "port", p.name, "err", err)
			}
		}()
	}
	c.Logger().Info("serving BlindAI 0.6 (HTTP/CBOR)", "unattested", f.addrs[Unattested], "attested", f.addrs[Attested], "management", f.addrs[Management])
	return nil
}

// Shutdown implements server.Frontend.
func (f *Frontend) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	servers := f.servers
	f.servers = nil
	f.mu.Unlock()
	var first error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// handler serves the requests of the three ports.
type handler struct {
	core       *server.Core
	log        interface{ Error(string, ...any) }
	simulation bool
}

// guard sets the Server header, turns a panic into a 500 (the server keeps
// serving) and warns on every request in simulation mode.
func (h *handler) guard(port string, next http.Handler) http.Handler {
	hdr := ServerHeader
	if h.simulation {
		hdr += " (mock: simulation, no TEE)"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", hdr)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic in handler", "port", port, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				http.Error(w, "internal error; the server logged it", http.StatusInternalServerError)
			}
		}()
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		defer func() {
			h.core.RecordRequest(port, server.ProtocolBlindAI06, rpcName(r.URL.Path), codeName(rec.status), time.Since(start), body.n, rec.n)
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder keeps a reply's status and size for the metrics.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

// countingBody counts the request bytes read, for the metrics.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// rpcName names a request's operation for the metrics: one of a fixed set,
// never anything a client chose.
func rpcName(path string) string {
	switch path {
	case "/":
		return "certificate"
	case "/quote", "/collateral", "/run", "/upload", "/delete":
		return path[1:]
	}
	return "unknown"
}

// codeName is the gRPC code name of an HTTP status, as the metrics label
// requests of every protocol.
func codeName(status int) string {
	switch {
	case status < 300:
		return "OK"
	case status == http.StatusBadRequest, status == http.StatusMethodNotAllowed:
		return "INVALID_ARGUMENT"
	case status == http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case status == http.StatusForbidden:
		return "PERMISSION_DENIED"
	case status == http.StatusNotFound:
		return "NOT_FOUND"
	case status == http.StatusConflict:
		return "ALREADY_EXISTS"
	case status == http.StatusRequestEntityTooLarge, status == http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case status == http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case status == http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

func (h *handler) unattested(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed, "the unattested port answers GET /, /quote and /collateral")
		return
	}
	switch r.URL.Path {
	case "/":
		writeCBOR(w, h.core.AttestedCertificateDER())
	case "/quote", "/collateral":
		quote, col, err := h.core.Evidence(r.Context())
		if err != nil {
			h.fail(w, err)
			return
		}
		if r.URL.Path == "/quote" {
			writeCBOR(w, quote)
			return
		}
		writeCBOR(w, collateralOf(quote, col))
	default:
		httpError(w, http.StatusNotFound, "no such path: the unattested port answers GET /, /quote and /collateral")
	}
}

func (h *handler) attested(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		// 0.6 clients check that the attested TLS answers at all.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Blindfold attested port (BlindAI 0.6 protocol): POST /run\n")
	case r.URL.Path == "/run" && r.Method == http.MethodPost:
		h.run(w, r)
	case r.URL.Path == "/run":
		httpError(w, http.StatusMethodNotAllowed, "use POST /run")
	default:
		httpError(w, http.StatusNotFound, "no such path: the attested port answers POST /run")
	}
}

func (h *handler) management(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/upload" && r.Method == http.MethodPost:
		h.upload(w, r)
	case r.URL.Path == "/delete" && r.Method == http.MethodPost:
		h.delete(w, r)
	case r.URL.Path == "/upload" || r.URL.Path == "/delete":
		httpError(w, http.StatusMethodNotAllowed, "use POST")
	default:
		httpError(w, http.StatusNotFound, "no such path: the model management port answers POST /upload and POST /delete")
	}
}

// authorize authenticates a request by its Authorization: Bearer header.
func (h *handler) authorize(r *http.Request) (string, func(), error) {
	tok := ""
	if v := r.Header.Values("Authorization"); len(v) > 0 {
		if len(v) > 1 {
			return "", nil, status.Error(codes.Unauthenticated, "the request carries more than one Authorization header; send one")
		}
		scheme, t, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return "", nil, status.Error(codes.Unauthenticated, "the Authorization header must be \"Bearer <JWT>\"")
		}
		tok = strings.TrimSpace(t)
	}
	return h.core.Authorize(tok)
}

func (h *handler) upload(w http.ResponseWriter, r *http.Request) {
	subject, done, err := h.authorize(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	defer done()
	cfg := h.core.Config()
	body := newBody(w, r, uploadBodyLimit(int64(cfg.MaxModelBytes)), time.Duration(cfg.StreamProgressTimeout), "max_model_bytes")
	// 0.6 servers name every upload with a fresh UUID; the model stays
	// private to its uploader (public to all when auth is off).
	res, err := h.core.Upload(r.Context(), subject, server.UploadSpec{}, func(sink *server.ModelSink) error {
		return decodeUpload(body, sink)
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	writeCBOR(w, uploadReply{Hash: res.Hash[:], ModelID: res.ID})
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	authorize := h.authorize
	if len(r.Header.Values("Authorization")) == 0 {
		// A 0.6 client has no token: it may run public models.
		authorize = func(*http.Request) (string, func(), error) { return h.core.AuthorizeAnonymous() }
	}
	subject, done, err := authorize(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	defer done()
	cfg := h.core.Config()
	body := newBody(w, r, runBodyLimit(int64(cfg.MaxInputBytes)), time.Duration(cfg.StreamProgressTimeout), "max_input_bytes")
	req, raw, err := decodeRun(body)
	defer clear(raw) // the request's input bytes
	if err != nil {
		h.fail(w, err)
		return
	}
	ref := server.ModelRef{ID: req.ModelID}
	switch {
	case req.ModelID != "" && req.ModelHash != "":
		h.fail(w, status.Error(codes.InvalidArgument, "give model_id or model_hash, not both"))
		return
	case req.ModelID == "" && req.ModelHash == "":
		h.fail(w, status.Error(codes.InvalidArgument, "name the model to run: model_id or model_hash"))
		return
	case req.ModelID == "":
		if ref.Hash, err = server.ParseModelHash(req.ModelHash); err != nil {
			h.fail(w, err)
			return
		}
	}
	out, err := h.core.Run(r.Context(), subject, ref, func(in *server.Inputs) error {
		for i, t := range req.Inputs {
			if err := addInput(in, i, t); err != nil {
				return err
			}
		}
		return nil
	})
	for _, t := range req.Inputs {
		clear(t.BytesData)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	defer out.Wipe()
	reply := runReply{Outputs: make([]tensorMsg, len(out.Outputs))}
	for i, t := range out.Outputs {
		name := t.Name
		reply.Outputs[i] = tensorMsg{Info: tensorInfo{Fact: t.Shape, DatumType: int(t.DType), NodeName: &name}, BytesData: t.Data}
	}
	b, err := encMode.Marshal(reply)
	if err != nil {
		h.fail(w, status.Errorf(codes.Internal, "encoding the reply: %v", err))
		return
	}
	defer clear(b)
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(replyWriteTime))
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(b)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	subject, done, err := h.authorize(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	defer done()
	cfg := h.core.Config()
	body := newBody(w, r, smallBodyLimit, time.Duration(cfg.StreamProgressTimeout), "64 KiB for a delete")
	req, err := decodeDelete(body)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.core.Delete(subject, req.ModelID); err != nil {
		h.fail(w, err)
		return
	}
	writeCBOR(w, map[string]any{})
}

// fail answers err's HTTP status (see server.HTTPStatus) with its text.
func (h *handler) fail(w http.ResponseWriter, err error) {
	code, msg := server.HTTPStatus(err)
	if code == http.StatusInternalServerError {
		if _, ok := status.FromError(err); !ok {
			h.log.Error("request failed", "err", err)
		}
	}
	httpError(w, code, msg)
}

// httpError answers a short text body.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// writeCBOR answers v in CBOR.
func writeCBOR(w http.ResponseWriter, v any) {
	b, err := encMode.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encoding the reply failed")
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(replyWriteTime))
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(b)
}
