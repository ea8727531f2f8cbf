package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification that
// compose/compose.yaml uses; unknown keys are errors (x- extension keys
// are allowed by name).
type composeFile struct {
	Name       string                    `json:"name"`
	XBlindfold composeService            `json:"x-blindfold"`
	Services   map[string]composeService `json:"services"`
	Volumes    map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Image       string            `json:"image"`
	Restart     string            `json:"restart"`
	Hostname    string            `json:"hostname"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	DependsOn   []string          `json:"depends_on"`
}

// TestComposeCluster parses compose/compose.yaml (YAML merge keys
// resolved) and checks three simulation replicas listening on all
// addresses with metrics on, and a load balancer whose configuration
// sends both ports to every replica.
func TestComposeCluster(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("compose/compose.yaml: %v", err)
	}
	var replicas []string
	for name, s := range c.Services {
		if name == "lb" {
			continue
		}
		replicas = append(replicas, name)
		if s.Build == nil || s.Build.Context != "../.." || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: not built from deploy/Dockerfile at the repository root: %+v", name, s.Build)
		}
		for k, want := range map[string]string{
			"BLINDFOLD_SIMULATION": "true", "BLINDFOLD_UNTRUSTED_ADDR": "0.0.0.0:50052", "BLINDFOLD_ATTESTED_ADDR": "0.0.0.0:50051",
			"BLINDFOLD_METRICS": "true", "BLINDFOLD_METRICS_ADDR": "0.0.0.0:9464",
		} {
			if s.Environment[k] != want {
				t.Errorf("%s: %s = %q, want %q", name, k, s.Environment[k], want)
			}
		}
		if s.Hostname != name || len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":"+s.Environment["BLINDFOLD_STATE_DIR"]) {
			t.Errorf("%s: hostname %q, volumes %v (want its own state volume at BLINDFOLD_STATE_DIR)", name, s.Hostname, s.Volumes)
		}
	}
	if len(replicas) != 3 {
		t.Fatalf("%d replicas, want 3", len(replicas))
	}
	lb, ok := c.Services["lb"]
	if !ok || len(lb.DependsOn) != 3 {
		t.Fatal("no load balancer depending on the three replicas")
	}
	conf, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"50051", "50052"} {
		found := false
		for _, p := range lb.Ports {
			if strings.HasSuffix(p, ":"+port+":"+port) {
				found = true
			}
		}
		if !found {
			t.Errorf("the load balancer does not publish %s", port)
		}
		if !regexp.MustCompile(`listen\s+` + port + `;`).Match(conf) {
			t.Errorf("nginx.conf does not listen on %s", port)
		}
		for _, r := range replicas {
			if !strings.Contains(string(conf), "server "+r+":"+port+";") {
				t.Errorf("nginx.conf does not send %s to %s", port, r)
			}
		}
	}
	if strings.Contains(string(conf), "$remote_addr consistent") || strings.Count(string(conf), "hash $remote_addr;") != 2 {
		t.Error("nginx.conf: both upstreams must pick a replica by the same plain hash of the client's address")
	}
}
