package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Metadata keys that carry a bearer token. BlindAI 0.5 clients send theirs
// as "accesstoken" (and in SendModelRequest.jwt).
const (
	mdAuthorization = "authorization"
	mdAccessToken   = "accesstoken"
)

// tokenLeeway is the clock skew allowed on exp, nbf and iat.
const tokenLeeway = 30 * time.Second

// authenticator checks bearer tokens and applies per-subject limits.
type authenticator struct {
	mode   string
	keys   jwt.VerificationKeySet
	parser *jwt.Parser

	rateLimit     rate.Limit
	rateBurst     int
	maxConcurrent int

	mu       sync.Mutex
	subjects map[string]*subjectState
}

type subjectState struct {
	limiter  *rate.Limiter
	inflight int
}

// LoadPublicKeys reads PEM public keys (PKIX "PUBLIC KEY" blocks, ECDSA
// P-256 or Ed25519) from files. Each file may hold several keys.
func LoadPublicKeys(paths []string) ([]any, error) {
	var keys []any
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("auth key: %w", err)
		}
		found := 0
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "PUBLIC KEY" {
				continue
			}
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth key %s: %w", p, err)
			}
			switch k := k.(type) {
			case *ecdsa.PublicKey:
				if k.Curve != elliptic.P256() {
					return nil, fmt.Errorf("auth key %s: ECDSA curve %s is not allowed; use P-256 (ES256)", p, k.Curve.Params().Name)
				}
			case ed25519.PublicKey:
			default:
				return nil, fmt.Errorf("auth key %s: %T is not allowed; use ECDSA P-256 (ES256) or Ed25519 (EdDSA)", p, k)
			}
			keys = append(keys, k)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("auth key %s: no PEM \"PUBLIC KEY\" block", p)
		}
	}
	return keys, nil
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{
		mode:          cfg.AuthMode(),
		rateLimit:     rate.Inf,
		maxConcurrent: cfg.MaxConcurrentPerSubject,
		subjects:      map[string]*subjectState{},
	}
	if cfg.RateLimit > 0 {
		a.rateLimit = rate.Limit(cfg.RateLimit)
		a.rateBurst = max(cfg.RateBurst, 1)
	}
	if a.mode == AuthRequired {
		keys, err := LoadPublicKeys(cfg.AuthKeys)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			a.keys.Keys = append(a.keys.Keys, k)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"ES256", "EdDSA"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(tokenLeeway),
	}
	if cfg.AuthIssuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.AuthIssuer))
	}
	if cfg.AuthAudience != "" {
		opts = append(opts, jwt.WithAudience(cfg.AuthAudience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// token returns the bearer token of a request: from the authorization
// metadata ("Bearer <JWT>"), the accesstoken metadata, or fallback (the
// jwt field of SendModelRequest). Different tokens at once are refused.
func token(ctx context.Context, fallback string) (string, error) {
	var found []string
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(mdAuthorization) {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return "", errorf(codes.Unauthenticated, "the authorization metadata must be \"Bearer <JWT>\"")
		}
		found = append(found, strings.TrimSpace(tok))
	}
	found = append(found, md.Get(mdAccessToken)...)
	if fallback != "" {
		found = append(found, fallback)
	}
	tok := ""
	for _, f := range found {
		if f == "" {
			continue
		}
		if tok != "" && f != tok {
			return "", errorf(codes.Unauthenticated, "the request carries two different tokens; send one")
		}
		tok = f
	}
	return tok, nil
}

// subject authenticates a request and returns its subject ("" when auth
// is "none").
func (a *authenticator) subject(ctx context.Context, fallback string) (string, error) {
	if a.mode == AuthNone {
		return "", nil
	}
	tok, err := token(ctx, fallback)
	if err != nil {
		return "", err
	}
	return a.subjectOf(tok)
}

// subjectOf authenticates a bearer token ("" when the request has none)
// and returns its subject ("" when auth is "none").
func (a *authenticator) subjectOf(tok string) (string, error) {
	if a.mode == AuthNone {
		return "", nil
	}
	if tok == "" {
		return "", errorf(codes.Unauthenticated, "this server requires a bearer token: send a JWT as \"authorization: Bearer <JWT>\" metadata (BlindAI clients: accesstoken)")
	}
	var claims jwt.RegisteredClaims
	if _, err := a.parser.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return a.keys, nil }); err != nil {
		return "", errorf(codes.Unauthenticated, "invalid token: %s", tokenProblem(err))
	}
	if claims.Subject == "" {
		return "", errorf(codes.Unauthenticated, "invalid token: it has no sub claim")
	}
	if claims.Subject == anonymousSubject {
		return "", errorf(codes.Unauthenticated, "invalid token: its sub claim is reserved")
	}
	return claims.Subject, nil
}

// tokenProblem says what was wrong with a token without echoing it.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed JWT"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature not valid under any configured key (allowed algorithms: ES256, EdDSA)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing (exp)"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	default:
		return "rejected"
	}
}

// admit applies the subject's rate and concurrency limits; release must be
// called when the request ends.
func (a *authenticator) admit(subject string) (release func(), err error) {
	if a.rateLimit == rate.Inf && a.maxConcurrent == 0 {
		return func() {}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.subjects[subject]
	if st == nil {
		if len(a.subjects) >= 10000 {
			a.sweepLocked()
		}
		st = &subjectState{limiter: rate.NewLimiter(a.rateLimit, a.rateBurst)}
		a.subjects[subject] = st
	}
	if a.maxConcurrent > 0 && st.inflight >= a.maxConcurrent {
		return nil, errorf(codes.ResourceExhausted, "too many requests in flight for this subject (at most %d, max_concurrent_per_subject)", a.maxConcurrent)
	}
	if !st.limiter.Allow() {
		return nil, errorf(codes.ResourceExhausted, "rate limit reached for this subject (%g requests/s, burst %d); retry later", float64(a.rateLimit), a.rateBurst)
	}
	st.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			st.inflight--
			a.mu.Unlock()
		})
	}, nil
}

// sweepLocked forgets idle subjects whose bucket is full again.
func (a *authenticator) sweepLocked() {
	for s, st := range a.subjects {
		if st.inflight == 0 && st.limiter.Tokens() >= float64(a.rateBurst) {
			delete(a.subjects, s)
		}
	}
}

// authorize authenticates a request and admits it under the subject's
// limits.
func (s *Server) authorize(ctx context.Context, fallback string) (subject string, release func(), err error) {
	subject, err = s.auth.subject(ctx, fallback)
	if err != nil {
		return "", nil, err
	}
	release, err = s.auth.admit(subject)
	if err != nil {
		return "", nil, err
	}
	return subject, release, nil
}
