package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Exit codes. Scripts may rely on them.
const (
	exitOK         = 0 // success
	exitUsage      = 1 // bad command line
	exitConnection = 2 // connection, attestation or trust failure
	exitServer     = 3 // the server refused the request (gRPC error)
	exitProof      = 4 // a proof or signed reply failed verification
	exitIO         = 5 // a local file could not be read or written
)

const exitCodesHelp = `Exit codes:
  0  success
  1  usage error (bad command line)
  2  connection, attestation or trust failure
  3  the server refused the request (its gRPC code and message are printed)
  4  proof or signed-reply verification failed
  5  local file or I/O error`

// exitError carries the exit code an error maps to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// env is what a command runs with.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
}

// command is one CLI command.
type command struct {
	name    string
	aliases []string
	// synopsis is the one-line usage, summary the one-line description
	// and help the longer text shown by --help.
	synopsis, summary, help string
	// minArgs and maxArgs bound the positional arguments (maxArgs < 0:
	// unbounded).
	minArgs, maxArgs int
	// setup defines the command's flags and returns its runner.
	setup func(fs *flag.FlagSet) func(e *env, args []string) error
	// sub holds subcommands ("proof verify").
	sub []*command
	// addr means the first positional argument is ADDR, which may be left
	// out when $BLINDFOLD_ADDR or a profile gives it.
	addr bool
}

func commands() []*command {
	return []*command{
		infoCommand(),
		attestCommand(),
		uploadCommand(),
		runCommand(),
		deleteCommand(),
		listCommand(),
		describeCommand(),
		versionCommand(),
		{
			name: "profile", synopsis: "blindfold profile save|use|list [arguments]",
			summary: "save connection settings (address, pinned certificate, ports) and pick the current ones",
			sub:     []*command{profileSaveCommand(), profileUseCommand(), profileListCommand()},
		},
		completionCommand(),
		{
			name: "proof", synopsis: "blindfold proof verify FILE [flags]",
			summary: "work with proof files (signed results)",
			sub:     []*command{proofVerifyCommand()},
		},
		{
			name: "policy", synopsis: "blindfold policy init|from-sigstruct|show [arguments]",
			summary: "make and check enclave policies (policy.toml)",
			sub:     []*command{policyInitCommand(), policyFromSigstructCommand(), policyShowCommand()},
		},
		{
			name: "token", synopsis: "blindfold token keygen|issue [flags]",
			summary: "make token-signing keys and bearer tokens (for operators and tests)",
			sub:     []*command{tokenKeygenCommand(), tokenIssueCommand()},
		},
		{
			name: "collateral", synopsis: "blindfold collateral fetch|verify [flags]",
			summary: "test a PCCS: fetch and verify SGX/TDX collateral; write and check offline bundles",
			sub:     []*command{collateralFetchCommand(), collateralVerifyCommand()},
		},
		{
			name: "cert", synopsis: "blindfold cert generate [flags]",
			summary: "work with the operator's TLS certificate",
			sub:     []*command{certGenerateCommand()},
		},
	}
}

const mainHelp = `blindfold is the command-line client of a Blindfold confidential inference
server (wire-compatible with BlindAI 0.5).

Usage:
  blindfold COMMAND [arguments] [flags]

Commands:
%s
Run "blindfold COMMAND --help" for a command's flags. ADDR is "host" or
"host:port" of the server's untrusted port (default port 50052); it may
be left out when $BLINDFOLD_ADDR or a profile gives it. Every connection
flag has an environment variable (BLINDFOLD_HOST_CERT, BLINDFOLD_SIMULATION,
BLINDFOLD_ATTESTED_PORT, BLINDFOLD_TOKEN, ...): see "blindfold info --help".

Trusting the server: pass the operator's certificate with --host-cert FILE,
its pinned fingerprint (a profile), or, insecurely,
--insecure-trust-on-first-use, to reach the untrusted
port, and the enclave's policy with --policy policy.toml: the server's SGX
DCAP evidence is then verified against the pinned Intel SGX Root CA and the
policy before anything is sent, and the attested port must present exactly
the attested certificate. "blindfold attest" shows what was verified.
Simulation-mode servers (no TEE) are refused unless --simulation is given,
which is UNSAFE: it protects nothing.

Messages go to stderr, results to stdout.

` + exitCodesHelp + "\n"

// run runs the CLI with args (without the program name) and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage(cmds))
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := findCommand(cmds, args[1]); c != nil {
				return dispatch(e, c, []string{"--help"}, "blindfold "+c.name)
			}
		}
		fmt.Fprint(stdout, mainUsage(cmds))
		return exitOK
	case "--version":
		fmt.Fprintln(stdout, clientVersionLine())
		return exitOK
	}
	c := findCommand(cmds, args[0])
	if c == nil {
		fmt.Fprintf(stderr, "blindfold: unknown command %q\n\n%s", args[0], mainUsage(cmds))
		return exitUsage
	}
	return dispatch(e, c, args[1:], "blindfold "+c.name)
}

func findCommand(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

func mainUsage(cmds []*command) string {
	var b strings.Builder
	for _, c := range cmds {
		if c.sub != nil {
			for _, s := range c.sub {
				fmt.Fprintf(&b, "  %-22s %s\n", c.name+" "+s.name, s.summary)
			}
			continue
		}
		name := c.name
		if len(c.aliases) > 0 {
			name += " (" + strings.Join(c.aliases, ", ") + ")"
		}
		fmt.Fprintf(&b, "  %-22s %s\n", name, c.summary)
	}
	return fmt.Sprintf(mainHelp, b.String())
}

// dispatch parses a command's flags and runs it.
func dispatch(e *env, c *command, args []string, path string) int {
	if c.sub != nil {
		if len(args) == 0 || isHelp(args[0]) {
			w, code := e.stderr, exitUsage
			if len(args) > 0 {
				w, code = e.stdout, exitOK
			}
			fmt.Fprintf(w, "Usage:\n  %s\n\nSubcommands:\n", c.synopsis)
			for _, s := range c.sub {
				fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
			}
			return code
		}
		s := findCommand(c.sub, args[0])
		if s == nil {
			fmt.Fprintf(e.stderr, "%s: unknown subcommand %q (allowed: %s)\n", path, args[0], subNames(c))
			return exitUsage
		}
		return dispatch(e, s, args[1:], path+" "+s.name)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runner := c.setup(fs)
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage:\n  %s\n\n%s\n", c.synopsis, strings.TrimSpace(c.help))
		printFlags(w, fs)
		fmt.Fprintf(w, "\n%s\n", exitCodesHelp)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(e.stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\nRun \"%s --help\" for usage.\n", path, err, path)
		return exitUsage
	}
	if c.addr && len(pos) == c.minArgs-1 && defaultAddr(fs) != "" {
		// ADDR left out: the connection settings supply it
		// ($BLINDFOLD_ADDR or the profile), or say it is missing.
		pos = append([]string{""}, pos...)
	}
	if len(pos) < c.minArgs || (c.maxArgs >= 0 && len(pos) > c.maxArgs) {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments (%d)\nUsage: %s\nRun \"%s --help\" for more.\n", path, len(pos), c.synopsis, path)
		return exitUsage
	}
	return report(e, path, runner(e, pos))
}

func subNames(c *command) string {
	var n []string
	for _, s := range c.sub {
		n = append(n, s.name)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

// parseInterspersed parses flags that may come before, between or after
// positional arguments; "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// report prints err (if any) to stderr and returns its exit code.
func report(e *env, path string, err error) int {
	if err == nil {
		return exitOK
	}
	code := classify(err)
	switch code {
	case exitServer:
		fmt.Fprintf(e.stderr, "%s: the server refused the request (%s): %s\n", path, status.Code(err), explainServer(err))
	case exitUsage:
		fmt.Fprintf(e.stderr, "%s: %s\nRun \"%s --help\" for usage.\n", path, plainText(err), path)
	default:
		fmt.Fprintf(e.stderr, "%s: %s\n", path, plainText(err))
	}
	return code
}

// classify maps an error to an exit code.
func classify(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ce *client.ConnectError
	var pe *fs.PathError
	var ne *tensor.NPYError
	var me *proof.MismatchError
	switch {
	case errors.As(err, &ce):
		// Before the proof errors: evidence refused at Connect shares
		// sentinels (ErrBadEvidence, ...) with proof verification.
		if errors.As(err, &pe) {
			return exitIO
		}
		return exitConnection
	case errors.Is(err, client.ErrVerification), errors.Is(err, proof.ErrBadSignature),
		errors.Is(err, proof.ErrSimulationProof), errors.Is(err, proof.ErrNoPolicy),
		errors.Is(err, proof.ErrBadEvidence), errors.Is(err, proof.ErrPolicyMismatch),
		errors.As(err, &me):
		return exitProof
	case errors.Is(err, client.ErrNoTrust), errors.Is(err, client.ErrSimulationServer),
		errors.Is(err, client.ErrNoPolicy), errors.Is(err, client.ErrTrust),
		errors.Is(err, client.ErrIncompatibleVersion):
		return exitConnection
	case errors.As(err, &pe), errors.As(err, &ne):
		return exitIO
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.OK {
		if st.Code() == codes.Unavailable {
			return exitConnection
		}
		return exitServer
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return exitConnection
	}
	return exitUsage
}
