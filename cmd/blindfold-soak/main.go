// Command blindfold-soak runs a real Blindfold server in-process under many
// concurrent clients with mixed traffic for a set time, then prints requests
// served, answers by gRPC code, and goroutine, open-file and memory figures
// before, at peak and after. It exits 1 if any answer was wrong or anything
// did not return to its baseline. See docs/operations.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/soak"
)

func main() {
	duration := flag.Duration("duration", time.Minute, "how long the load runs (e.g. 10m)")
	clients := flag.Int("clients", 16, "concurrent clients")
	seed := flag.Uint64("seed", 1, "seed of the traffic mix")
	jsonOut := flag.String("json", "", "also write the report as JSON to `FILE`")
	evict := flag.Bool("evict", false, "give the server room in memory for fewer models than the clients use (all saved), so that models are evicted and reloaded throughout")
	lib := flag.String("onnxruntime-lib", "", "path of libonnxruntime.so.1 (default: search the usual places)")
	flag.Parse()
	if flag.NArg() > 0 || *duration <= 0 || *clients <= 0 {
		fmt.Fprintln(os.Stderr, "usage: blindfold-soak [--duration 10m] [--clients 16] [--seed N] [--evict] [--json FILE]")
		os.Exit(2)
	}
	rt, err := engine.Open(engine.Options{LibraryPath: *lib})
	if err != nil {
		fmt.Fprintln(os.Stderr, "blindfold-soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "soak: %d clients for %s (Ctrl-C stops early)\n", *clients, *duration)
	rep, err := soak.Run(ctx, soak.Options{Duration: *duration, Clients: *clients, Seed: *seed, Runtime: rt, Progress: os.Stderr, Evict: *evict})
	if err != nil {
		fmt.Fprintln(os.Stderr, "blindfold-soak:", err)
		os.Exit(1)
	}
	fmt.Print(rep)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "blindfold-soak:", err)
			os.Exit(1)
		}
	}
	if !rep.OK() {
		os.Exit(1)
	}
}
