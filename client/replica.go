package client

import (
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
// its attested connection reached; when full, one is dropped for the new.
const maxReplicaEvidence = 16

// replicaEvidence is the verified evidence of the replicas that served
// this client's attested connection, by replica.
type replicaEvidence struct {
	connectKey string // the replica of the evidence verified at connect ("": none named)
	verify     evidenceVerifier

	mu sync.Mutex
	m  map[string]*attest.Evidence
}

func newReplicaEvidence(connect *attest.Evidence, verify evidenceVerifier) *replicaEvidence {
	r := &replicaEvidence{verify: verify, m: map[string]*attest.Evidence{}}
	if id, source, err := verifier.ReplicaID(connect); err == nil {
		r.connectKey = replicaKey(source, id)
	}
	return r
}

func replicaKey(source string, id []byte) string { return source + ":" + hex.EncodeToString(id) }

func (r *replicaEvidence) get(key string) *attest.Evidence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key]
}

func (r *replicaEvidence) put(key string, ev *attest.Evidence) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[key]; !ok && len(r.m) >= maxReplicaEvidence {
		for k := range r.m { // any one: a replica seen again is fetched again
			delete(r.m, k)
			break
		}
	}
	r.m[key] = ev
}

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
	have, r := c.evidence(), c.replicas
	if have == nil || r == nil || rc == nil || len(rc.GetReplicaId()) == 0 {
		return have
	}
	want := replicaKey(rc.GetReplicaSource(), rc.GetReplicaId())
	if want == r.connectKey {
		return have
	}
	if ev := r.get(want); ev != nil {
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
	got, _, err := EvidenceFromReply(reply)
	if err != nil {
		c.log.Warn("the attested connection's replica sent evidence that does not parse; its proof's replica is not checked", "err", err)
		return have
	}
	// The evidence must bind this client's attested certificate.
	v, err := r.verify(ctx, got, c.certDER, attest.NonceEqual, nonce)
	if err != nil {
		c.log.Warn("the attested connection's replica sent evidence that does not verify; its proof's replica is not checked", "err", err)
		return have
	}
	id, source, err := verifier.ReplicaID(v.Evidence)
	if err != nil {
		return have
	}
	key := replicaKey(source, id)
	r.put(key, v.Evidence)
	if key != want {
		return have // the connection moved to yet another replica
	}
	return v.Evidence
}
