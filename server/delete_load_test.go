//go:build cgo

package server_test

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// cpuHogs starts n processes that keep a CPU busy until the test ends.
func cpuHogs(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start a CPU-bound process: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
}

// TestDeleteUnderCPULoad runs the demo's steps (a new connection per
// command, as the CLI makes) while other processes keep every CPU busy,
// and bounds how long a delete takes: its connection and its RPC, which
// includes the release of the model's ONNX Runtime session.
func TestDeleteUnderCPULoad(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the CPU")
	}
	srv := testserver.Start(t)
	model := testserver.Model(t, "cnn.onnx")
	cpuHogs(t, 4)
	quiet := client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn := func(ctx context.Context) *client.Client {
		c, err := client.Connect(ctx, srv.UntrustedAddr, client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const rounds = 8
	var connects, deletes []time.Duration
	for i := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		id := "m" + strconv.Itoa(i)
		c := conn(ctx)
		if _, err := c.UploadModel(ctx, model, client.WithModelID(id)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		start := time.Now()
		c = conn(ctx)
		connected := time.Now()
		if err := c.DeleteModel(ctx, id); err != nil {
			t.Fatal(err)
		}
		connects = append(connects, connected.Sub(start))
		deletes = append(deletes, time.Since(connected))
		c.Close()
		cancel()
	}
	sort.Slice(connects, func(i, j int) bool { return connects[i] < connects[j] })
	sort.Slice(deletes, func(i, j int) bool { return deletes[i] < deletes[j] })
	t.Logf("under 4 CPU-bound processes, %d rounds: connect median %v max %v; delete RPC median %v max %v",
		rounds, connects[rounds/2], connects[rounds-1], deletes[rounds/2], deletes[rounds-1])
	if deletes[rounds-1] > 10*time.Second || connects[rounds-1] > 10*time.Second {
		t.Errorf("a delete took %v (connection %v) under CPU load; the bound is 10 s", deletes[rounds-1], connects[rounds-1])
	}
}
