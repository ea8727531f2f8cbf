package server

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	"github.com/blindfold-ai/blindfold/identity"
)

// logAuth says at start how requests are authenticated, which token keys
// were loaded (by SHA-256 fingerprint of their public key), and warns about
// settings that have no effect or leave models unreachable.
func (s *Server) logAuth() {
	mode := s.cfg.AuthMode()
	source := "auth setting"
	if s.cfg.Auth == "" {
		source = "default for simulation"
		if !s.cfg.Simulation {
			source = "default"
		}
	}
	if mode == AuthNone {
		s.log.Info("authentication off", "auth", mode, "from", source)
		if len(s.cfg.AuthKeys) > 0 {
			s.log.Warn("auth_keys are set but authentication is off, so they are ignored; set auth = \"required\" (--auth required) to use them",
				"auth_keys", strings.Join(s.cfg.AuthKeys, ","), "auth", mode, "from", source)
		}
		s.warnUnreachableOwners()
		return
	}
	keys, err := LoadPublicKeys(s.cfg.AuthKeys)
	if err != nil { // loaded once already by New; cannot fail here but for a race on the files
		s.log.Warn("authentication required; cannot re-read the token keys to log them", "err", err)
		return
	}
	fps := make([]string, 0, len(keys))
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			continue
		}
		fps = append(fps, identity.Fingerprint(der))
	}
	s.log.Info("authentication required: bearer tokens signed by these keys", "auth", mode, "from", source,
		"keys", len(keys), "key_sha256", strings.Join(fps, ","), "issuer", s.cfg.AuthIssuer, "audience", s.cfg.AuthAudience)
}

// warnUnreachableOwners warns, with authentication off, about saved models
// whose owner is an authenticated subject: no request can name that owner
// now, so nobody can run or delete them until the server requires tokens
// again (see docs/operations.md, "Models whose owner cannot
// authenticate").
func (s *Server) warnUnreachableOwners() {
	count := map[string]int{}
	for _, m := range s.models.List() {
		if m.Owner != "" {
			count[m.Owner]++
		}
	}
	if len(count) == 0 {
		return
	}
	owners := make([]string, 0, len(count))
	total := 0
	for o, n := range count {
		owners = append(owners, fmt.Sprintf("%s (%d)", o, n))
		total += n
	}
	sort.Strings(owners)
	s.log.Warn("saved models of authenticated owners are loaded, but authentication is off: no request can act as their owner, so nobody can delete them, and private ones cannot be run either; "+
		"restart with auth = \"required\" and a key that signs tokens for those subjects to hand them over or delete them, or stop the server and purge state_dir/models (see docs/operations.md)",
		"models", total, "owners", strings.Join(owners, ", "))
}
