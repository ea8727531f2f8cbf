package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

var execLookPath = exec.LookPath

// TestPrometheusScrapes starts a real Prometheus (Debian's prometheus
// package) that scrapes a running server, sends requests, and asks
// Prometheus's HTTP API for the request counter and latency histogram.
func TestPrometheusScrapes(t *testing.T) {
	bin := needTool(t, "prometheus", "prometheus")
	ts := testserver.Start(t, withMetrics)
	const calls = 7
	att := connectUntrusted(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range calls {
		if _, err := att.GetServerInfo(ctx, &untrusted.GetServerInfoRequest{}); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	promAddr := freeAddr(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: blindfold
    static_configs:
      - targets: [%q]
`, ts.MetricsAddr())
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})

	api := "http://" + promAddr
	want := map[string]float64{
		`blindfold_requests_total{job="blindfold",port="untrusted",protocol="blindai05",rpc="untrusted.Attestation/GetServerInfo",code="OK"}`: calls,
		`blindfold_request_duration_seconds_count{job="blindfold",rpc="untrusted.Attestation/GetServerInfo"}`:                                 calls,
		`blindfold_request_duration_seconds_bucket{job="blindfold",rpc="untrusted.Attestation/GetServerInfo",le="+Inf"}`:                      calls,
		`blindfold_ready{job="blindfold"}`: 1,
	}
	deadline := time.Now().Add(90 * time.Second)
	for q, v := range want {
		for {
			got, err := promQuery(ctx, api, q)
			if err == nil && got == v {
				break
			}
			if time.Now().After(deadline) {
				_, body := httpGet(t, "http://"+ts.MetricsAddr()+"/metrics")
				t.Logf("/metrics:\n%s", body)
				up, err := promQuery(ctx, api, "up")
				t.Logf("up: %v %v", up, err)
				t.Fatalf("Prometheus query %s: %v, %v; want %v", q, got, err, v)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// The histogram answers a quantile: a time, positive and below the
	// test's own.
	q := `histogram_quantile(0.5, sum by (le) (blindfold_request_duration_seconds_bucket{rpc="untrusted.Attestation/GetServerInfo"}))`
	got, err := promQuery(ctx, api, q)
	if err != nil || got <= 0 || got > 60 {
		t.Errorf("%s = %v, %v", q, got, err)
	}
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// promQuery runs an instant query on Prometheus's HTTP API and returns its
// one sample's value.
func promQuery(ctx context.Context, api, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", r.Error)
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("%d series", len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
