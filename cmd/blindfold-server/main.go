// Command blindfold-server serves ONNX models over Blindfold's attested gRPC
// protocol (BlindAI 0.5 compatible). See docs/server.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/server/blindai06"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// banner is printed at start in simulation mode.
var banner = box([]string{
	"SIMULATION MODE - NO TEE, NO ATTESTATION, NO CONFIDENTIALITY",
	"The host, its operator and anyone with access to this machine can read",
	"every model and every input. Use it for development only. Never send real",
	"data to this server.",
})

// box frames lines in a box of '#' whose right edge is straight.
func box(lines []string) string {
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	edge := strings.Repeat("#", width+6)
	var b strings.Builder
	b.WriteString("\n" + edge + "\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "#  %-*s  #\n", width, l)
	}
	b.WriteString(edge + "\n")
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		if len(args) > 1 {
			fmt.Fprintf(stderr, "blindfold-server version: unexpected arguments %q\n", args[1:])
			return 2
		}
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	if len(args) > 0 && args[0] == "help" {
		args = []string{"--help"}
	}
	fs := flag.NewFlagSet("blindfold-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "TOML configuration `FILE` [env BLINDFOLD_CONFIG]")
	version := fs.Bool("version", false, "print the version and exit (also: blindfold-server version)")
	server.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "blindfold-server: %v\nRun \"blindfold-server --help\" for the flags.\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "blindfold-server: unexpected arguments %q (see --help)\n", fs.Args())
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	if *configPath == "" {
		*configPath = os.Getenv("BLINDFOLD_CONFIG")
	}
	cfg, err := server.LoadConfig(*configPath, os.LookupEnv)
	if err == nil {
		err = server.ApplyFlags(fs, &cfg)
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		err = cfg.MakePathsAbsolute()
	}
	if err != nil {
		fmt.Fprintf(stderr, "blindfold-server: %v\n", err)
		return 2
	}
	// Catch signals before anything starts, so that a SIGTERM during start-up
	// also ends in an orderly shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := newLogger(stderr, cfg)
	if cfg.Simulation {
		fmt.Fprint(stderr, banner)
	}
	// The process works in an empty folder of its own, so that no file is
	// reachable by a relative path, and ONNX Runtime looks there for
	// external data (which the engine refuses before ONNX Runtime sees a
	// model). The library is found first: its search starts at the
	// folder the server was started in.
	workDir, err := server.PrepareWorkDir(&cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	rt, err := engine.Open(engine.Options{
		LibraryPath: findLibrary(cfg.OnnxRuntimeLib), IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: cfg.InterOpThreads,
		MemoryLimit: int64(cfg.EngineMemoryLimit), DisableSpinning: !cfg.EngineSpinning,
		MaxModelNodes: cfg.MaxModelNodes, MaxModelInitializers: cfg.MaxModelInitializers, EmptyDir: workDir,
	})
	if err != nil {
		log.Error("cannot start the engine", "err", err)
		return 1
	}
	if err := os.Chdir(workDir); err != nil {
		log.Error("cannot start: entering the work folder", "work_dir", workDir, "err", err)
		return 1
	}
	log.Info("working in an empty folder", "work_dir", workDir)
	srv, err := server.New(server.Options{Config: cfg, Runtime: rt, Logger: log, Frontends: []server.Frontend{blindai06.New()}})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Wait(ctx); err != nil {
		log.Error("serving failed", "err", err)
		return 1
	}
	log.Info("shutting down: no new requests; waiting for in-flight ones", "deadline", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut in-flight requests", "err", err)
	}
	log.Info("stopped")
	return 0
}

// versionLine is the server's version, in the form the client's
// "blindfold version" prints beside its own.
func versionLine() string {
	return fmt.Sprintf("blindfold-server %s (protocol %s)", server.Version, server.ProtocolVersion)
}

const helpHead = `Usage:
  blindfold-server [--config FILE] [flags]
  blindfold-server version

Serves ONNX models to BlindAI 0.5 and Blindfold clients on two ports: the
untrusted port (attestation material) and the attested port (inference).
Settings come from the TOML file, then BLINDFOLD_* environment variables,
then flags (flags win). Relative paths in the file are relative to the
file's folder; those from flags and variables, to the current folder.
An example file is examples/blindfold.toml; docs/configuration.md lists
every setting.

Without a TEE the server runs only with --simulation, which protects nothing.

Flags (TOML key and environment variable in brackets):
  --config FILE
    	TOML configuration file [env BLINDFOLD_CONFIG]
  --version
    	print the version and exit (also: blindfold-server version)
`

// printHelp writes the help: every setting as a flag with its type,
// default, TOML key and environment variable.
func printHelp(w io.Writer) {
	fmt.Fprint(w, helpHead)
	for _, s := range server.Settings() {
		arg := " " + strings.ToUpper(s.Type)
		if s.Type == "bool" {
			arg = ""
		}
		def := ""
		if s.Default != "" {
			def = " (default " + s.Default + ")"
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s%s [toml %s, env %s]\n", s.Flag, arg, s.Usage, def, s.Key, s.Env)
	}
}

func newLogger(w io.Writer, cfg server.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
