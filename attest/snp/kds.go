package snp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// KDS fetches from AMD's Key Distribution Service
// (https://kdsintf.amd.com), caching every answer for TTL: the KDS
// throttles repeated requests. It implements Getter; use one per process.
type KDS struct {
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
	// TTL is how long an answer is kept; zero means 12 hours. (VCEK
	// certificates do not change; CRLs are reissued rarely, and a cached
	// one is still checked against its nextUpdate.)
	TTL time.Duration

	mu    sync.Mutex
	cache map[string]kdsEntry
}

type kdsEntry struct {
	body []byte
	at   time.Time
}

// maxKDSBody bounds an answer's size.
const maxKDSBody = 1 << 20

// Get returns the body at url, from the cache when fresh.
func (k *KDS) Get(ctx context.Context, url string) ([]byte, error) {
	ttl := k.TTL
	if ttl == 0 {
		ttl = 12 * time.Hour
	}
	k.mu.Lock()
	if e, ok := k.cache[url]; ok && time.Since(e.at) < ttl {
		k.mu.Unlock()
		return e.body, nil
	}
	k.mu.Unlock()
	hc := k.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("snp: KDS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("snp: KDS: %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKDSBody+1))
	if err != nil {
		return nil, fmt.Errorf("snp: KDS: %w", err)
	}
	if len(body) > maxKDSBody {
		return nil, fmt.Errorf("snp: KDS: %s: answer larger than %d bytes", url, maxKDSBody)
	}
	k.mu.Lock()
	if k.cache == nil {
		k.cache = map[string]kdsEntry{}
	}
	k.cache[url] = kdsEntry{body: body, at: time.Now()}
	k.mu.Unlock()
	return body, nil
}
