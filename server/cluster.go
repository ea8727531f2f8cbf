package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/cluster"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/store"
)

// clusterState is a replica's part of a cluster: the shared identity it
// hands to joiners, its peer port, and which sealed file of the shared
// folder each model in its store came from.
type clusterState struct {
	id   *cluster.Identity
	peer *cluster.Peer
	lis  net.Listener

	mu sync.Mutex
	// files holds, per model in the store, the shared file it was loaded
	// from (or saved to), as it was then: a model is served only while
	// its file is still that file.
	files map[modelKey]os.FileInfo
	// bad holds shared files that could not be added, as they were then,
	// so that a scan does not decrypt them again until they change.
	bad map[string]os.FileInfo
}

type modelKey struct{ owner, id string }

// maxConcurrentJoins bounds the connections the peer port serves at once.
const maxConcurrentJoins = 16

// clusterAttestor returns how this replica proves itself to peers and
// checks them.
func (s *Server) clusterAttestor(ctx context.Context, opts Options) (cluster.Attestor, error) {
	if s.cfg.Simulation {
		secret, err := readSecretFile(s.cfg.ClusterSecretFile)
		if err != nil {
			return nil, err
		}
		defer clear(secret)
		s.log.Warn("SIMULATION CLUSTER: replicas trust each other by a shared join secret, not by a TEE; whoever can read the secret file can join and take every key", "cluster_secret_file", s.cfg.ClusterSecretFile)
		return cluster.NewSimulation(secret)
	}
	if s.att == nil {
		return nil, errors.New("server: a hardware cluster needs an evidence provider (tee)")
	}
	pol, err := os.ReadFile(s.cfg.ClusterPolicy)
	if err != nil {
		return nil, fmt.Errorf("server: cluster_policy: %w", err)
	}
	if opts.ClusterTestRoot != nil || len(opts.ClusterSNP.TestRoots) > 0 {
		s.log.Warn("cluster: peers' evidence is verified against a TEST root CA, not the vendor's: this proves nothing about hardware")
	}
	switch s.att.Type() {
	case attest.TypeSGXDCAP:
		return cluster.NewSGX(ctx, cluster.SGXOptions{Attester: s.att, PolicyFile: pol, TestRoot: opts.ClusterTestRoot, Now: opts.ClusterNow})
	case attest.TypeTDX, attest.TypeSNP:
		return cluster.NewCVM(ctx, cluster.CVMOptions{Issuer: s.att, PolicyFile: pol,
			Verify: verifier.Options{Now: opts.ClusterNow, TDXTestRoot: opts.ClusterTestRoot, SNP: opts.ClusterSNP}})
	}
	return nil, fmt.Errorf("server: a hardware cluster needs SGX, TDX or SEV-SNP replicas; this one has %s evidence", s.att.Type())
}

func readSecretFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server: cluster_secret_file: %w", err)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server: cluster_secret_file %s is readable by others (mode %v); make it 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: cluster_secret_file: %w", err)
	}
	return b, nil
}

// startCluster bootstraps or joins the cluster. A replica that cannot join
// fails here: it never makes an identity of its own.
func (s *Server) startCluster(opts Options) (*cluster.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ClusterJoinTimeout))
	defer cancel()
	att, err := s.clusterAttestor(ctx, opts)
	if err != nil {
		return nil, err
	}
	var id *cluster.Identity
	switch s.cfg.Cluster {
	case ClusterBootstrap:
		if id, err = cluster.NewIdentity(); err != nil {
			return nil, err
		}
		if len(s.cfg.ClusterInherit) > 0 {
			old, err := cluster.Join(ctx, s.cfg.ClusterInherit, att, s.log)
			if err != nil {
				id.Zero()
				return nil, fmt.Errorf("server: could not take the sealing key of the old cluster (cluster_inherit); not serving: %w", err)
			}
			copy(id.SealingKey, old.SealingKey)
			old.Zero()
			s.log.Warn("bootstrapped a NEW attested identity that keeps the old cluster's model-sealing key (cluster_inherit): the shared models stay readable; start every other replica of the new cluster with cluster = \"join\" and its peers", "attested_cert_sha256", identity.Fingerprint(id.Attested.DER))
		} else {
			s.log.Warn("bootstrapped a NEW cluster identity: replicas of another cluster cannot read the models it seals; start every other replica with cluster = \"join\"")
		}
	case ClusterJoin:
		if id, err = cluster.Join(ctx, s.cfg.ClusterPeers, att, s.log); err != nil {
			return nil, fmt.Errorf("server: this replica could not join its cluster and does not serve (set cluster = \"bootstrap\" to start a new cluster): %w", err)
		}
	case ClusterJoinOrBootstrap:
		id, err = cluster.Join(ctx, s.cfg.ClusterPeers, att, s.log)
		switch {
		case errors.Is(err, cluster.ErrNoPeerAnswered):
			if id, err = cluster.NewIdentity(); err != nil {
				return nil, err
			}
			s.log.Warn("no peer answered for cluster_join_timeout: bootstrapped a NEW cluster identity (cluster = \"join-or-bootstrap\"); replicas of another cluster cannot read the models it seals", "cluster_join_timeout", time.Duration(s.cfg.ClusterJoinTimeout).String())
		case err != nil:
			return nil, fmt.Errorf("server: this replica could not join its cluster and does not serve (a peer answered, so it does not bootstrap): %w", err)
		}
	}
	peer, err := cluster.NewPeer(id, att, s.log)
	if err != nil {
		id.Zero()
		return nil, err
	}
	s.cluster = &clusterState{id: id, peer: peer, files: map[modelKey]os.FileInfo{}, bad: map[string]os.FileInfo{}}
	return id, nil
}

// newClusterReplica gives s the cluster's identity and the shared store.
func (s *Server) newClusterReplica(opts Options) error {
	id, err := s.startCluster(opts)
	if err != nil {
		return err
	}
	s.id = id.Attested
	if s.sealer, err = store.NewSealer(s.cfg.ClusterModelsDir, id.SealingKey); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if local, _ := filepath.Glob(filepath.Join(s.cfg.StateDir, "models", "*"+store.SealedExt)); len(local) > 0 {
		s.log.Warn("this replica's own saved models (state_dir/models) are not served in a cluster: they are sealed with the platform key, not the cluster's; upload them again through the cluster", "files", len(local))
	}
	s.clusterSyncAll()
	return nil
}

// startPeerPort listens on cluster_addr and answers joins.
func (s *Server) startPeerPort() error {
	l, err := net.Listen("tcp", s.cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("server: cluster peer port: %w", err)
	}
	s.cluster.lis = l
	// Joins are rare; a few at a time is plenty, and bounds what an
	// unauthenticated caller can make the peer port hold.
	limited := netutil.LimitListener(l, maxConcurrentJoins)
	go func() {
		if err := s.cluster.peer.Serve(limited); err != nil {
			s.log.Error("cluster peer port stopped", "err", err)
		}
	}()
	s.log.Info("cluster peer port", "addr", l.Addr().String(), "cluster", s.cfg.Cluster)
	return nil
}

// ClusterAddr returns the bound address of the peer port ("" outside a
// cluster or before Start).
func (s *Server) ClusterAddr() string {
	if s.cluster == nil || s.cluster.lis == nil {
		return ""
	}
	return s.cluster.lis.Addr().String()
}

func (s *Server) stopCluster() {
	if s.cluster == nil {
		return
	}
	s.cluster.peer.Close()
	s.cluster.id.Zero()
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// clusterRefresh brings owner's model id in this replica's store in step
// with the shared folder before it is used: a model whose sealed file is
// gone (deleted through another replica) or was replaced is dropped, and a
// model sealed by another replica is added (held evicted; it loads on
// first use). One stat per request: a delete acknowledged by any replica
// is seen by the next request on every replica.
func (s *Server) clusterRefresh(owner, id string) {
	c := s.cluster
	path := s.sealer.Path(owner, id)
	fi, statErr := os.Stat(path)
	k := modelKey{owner, id}
	c.mu.Lock()
	known := c.files[k]
	c.mu.Unlock()
	has := s.models.Has(owner, id)
	if has && (statErr != nil || !sameFile(known, fi)) {
		if err := s.models.Delete(owner, id); err == nil {
			s.log.Info("cluster: model dropped, its shared copy was deleted or replaced through another replica", "model_id", id, "owner", owner)
		}
		c.mu.Lock()
		delete(c.files, k)
		c.mu.Unlock()
		has = false
	}
	if !has && statErr == nil {
		if err := s.addShared(path, fi); err != nil && !errors.Is(err, store.ErrExists) {
			s.log.Warn("cluster: a shared model cannot be added", "model_id", id, "owner", owner, "err", err)
		}
	}
}

// clusterSyncAll adds every model of the shared folder that the store
// lacks and drops those whose file is gone or replaced.
func (s *Server) clusterSyncAll() {
	entries, err := os.ReadDir(s.cfg.ClusterModelsDir)
	if err != nil {
		s.log.Error("cluster: cannot list the shared models", "err", err)
		return
	}
	known := map[string]bool{}
	for _, m := range s.models.List() {
		known[s.sealer.Path(m.Owner, m.ID)] = true
		s.clusterRefresh(m.Owner, m.ID)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(s.cfg.ClusterModelsDir, name)
		// Temporary files of uploads in progress (on any replica) are
		// left alone: only complete sealed files are models.
		if known[path] || !e.Type().IsRegular() || !strings.HasSuffix(name, store.SealedExt) || strings.HasPrefix(name, ".") {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		s.cluster.mu.Lock()
		skip := sameFile(s.cluster.bad[path], fi)
		s.cluster.mu.Unlock()
		if skip {
			continue
		}
		if err := s.addShared(path, fi); err != nil && !errors.Is(err, store.ErrExists) {
			s.log.Warn("cluster: a shared model cannot be added", "file", name, "err", err)
			if !errors.Is(err, store.ErrTooManyModels) && !errors.Is(err, store.ErrNoSpace) && !errors.Is(err, store.ErrQuota) {
				// Unreadable as it is: not decrypted again until it changes.
				s.cluster.mu.Lock()
				s.cluster.bad[path] = fi
				s.cluster.mu.Unlock()
			}
		}
	}
}

// addShared adds the model sealed in path (as fi describes it) to the
// store, held evicted.
func (s *Server) addShared(path string, fi os.FileInfo) error {
	h, model, err := s.sealer.Open(path, int64(s.cfg.MaxModelBytes))
	clear(model)
	if err != nil {
		return err
	}
	if s.sealer.Path(h.Owner, h.ModelID) != path {
		return fmt.Errorf("file name does not match its model id %q", h.ModelID)
	}
	if err := checkStoredModelID(h.ModelID); err != nil {
		return fmt.Errorf("model id %q: %v", h.ModelID, err)
	}
	after, err := os.Stat(path)
	if err != nil || !sameFile(fi, after) {
		return fmt.Errorf("model %q: its shared file changed while it was read", h.ModelID)
	}
	var hash [32]byte
	if sum, err := hex.DecodeString(h.SHA256); err != nil || len(sum) != len(hash) {
		return fmt.Errorf("model %q: bad hash in header", h.ModelID)
	} else {
		copy(hash[:], sum)
	}
	m := &store.Model{ID: h.ModelID, Hash: hash, Size: h.Size, Loaded: time.Now(), Owner: h.Owner, Public: h.Public, Saved: true,
		Inputs: engineSpecs(h.Inputs), Outputs: engineSpecs(h.Outputs)}
	// An upload of this replica under the same id holds a claim on it
	// until it is added: its sealed file is not another replica's model.
	if err := s.models.Claim(h.Owner, h.ModelID); err != nil {
		return err
	}
	defer s.models.Unclaim(h.Owner, h.ModelID)
	if err := s.models.AddEvicted(m); err != nil {
		return err
	}
	s.cluster.mu.Lock()
	s.cluster.files[modelKey{h.Owner, h.ModelID}] = fi
	s.cluster.mu.Unlock()
	s.log.Info("cluster: shared model added; it loads on first use", "model_id", h.ModelID, "owner", h.Owner, "bytes", h.Size)
	return nil
}

// clusterSaved records the shared file an upload of this replica sealed.
func (s *Server) clusterSaved(owner, id string) {
	fi, err := os.Stat(s.sealer.Path(owner, id))
	if err != nil {
		return
	}
	s.cluster.mu.Lock()
	s.cluster.files[modelKey{owner, id}] = fi
	s.cluster.mu.Unlock()
}

// clusterCurrent reports whether m, acquired for a request, is still the
// model its shared file holds.
func (s *Server) clusterCurrent(m *store.Model) bool {
	fi, err := os.Stat(s.sealer.Path(m.Owner, m.ID))
	s.cluster.mu.Lock()
	known := s.cluster.files[modelKey{m.Owner, m.ID}]
	s.cluster.mu.Unlock()
	return err == nil && sameFile(known, fi)
}

// acquireClusterModel is acquireModel in a cluster: the store is brought in
// step with the shared folder first, and a model is served only if its
// shared file is still the one it came from.
func (s *Server) acquireClusterModel(ctx context.Context, subject, id string) (*store.Model, func(), error) {
	s.clusterRefresh(subject, id)
	for try := 0; ; try++ {
		m, release, err := s.acquireStoreModel(ctx, subject, id)
		if err != nil {
			if try == 0 && status.Code(err) == codes.NotFound {
				// Perhaps a public model of another owner that was
				// uploaded through another replica.
				s.clusterSyncAll()
				continue
			}
			return nil, nil, err
		}
		if s.clusterCurrent(m) {
			return m, release, nil
		}
		release()
		s.clusterRefresh(m.Owner, m.ID)
		if try > 0 {
			return nil, nil, errorf(codes.NotFound, "no model with id %q that you may run is loaded", id)
		}
	}
}
