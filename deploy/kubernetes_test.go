package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/blindfold-ai/blindfold/server"
)

// manifests are the parsed objects of deploy/kubernetes.
type manifests struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	claims       []*corev1.PersistentVolumeClaim
}

// decodeStrict parses one YAML document into the k8s.io/api type of its
// kind; unknown fields, and kinds the deployment does not use, are errors.
func decodeStrict(doc []byte, m *manifests) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		m.statefulSets, obj = append(m.statefulSets, o), o
	case "v1 Service":
		o := &corev1.Service{}
		m.services, obj = append(m.services, o), o
	case "v1 PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		m.claims, obj = append(m.claims, o), o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		m.pdbs, obj = append(m.pdbs, o), o
	default:
		return fmt.Errorf("unexpected kind %q (apiVersion %q)", tm.Kind, tm.APIVersion)
	}
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	// Case-sensitive, unlike encoding/json: clusterIp is not clusterIP.
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// splitDocs splits a YAML stream on its --- separators, dropping empty
// documents (comments only).
func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		empty := true
		for _, line := range strings.Split(string(d), "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
			}
		}
		if !empty {
			out = append(out, d)
		}
	}
	return out
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			if err := decodeStrict(doc, m); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// TestStrictDecodingRejectsUnknownFields keeps the manifest test honest: a
// misspelt field must fail it.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	for _, field := range []string{"clusterIp: None", "clusterIP: None\n  clusterIP: None", "headless: true"} {
		doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  " + field + "\n")
		if err := decodeStrict(doc, &manifests{}); err == nil {
			t.Errorf("%q was accepted", field)
		}
	}
}

// enclaveConfig is the configuration measured into the SGX image.
func enclaveConfig(t *testing.T) server.Config {
	t.Helper()
	cfg, err := server.LoadConfig("gramine/blindfold.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func portOf(t *testing.T, key, addr string) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s = %q: %v", key, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() {
		t.Errorf("%s = %q: a pod must listen on all addresses (0.0.0.0), not loopback", key, addr)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesManifests parses every manifest strictly and checks that
// ports, probes, selectors, resources and volumes line up with each other
// and with the server's settings in the SGX image.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	cfg := enclaveConfig(t)
	if !cfg.Metrics {
		t.Fatal("gramine/blindfold.toml: metrics is off, so the probes have no endpoint")
	}
	wantPorts := map[string]int32{
		"attested":  portOf(t, "attested_addr", cfg.AttestedAddr),
		"untrusted": portOf(t, "untrusted_addr", cfg.UntrustedAddr),
		"metrics":   portOf(t, "metrics_addr", cfg.MetricsAddr),
	}
	if len(m.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(m.statefulSets))
	}
	ss := m.statefulSets[0]
	podLabels := ss.Spec.Template.Labels
	if !selects(ss.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("StatefulSet selector %v does not select its pods %v", ss.Spec.Selector.MatchLabels, podLabels)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 2 {
		t.Errorf("StatefulSet replicas %v: want at least 2", ss.Spec.Replicas)
	}
	if len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ss.Spec.Template.Spec.Containers))
	}
	c := ss.Spec.Template.Spec.Containers[0]
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	for name, port := range wantPorts {
		if named[name] != port {
			t.Errorf("container port %q = %d, server setting says %d", name, named[name], port)
		}
	}
	// Probes: HTTP on the metrics port, /healthz for liveness and start,
	// /readyz for readiness.
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: missing or not HTTP", p.what)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s probe path %q, want %q", p.what, g.Path, p.path)
		}
		if resolvePort(g.Port, named) != wantPorts["metrics"] {
			t.Errorf("%s probe port %s is not the metrics port %d", p.what, g.Port.String(), wantPorts["metrics"])
		}
	}
	// Resources: requests for scheduling, the SGX device plugin's.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, "sgx.intel.com/epc", "sgx.intel.com/enclave", "sgx.intel.com/provision"} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("no resource request for %s", r)
		}
	}
	for _, r := range []corev1.ResourceName{"sgx.intel.com/epc", "sgx.intel.com/enclave", "sgx.intel.com/provision"} {
		if c.Resources.Limits[r] != c.Resources.Requests[r] {
			t.Errorf("extended resource %s: limit %v differs from request %v", r, c.Resources.Limits[r], c.Resources.Requests[r])
		}
	}
	// The state volume is a claim per replica, mounted.
	claims := map[string]bool{}
	for _, vc := range ss.Spec.VolumeClaimTemplates {
		claims[vc.Name] = true
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		if claims[vm.Name] && vm.SubPath == "" {
			mounted = true
		}
	}
	if !claims["state"] || !mounted {
		t.Error("no state volume claim template mounted in the container")
	}
	// Services: a headless one for peers (the StatefulSet's), one for
	// clients; both select the pods and reach both gRPC ports.
	var headless, clients *corev1.Service
	for _, s := range m.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = s
		} else {
			clients = s
		}
		if !selects(s.Spec.Selector, podLabels) {
			t.Errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		for _, name := range []string{"attested", "untrusted"} {
			found := false
			for _, p := range s.Spec.Ports {
				if p.Port == wantPorts[name] && resolvePort(p.TargetPort, named) == wantPorts[name] {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s does not serve the %s port %d", s.Name, name, wantPorts[name])
			}
		}
	}
	if headless == nil || clients == nil {
		t.Fatal("want a headless Service for peers and a Service for clients")
	}
	if clients.Spec.SessionAffinity != corev1.ServiceAffinityNone {
		t.Errorf("client Service %s: sessionAffinity %q, want None (the replicas share one identity, so connections may spread)", clients.Name, clients.Spec.SessionAffinity)
	}
	if ss.Spec.ServiceName != headless.Name {
		t.Errorf("StatefulSet serviceName %q is not the headless Service %q", ss.Spec.ServiceName, headless.Name)
	}
	checkCluster(t, m, cfg, ss, c, headless, clients, named)
	if len(m.pdbs) != 1 || m.pdbs[0].Spec.Selector == nil || !selects(m.pdbs[0].Spec.Selector.MatchLabels, podLabels) {
		t.Error("want one PodDisruptionBudget selecting the pods")
	} else if p := m.pdbs[0].Spec; p.MaxUnavailable == nil && p.MinAvailable == nil {
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
}

// checkCluster checks that the replicas form one cluster: the role each
// pod gets, the peer port and Service, the shared models volume, and that
// the image's settings with each role are valid.
func checkCluster(t *testing.T, m *manifests, cfg server.Config, ss *appsv1.StatefulSet, c corev1.Container, headless, clients *corev1.Service, named map[string]int32) {
	t.Helper()
	peer := portOf(t, "cluster_addr", cfg.ClusterAddr)
	if named["peer"] != peer {
		t.Errorf("container port \"peer\" = %d, cluster_addr says %d", named["peer"], peer)
	}
	hasPort := func(s *corev1.Service) bool {
		for _, p := range s.Spec.Ports {
			if p.Port == peer && resolvePort(p.TargetPort, named) == peer {
				return true
			}
		}
		return false
	}
	if !hasPort(headless) {
		t.Errorf("the headless Service %s does not publish the peer port %d", headless.Name, peer)
	}
	if hasPort(clients) {
		t.Errorf("the clients' Service %s exposes the peer port %d: only replicas need it", clients.Name, peer)
	}
	if want := fmt.Sprintf("%s:%d", headless.Name, peer); len(cfg.ClusterPeers) != 1 || cfg.ClusterPeers[0] != want {
		t.Errorf("cluster_peers = %q, want [%q] (the headless Service)", cfg.ClusterPeers, want)
	}
	// blindfold-0 may bootstrap when no peer answers; the others only
	// join; pods start in order, so blindfold-0 is first.
	script := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	for _, want := range []string{`*-0) export BLINDFOLD_CLUSTER=join-or-bootstrap`, `*) export BLINDFOLD_CLUSTER=join`, "exec gramine-sgx blindfold-server"} {
		if !strings.Contains(script, want) {
			t.Errorf("the container does not run %q: %s", want, script)
		}
	}
	if ss.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("podManagementPolicy %q: want OrderedReady, so that blindfold-0 bootstraps before the others join", ss.Spec.PodManagementPolicy)
	}
	for _, role := range []string{server.ClusterJoin, server.ClusterJoinOrBootstrap} {
		env := func(k string) (string, bool) {
			if k == "BLINDFOLD_CLUSTER" {
				return role, true
			}
			return "", false
		}
		if _, err := server.LoadConfig("gramine/blindfold.toml", env); err != nil {
			t.Errorf("the image's settings with BLINDFOLD_CLUSTER=%s: %v", role, err)
		}
	}
	// The shared models: one ReadWriteMany claim, mounted where the
	// enclave's cluster_models_dir comes from.
	if cfg.ClusterModelsDir != "/blindfold/shared" {
		t.Errorf("cluster_models_dir = %q, want the manifest's /blindfold/shared mount", cfg.ClusterModelsDir)
	}
	var claim *corev1.PersistentVolumeClaim
	for _, pvc := range m.claims {
		claim = pvc
	}
	if len(m.claims) != 1 || len(claim.Spec.AccessModes) != 1 || claim.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Fatalf("want one ReadWriteMany PersistentVolumeClaim for the shared models, have %d", len(m.claims))
	}
	vol := ""
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name {
			vol = v.Name
		}
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		if vm.Name == vol && vm.MountPath == "/blindfold-enclave/shared" && !vm.ReadOnly {
			mounted = true
		}
	}
	if vol == "" || !mounted {
		t.Errorf("the claim %s is not mounted read-write at /blindfold-enclave/shared (the host side of the enclave's /blindfold/shared)", claim.Name)
	}
}

// resolvePort returns the number of a port given by number or by the
// container port's name.
func resolvePort(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.String {
		return named[p.StrVal]
	}
	return p.IntVal
}

// TestSGXBuildPins checks that the SGX image builds with go.mod's Go
// version and the same Gramine image in both stages (both enter
// MRENCLAVE).
func TestSGXBuildPins(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	df, err := os.ReadFile("Dockerfile.sgx")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	argGo, gramine := "", ""
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "FROM" {
			froms = append(froms, f[1])
		}
		if len(f) == 2 && f[0] == "ARG" {
			if v, ok := strings.CutPrefix(f[1], "GO_VERSION="); ok {
				argGo = v
			}
			if v, ok := strings.CutPrefix(f[1], "GRAMINE_IMAGE="); ok {
				gramine = v
			}
		}
	}
	// The Gramine image enters MRENCLAVE: a tag moves, a digest does not.
	if !regexp.MustCompile(`^gramineproject/gramine(:[a-z0-9.-]+)?@sha256:[0-9a-f]{64}$`).MatchString(gramine) {
		t.Errorf("Dockerfile.sgx GRAMINE_IMAGE %q is not pinned by digest (gramineproject/gramine[:tag]@sha256:<64 hex>)", gramine)
	}
	if goVersion == "" || argGo != goVersion {
		t.Errorf("Dockerfile.sgx GO_VERSION %q, go.mod says %q", argGo, goVersion)
	}
	if len(froms) != 2 || froms[0] != "${GRAMINE_IMAGE}" || froms[1] != "${GRAMINE_IMAGE}" {
		t.Errorf("Dockerfile.sgx stages FROM %v: both must be ${GRAMINE_IMAGE}", froms)
	}
	sh, err := os.ReadFile("gramine/sgx.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`GOTOOLCHAIN="go$GO_VERSION"`, "-trimpath -buildvcs=false -ldflags=-buildid=", "ORT_LIB_SHA256", "build-info.txt"} {
		if !strings.Contains(string(sh), want) {
			t.Errorf("gramine/sgx.sh does not pin %s", want)
		}
	}
}
