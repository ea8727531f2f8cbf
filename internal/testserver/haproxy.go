package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HAProxy starts HAProxy (from the system) in TCP mode, round robin, with
// one frontend for the untrusted ports and one for the attested ports of
// a set of replicas, and stops it when the test ends. It returns the
// balancer's untrusted address and attested port. Without haproxy the test
// is skipped, or fails under CI (where scripts/test.sh installs it).
func HAProxy(t testing.TB, untrusted, attested []string) (string, int) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is not installed (CI must install it: scripts/test.sh does, as root): %v", err)
		}
		t.Skipf("haproxy is not installed (apt-get install haproxy): %v", err)
	}
	up, ap := freePort(t), freePort(t)
	var b strings.Builder
	b.WriteString("global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5m\n  timeout server 5m\n  balance roundrobin\n")
	for _, fe := range []struct {
		name  string
		port  int
		addrs []string
	}{{"untrusted", up, untrusted}, {"attested", ap, attested}} {
		fmt.Fprintf(&b, "frontend %s\n  bind 127.0.0.1:%d\n  default_backend %s\nbackend %s\n", fe.name, fe.port, fe.name, fe.name)
		for i, a := range fe.addrs {
			fmt.Fprintf(&b, "  server r%d %s check inter 500ms fall 1 rise 1\n", i, a)
		}
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", up))
		if err == nil {
			c.Close()
			return fmt.Sprintf("127.0.0.1:%d", up), ap
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
