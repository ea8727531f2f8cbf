package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/blindfold-ai/blindfold/api/evidence"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
)

// maxReplicaEvidence bounds the evidence a client keeps, one per replica
// its attested connection reached.
const maxReplicaEvidence = 16

// replicaEvidence is the verified evidence of the replicas that served
// this client's attested connection, by replica.
type replicaEvidence struct {
	mu sync.Mutex
	m  map[string]*attest.Evidence
	// verify checks evidence fetched over the attested connection as the
	// connect-time evidence was checked: same verifiers, same attested
	// certificate, bound to nonce.
	verify func(ctx context.Context, ev *attest.Evidence, certDER, nonce []byte) (*attest.Verified, error)
}

func replicaKey(source string, id []byte) string { return source + ":" + hex.EncodeToString(id) }

// servingEvidence returns the evidence to put in the proof of a signed
// reply whose receipt is rc: the evidence verified at connect when it is
// of the replica the receipt names; otherwise the evidence of the replica
// that serves this client's attested connection, which served the request.
// In a cluster behind a load balancer, the untrusted and attested
// connections may reach different replicas: the attested connection's
// replica is asked for evidence over that same connection (GetEvidence,
// with a fresh nonce), which is verified as at connect (the same policy,
// the same attested certificate) and kept for later replies. When none
// can be had, it returns the connect-time evidence, and the proof's
// replica binding is reported as not checked.
func (c *Client) servingEvidence(ctx context.Context, rc *securedexchange.Receipt) *attest.Evidence {
	have := c.evidence()
	if have == nil || rc == nil || len(rc.GetReplicaId()) == 0 || c.replicas == nil {
		return have
	}
	want := replicaKey(rc.GetReplicaSource(), rc.GetReplicaId())
	if id, source, err := verifier.ReplicaID(have); err == nil && replicaKey(source, id) == want {
		return have
	}
	r := c.replicas
	r.mu.Lock()
	ev := r.m[want]
	r.mu.Unlock()
	if ev != nil {
		return ev
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return have
	}
	reply, err := evidence.NewEvidenceClient(c.conn).GetEvidence(ctx, &evidence.GetEvidenceRequest{Nonce: nonce})
	if err != nil {
		c.log.Debug("no evidence from the replica that served the request; its proof's replica is not checked", "err", err)
		return have
	}
	got, certDER, err := EvidenceFromReply(reply)
	if err != nil || !bytes.Equal(certDER, c.certDER) {
		c.log.Warn("the attested connection's replica sent evidence that does not parse or binds another certificate; its proof's replica is not checked", "err", err)
		return have
	}
	v, err := r.verify(ctx, got, c.certDER, nonce)
	if err != nil {
		c.log.Warn("the attested connection's replica sent evidence that does not verify; its proof's replica is not checked", "err", err)
		return have
	}
	id, source, err := verifier.ReplicaID(v.Evidence)
	if err != nil || replicaKey(source, id) != want {
		return have // the connection moved to yet another replica
	}
	r.mu.Lock()
	if len(r.m) < maxReplicaEvidence {
		r.m[want] = v.Evidence
	}
	r.mu.Unlock()
	return v.Evidence
}
