package cluster

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/identity"
)

const (
	protocolVersion = 1
	exporterLabel   = "EXPORTER-blindfold-cluster-join-v1"
	maxMessage      = 1 << 20
	// joinTimeout bounds one join exchange, on both sides.
	joinTimeout = 30 * time.Second
)

// hello is the joiner's first and only message.
type hello struct {
	Version   int    `json:"version"`
	Ephemeral []byte `json:"ephemeral"` // X25519 public key
	Proof     *Proof `json:"proof"`
}

// welcome is the peer's answer: its own proof and the identity encrypted
// to the joiner's ephemeral key, or why it refuses.
type welcome struct {
	Ephemeral []byte `json:"ephemeral,omitempty"`
	Proof     *Proof `json:"proof,omitempty"`
	Sealed    []byte `json:"sealed,omitempty"`
	Refused   string `json:"refused,omitempty"`
}

// reportData binds a proof to the connection (its TLS exporter), to the
// side that makes it and to the ephemeral keys exchanged so far.
func reportData(role string, exporter []byte, keys ...[]byte) [64]byte {
	h := sha256.New()
	h.Write([]byte("blindfold cluster join v1\x00" + role + "\x00"))
	h.Write(exporter)
	for _, k := range keys {
		h.Write(k)
	}
	var rd [64]byte
	copy(rd[:32], h.Sum(nil))
	return rd
}

// bundleKey derives the AES-256-GCM key that the identity is sealed with.
func bundleKey(shared, exporter, joinerPub, peerPub []byte) (cipher.AEAD, error) {
	info := "blindfold cluster identity v1" + string(joinerPub) + string(peerPub)
	key, err := hkdf.Key(sha256.New, shared, exporter, info, 32)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxMessage {
		return errors.New("cluster: message too large")
	}
	_, err = w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
	return err
}

func readMsg(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxMessage {
		return fmt.Errorf("cluster: message of %d bytes is over the %d-byte limit", size, maxMessage)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func exporter(c *tls.Conn) ([]byte, error) {
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return nil, errors.New("cluster: the join connection is not TLS 1.3")
	}
	return st.ExportKeyingMaterial(exporterLabel, nil, 32)
}

// Peer hands the cluster identity to joiners that satisfy the cluster
// policy.
type Peer struct {
	id     *Identity
	att    Attestor
	log    *slog.Logger
	tlsCfg *tls.Config
	mu     sync.Mutex
	lis    net.Listener
	conns  sync.WaitGroup
	closed bool
}

// NewPeer returns a Peer for id. Its TLS certificate is made for this
// process and proves nothing: joiner and peer authenticate each other by
// the proofs bound to the connection.
func NewPeer(id *Identity, att Attestor, log *slog.Logger) (*Peer, error) {
	tmp, err := identity.NewAttested()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Peer{id: id, att: att, log: log, tlsCfg: &tls.Config{
		Certificates: []tls.Certificate{tmp.Certificate},
		MinVersion:   tls.VersionTLS13,
	}}, nil
}

// Serve answers joins on l until Close.
func (p *Peer) Serve(l net.Listener) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	p.lis = l
	p.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			p.handle(c)
		}()
	}
}

// Close stops serving and waits for joins in progress.
func (p *Peer) Close() {
	p.mu.Lock()
	p.closed = true
	l := p.lis
	p.mu.Unlock()
	if l != nil {
		l.Close()
	}
	p.conns.Wait()
}

func (p *Peer) handle(raw net.Conn) {
	defer raw.Close()
	remote := raw.RemoteAddr().String()
	raw.SetDeadline(time.Now().Add(joinTimeout))
	c := tls.Server(raw, p.tlsCfg)
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		p.log.Warn("cluster join: TLS handshake failed", "remote", remote, "err", err)
		return
	}
	exp, err := exporter(c)
	if err != nil {
		p.log.Warn("cluster join refused", "remote", remote, "err", err)
		return
	}
	var h hello
	if err := readMsg(c, &h); err != nil {
		p.log.Warn("cluster join: bad request", "remote", remote, "err", err)
		return
	}
	refuse := func(why string, err error) {
		args := []any{"remote", remote, "reason", why}
		if err != nil {
			args = append(args, "err", err)
		}
		p.log.Warn("cluster join refused: no key handed over", args...)
		writeMsg(c, welcome{Refused: why})
	}
	if h.Version != protocolVersion {
		refuse(fmt.Sprintf("protocol version %d, this replica speaks %d", h.Version, protocolVersion), nil)
		return
	}
	joinerPub, err := ecdh.X25519().NewPublicKey(h.Ephemeral)
	if err != nil {
		refuse("bad ephemeral key", err)
		return
	}
	if err := p.att.Check(ctx, h.Proof, reportData("joiner", exp, h.Ephemeral)); err != nil {
		refuse(err.Error(), nil)
		return
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		refuse("internal error", err)
		return
	}
	peerPub := eph.PublicKey().Bytes()
	proof, err := p.att.Prove(ctx, reportData("peer", exp, h.Ephemeral, peerPub))
	if err != nil {
		refuse("this replica cannot prove itself now", err)
		return
	}
	shared, err := eph.ECDH(joinerPub)
	if err != nil {
		refuse("bad ephemeral key", err)
		return
	}
	aead, err := bundleKey(shared, exp, h.Ephemeral, peerPub)
	clear(shared)
	if err != nil {
		refuse("internal error", err)
		return
	}
	plain, err := p.id.marshal()
	if err != nil {
		refuse("internal error", err)
		return
	}
	sealed := aead.Seal(nil, make([]byte, aead.NonceSize()), plain, []byte(exporterLabel))
	clear(plain)
	if err := writeMsg(c, welcome{Ephemeral: peerPub, Proof: proof, Sealed: sealed}); err != nil {
		p.log.Warn("cluster join: sending the identity failed", "remote", remote, "err", err)
		return
	}
	p.log.Info("cluster join: identity handed to a replica that satisfies the cluster policy", "remote", remote, "proof", h.Proof.Type)
}

// JoinAddr joins through the peer at addr: it proves this replica, checks
// the peer's proof, and only then opens the identity it sent.
func JoinAddr(ctx context.Context, addr string, att Attestor) (*Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &unreachableError{err}
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// The peer's certificate is not what authenticates it: its proof,
	// bound to this connection's exporter, is.
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, ServerName: identity.ServerName})
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err // something listens there: it answered
	}
	exp, err := exporter(c)
	if err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := eph.PublicKey().Bytes()
	proof, err := att.Prove(ctx, reportData("joiner", exp, pub))
	if err != nil {
		return nil, err
	}
	if err := writeMsg(c, hello{Version: protocolVersion, Ephemeral: pub, Proof: proof}); err != nil {
		return nil, err
	}
	var w welcome
	if err := readMsg(c, &w); err != nil {
		return nil, err
	}
	if w.Refused != "" {
		return nil, fmt.Errorf("%w: the peer refused this replica: %s", ErrRefused, w.Refused)
	}
	if err := att.Check(ctx, w.Proof, reportData("peer", exp, pub, w.Ephemeral)); err != nil {
		return nil, fmt.Errorf("the peer at %s: %w", addr, err)
	}
	peerPub, err := ecdh.X25519().NewPublicKey(w.Ephemeral)
	if err != nil {
		return nil, err
	}
	shared, err := eph.ECDH(peerPub)
	if err != nil {
		return nil, err
	}
	aead, err := bundleKey(shared, exp, pub, w.Ephemeral)
	clear(shared)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, make([]byte, aead.NonceSize()), w.Sealed, []byte(exporterLabel))
	if err != nil {
		return nil, errors.New("cluster: the identity sent does not open")
	}
	defer clear(plain)
	return unmarshalIdentity(plain)
}

// ErrNoPeerAnswered is wrapped by Join's error when no peer answered a
// join at all: no peer address accepted a connection (a replica serves
// its peer port only once it holds the identity). A connection accepted
// and then failed, stalled or refused counts as an answer, even before
// TLS: a replica whose peer port is busy (its connection limit reached)
// must not make another replica start a second cluster.
var ErrNoPeerAnswered = errors.New("no peer answered")

// unreachableError is a join that failed before a peer answered: no
// connection.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// Join takes the cluster identity from the first of peers that hands it
// over, trying them in turn (each name may resolve to several addresses,
// as a Kubernetes headless service does) until ctx ends. A peer that
// refuses this replica, or that does not prove itself, counts as a
// failure; the error of the last try is returned, wrapping
// ErrNoPeerAnswered when no peer ever answered.
func Join(ctx context.Context, peers []string, att Attestor, log *slog.Logger) (*Identity, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(peers) == 0 {
		return nil, errors.New("cluster: no peers to join")
	}
	var last error
	answered := false
	for {
		for _, addr := range expand(ctx, peers) {
			id, err := JoinAddr(ctx, addr, att)
			if err == nil {
				log.Info("joined the cluster", "peer", addr, "attested_cert_sha256", identity.Fingerprint(id.Attested.DER))
				return id, nil
			}
			var u *unreachableError
			if !errors.As(err, &u) {
				answered = true
			}
			last = fmt.Errorf("%s: %w", addr, err)
			log.Warn("cluster join failed", "peer", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			if !answered {
				return nil, fmt.Errorf("cluster: could not join any peer: %w: %w", ErrNoPeerAnswered, last)
			}
			return nil, fmt.Errorf("cluster: could not join any peer: %w", last)
		case <-time.After(time.Second):
		}
	}
}

// expand resolves each host:port to all its addresses.
func expand(ctx context.Context, peers []string) []string {
	var out []string
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil || net.ParseIP(host) != nil {
			out = append(out, p)
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			out = append(out, p)
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	return out
}
