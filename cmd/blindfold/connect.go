package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/policy"
)

// connFlags are the connection settings of every networked command. Each
// field is described once, by its tags: flag is the flag's name (and, with
// "-" turned into "_", the profile key), env the environment variable,
// arg the flag's argument in help, help the text. Flags, environment
// variables, profile keys and help are derived from them: a flag wins over
// the environment, which wins over the profile, which wins over the
// default. Fields tagged hidden are left out of help.
type connFlags struct {
	HostCert     string        `flag:"host-cert" env:"BLINDFOLD_HOST_CERT" arg:"FILE" help:"trust the untrusted port through the operator's certificate FILE (host_server.pem)"`
	Fingerprint  string        `flag:"host-cert-fingerprint" env:"BLINDFOLD_HOST_CERT_FINGERPRINT" arg:"SHA256" help:"trust the untrusted port through the SHA-256 fingerprint of the operator's certificate (hex, colons optional; what \"blindfold profile save\" pins)"`
	TOFU         bool          `flag:"insecure-trust-on-first-use" env:"" help:"INSECURE: trust whatever certificate the untrusted port presents (prints its fingerprint)"`
	Simulation   bool          `flag:"simulation" env:"BLINDFOLD_SIMULATION" help:"UNSAFE: accept a simulation-mode server (no TEE; protects nothing; for testing only); not with --policy"`
	AttestedPort int           `flag:"attested-port" env:"BLINDFOLD_ATTESTED_PORT" arg:"PORT" help:"attested port of the server (default: the port a Blindfold server reports, else 50051); needed for BlindAI servers on other ports and behind port mappings"`
	Policy       string        `flag:"policy" env:"BLINDFOLD_POLICY" arg:"FILE" help:"verify the server's hardware evidence against the enclave policy FILE (policy.toml)"`
	Token        string        `flag:"token" env:"BLINDFOLD_TOKEN" arg:"JWT" help:"bearer JWT for servers that require authentication (prefer the variable: flags show in process lists)"`
	Timeout      time.Duration `flag:"timeout" env:"BLINDFOLD_TIMEOUT" arg:"DURATION" help:"time limit for the whole command (e.g. 30s, 5m)"`
	Quiet        bool          `flag:"quiet" env:"BLINDFOLD_QUIET" help:"shorten warnings (the simulation banner becomes one line; it is never hidden)"`
	Profile      string        `flag:"profile" env:"BLINDFOLD_PROFILE" arg:"NAME" help:"use the connection settings saved as NAME (default: the current profile, if any; see \"blindfold profile\")"`
	TestRootCA   string        `flag:"insecure-test-root-ca" env:"" arg:"FILE" hidden:"true" help:"FOR TESTS ONLY: verify evidence against this test root CA FILE (PEM) instead of Intel's; proves nothing"`

	nonce  []byte          // set by commands that ask for fresh evidence
	extra  []client.Option // further options a command adds
	loaded *policy.Policy  // the --policy file, once connect has read it
	fs     *flag.FlagSet
	// addrFrom says where the address came from, for messages.
	addrFrom string
}

// addrEnv names the environment variable of the default server address.
const addrEnv = "BLINDFOLD_ADDR"

// connDefaults are the defaults of the connection settings.
var connDefaults = connFlags{Timeout: 2 * time.Minute}

// connSetting is one connection setting, read from connFlags' tags.
type connSetting struct {
	field              int
	flag, env, arg, hp string
	hidden             bool
}

// profileKey is the setting's key in a profile.
func (s connSetting) profileKey() string { return strings.ReplaceAll(s.flag, "-", "_") }

func connSettings() []connSetting {
	t := reflect.TypeFor[connFlags]()
	var out []connSetting
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("flag")
		if name == "" {
			continue
		}
		out = append(out, connSetting{field: i, flag: name, env: f.Tag.Get("env"), arg: f.Tag.Get("arg"), hp: f.Tag.Get("help"), hidden: f.Tag.Get("hidden") == "true"})
	}
	return out
}

// isConnFlag reports whether name is a connection flag, and whether it is
// hidden from help.
func isConnFlag(name string) (conn, hidden bool) {
	s, ok := connSettingOf(name)
	return ok, s.hidden
}

func connSettingOf(name string) (connSetting, bool) {
	for _, s := range connSettings() {
		if s.flag == name {
			return s, true
		}
	}
	return connSetting{}, false
}

func addConnFlags(fs *flag.FlagSet) *connFlags {
	c := new(connFlags)
	*c = connDefaults
	c.fs = fs
	v := reflect.ValueOf(c).Elem()
	for _, s := range connSettings() {
		usage := s.hp
		if s.env != "" {
			usage += " [env " + s.env + "]"
		}
		switch p := v.Field(s.field).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, usage)
		case *bool:
			fs.BoolVar(p, s.flag, *p, usage)
		case *int:
			fs.IntVar(p, s.flag, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, s.flag, *p, usage)
		default:
			panic(fmt.Sprintf("connFlags: unsupported type %T", p))
		}
	}
	return c
}

// resolve fills the settings not given as flags from the environment, then
// from the profile, and returns the server address: addr, else
// $BLINDFOLD_ADDR, else the profile's.
func (c *connFlags) resolve(addr string) (string, error) {
	given := map[string]bool{}
	if c.fs != nil {
		c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	}
	v := reflect.ValueOf(c).Elem()
	settings := connSettings()
	for _, s := range settings {
		if given[s.flag] || s.env == "" || (s.flag == "profile" && c.Profile == noProfile) {
			continue
		}
		if val, ok := os.LookupEnv(s.env); ok && strings.TrimSpace(val) != "" {
			if err := setConn(v.Field(s.field), strings.TrimSpace(val)); err != nil {
				return "", usageErrorf("environment variable %s: %v", s.env, err)
			}
			given[s.flag] = true
		}
	}
	// One way of trusting the server, from one place: a trust setting from
	// a flag or the environment sets aside the profile's.
	trust := []string{"host-cert", "host-cert-fingerprint", "insecure-trust-on-first-use"}
	for _, t := range trust {
		if given[t] {
			for _, u := range trust {
				given[u] = true
			}
			break
		}
	}
	c.addrFrom = "ADDR"
	if addr == "" {
		if a, ok := os.LookupEnv(addrEnv); ok && strings.TrimSpace(a) != "" {
			addr, c.addrFrom = strings.TrimSpace(a), addrEnv
		}
	}
	p, name, err := loadProfile(c.Profile)
	if err != nil {
		return "", err
	}
	if p != nil {
		for _, s := range settings {
			val, ok := p.values[s.profileKey()]
			if !ok || given[s.flag] {
				continue
			}
			if err := setConn(v.Field(s.field), val); err != nil {
				return "", usageErrorf("profile %q in %s: %s: %v", name, p.path, s.profileKey(), err)
			}
		}
		if addr == "" {
			addr, c.addrFrom = p.addr, fmt.Sprintf("profile %q", name)
		}
	}
	if addr == "" {
		return "", usageErrorf("no server address: give ADDR (host or host:port of the untrusted port), set %s, or save a profile with \"blindfold profile save NAME ADDR ...\"", addrEnv)
	}
	return addr, nil
}

// defaultAddr returns the server address used when a command is given no
// ADDR: $BLINDFOLD_ADDR, else the address of the profile that applies
// (--profile, $BLINDFOLD_PROFILE or the current one); "" if none.
func defaultAddr(fs *flag.FlagSet) string {
	if a := strings.TrimSpace(os.Getenv(addrEnv)); a != "" {
		return a
	}
	name := os.Getenv("BLINDFOLD_PROFILE")
	if f := fs.Lookup("profile"); f != nil && f.Value.String() != "" {
		name = f.Value.String()
	}
	p, _, err := loadProfile(name)
	if err != nil && name != "" {
		// A profile asked for by name that cannot be used: let the
		// command run, so that it says why.
		return "(profile " + name + ")"
	}
	if err != nil || p == nil {
		return ""
	}
	return p.addr
}

// setConn parses s into a connection setting's field.
func setConn(f reflect.Value, s string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (1, true, 0 or false)", s)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 5m)", s)
		}
		*p = d
	}
	return nil
}

const simulationBanner = `
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  WARNING: SIMULATION MODE (--simulation). THIS PROTECTS NOTHING.     !!
!!  There is no TEE and no attestation. The server's operator can read  !!
!!  every model and input you send, and "signed" results prove nothing  !!
!!  about where they were computed. Use it for testing only.            !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

`

// simulationLine is the banner under --quiet: shorter, never hidden.
const simulationLine = "WARNING: SIMULATION MODE (--simulation): no TEE, no attestation; THIS PROTECTS NOTHING.\n"

const tofuBanner = `WARNING: --insecure-trust-on-first-use: the untrusted port's certificate is
not checked against the operator's. Compare the fingerprint printed below
with the operator's host_server.pem (openssl x509 -fingerprint -sha256).
`

// connect resolves and validates the connection settings and connects to
// addr (empty: the default address). The returned cancel releases the
// command's timeout.
func (c *connFlags) connect(e *env, addr string) (*client.Client, context.Context, context.CancelFunc, error) {
	addr, err := c.resolve(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Policy != "" && c.Simulation {
		return nil, nil, nil, usageErrorf("--policy and --simulation exclude each other: with a policy, a simulation server is never accepted; pass --simulation alone to accept one (it protects nothing)")
	}
	trusts := 0
	for _, set := range []bool{c.HostCert != "", c.Fingerprint != "", c.TOFU} {
		if set {
			trusts++
		}
	}
	if trusts > 1 {
		return nil, nil, nil, usageErrorf("--host-cert, --host-cert-fingerprint and --insecure-trust-on-first-use exclude each other; pass one")
	}
	if trusts == 0 {
		return nil, nil, nil, usageErrorf("no way to trust the server: pass --host-cert FILE (the operator's host_server.pem; or set BLINDFOLD_HOST_CERT), --host-cert-fingerprint SHA256, a saved --profile, or, insecurely, --insecure-trust-on-first-use")
	}
	if c.Timeout <= 0 {
		return nil, nil, nil, usageErrorf("--timeout must be positive, got %s", c.Timeout)
	}
	if c.AttestedPort < 0 || c.AttestedPort > 65535 {
		return nil, nil, nil, usageErrorf("--attested-port must be from 1 to 65535, got %d", c.AttestedPort)
	}
	if _, _, err := client.SplitAddr(addr); err != nil {
		return nil, nil, nil, usageErrorf("%s: %s", c.addrFrom, strings.TrimPrefix(err.Error(), "client: "))
	}
	level := slog.LevelWarn
	if c.Quiet && c.Simulation {
		// The one-line banner below says it; the library's warning would
		// repeat it.
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	opts := []client.Option{client.WithLogger(log)}
	if c.AttestedPort != 0 {
		opts = append(opts, client.WithAttestedPort(c.AttestedPort))
	}
	switch {
	case c.HostCert != "":
		opts = append(opts, client.WithHostCertificateFile(c.HostCert))
	case c.Fingerprint != "":
		opts = append(opts, client.WithHostCertificateFingerprint(c.Fingerprint))
	default:
		fmt.Fprint(e.stderr, tofuBanner)
		opts = append(opts, client.WithInsecureTrustOnFirstUse())
	}
	if c.Policy != "" {
		p, err := loadPolicy(e, c.Policy)
		if err != nil {
			return nil, nil, nil, err
		}
		c.loaded = p
		opts = append(opts, client.WithPolicy(p))
	}
	if c.TestRootCA != "" {
		root, err := loadTestRoot(c.TestRootCA)
		if err != nil {
			return nil, nil, nil, err
		}
		fmt.Fprint(e.stderr, testRootBanner)
		opts = append(opts, client.WithTestRootCA(root))
	}
	if len(c.nonce) > 0 {
		opts = append(opts, client.WithNonce(c.nonce))
	}
	opts = append(opts, c.extra...)
	if c.Simulation {
		if c.Quiet {
			fmt.Fprint(e.stderr, simulationLine)
		} else {
			fmt.Fprint(e.stderr, simulationBanner)
		}
		opts = append(opts, client.WithSimulation())
	}
	if tok := strings.TrimSpace(c.Token); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	cl, err := client.Connect(ctx, addr, opts...)
	if err != nil {
		cancel()
		return nil, nil, nil, explainConnect(err, c, addr)
	}
	return cl, ctx, func() { cl.Close(); cancel() }, nil
}

// printFlags writes a command's flags: its own first, then the connection
// flags, each with its argument, default and environment variable. Hidden
// flags are left out.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var own, conn strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		isConn, hidden := isConnFlag(f.Name)
		if hidden || hiddenFlags[f.Name] {
			return
		}
		b := &own
		if isConn {
			b = &conn
		}
		arg, usage := flag.UnquoteUsage(f)
		if s, ok := connSettingOf(f.Name); ok {
			arg, usage = s.arg, f.Usage
		}
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name // one-letter flags are written with one dash
		}
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(b, "%s\n    \t%s", line, usage)
		if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "[]" {
			fmt.Fprintf(b, " (default %s)", def)
		}
		b.WriteString("\n")
	})
	if own.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", own.String())
	}
	if conn.Len() > 0 {
		fmt.Fprintf(w, "\nConnection flags (flag, then environment variable, then profile; ADDR may come from %s or the profile):\n%s", addrEnv, conn.String())
	}
}

// hiddenFlags are test-only flags of commands that help does not show.
var hiddenFlags = map[string]bool{"insecure-test-root-ca": true}
