package snp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestKDSCaches(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("crl"))
	}))
	defer srv.Close()
	k := &KDS{HTTP: srv.Client()}
	for range 3 {
		b, err := k.Get(context.Background(), srv.URL+"/crl")
		if err != nil || string(b) != "crl" {
			t.Fatalf("Get = %q, %v", b, err)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1 (cached)", hits.Load())
	}
	if _, err := k.Get(context.Background(), srv.URL+"/missing"); err == nil {
		t.Fatal("HTTP 404 did not fail")
	}
}
