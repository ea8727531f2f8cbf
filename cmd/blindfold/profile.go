package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/client"
)

// profilesEnv names the environment variable of the profile file's path.
const profilesEnv = "BLINDFOLD_PROFILES"

// profilesPath returns the profile file: $BLINDFOLD_PROFILES, else
// $XDG_CONFIG_HOME/blindfold/profiles.toml, else
// ~/.config/blindfold/profiles.toml.
func profilesPath() string {
	if p := os.Getenv(profilesEnv); p != "" {
		return p
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "blindfold", "profiles.toml")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config", "blindfold", "profiles.toml")
	}
	return "blindfold-profiles.toml"
}

// noProfile as a profile name means none, not even the current one.
const noProfile = "-"

// profileFile is the TOML shape of the profile file. Each profile's keys
// are "addr" and the connection settings' flag names with "_" for "-"
// (host_cert, host_cert_fingerprint, attested_port, simulation, ...).
type profileFile struct {
	Current  string                    `toml:"current"`
	Profiles map[string]map[string]any `toml:"profile"`
}

// profile is one loaded profile.
type profile struct {
	path   string
	addr   string
	values map[string]string // profile key -> value as text
}

func readProfiles() (*profileFile, string, error) {
	path := profilesPath()
	pf := &profileFile{}
	_, err := toml.DecodeFile(path, pf)
	if errors.Is(err, fs.ErrNotExist) {
		return &profileFile{Profiles: map[string]map[string]any{}}, path, nil
	}
	if err != nil {
		return nil, path, withCode(exitIO, fmt.Errorf("reading the profiles: %w", err))
	}
	if pf.Profiles == nil {
		pf.Profiles = map[string]map[string]any{}
	}
	return pf, path, nil
}

// loadProfile returns the profile name (empty: the current one, if any),
// or nil when none applies.
func loadProfile(name string) (*profile, string, error) {
	pf, path, err := readProfiles()
	if err != nil {
		return nil, "", err
	}
	if name == noProfile {
		return nil, "", nil
	}
	explicit := name != ""
	if !explicit {
		name = pf.Current
	}
	if name == "" {
		return nil, "", nil
	}
	raw, ok := pf.Profiles[name]
	if !ok {
		if !explicit {
			return nil, "", usageErrorf("the current profile %q is not in %s; pick another with \"blindfold profile use NAME\"", name, path)
		}
		return nil, "", usageErrorf("no profile %q in %s (saved: %s)", name, path, strings.Join(profileNames(pf), ", "))
	}
	known := map[string]bool{"addr": true}
	for _, s := range connSettings() {
		known[s.profileKey()] = true
	}
	p := &profile{path: path, values: map[string]string{}}
	for k, v := range raw {
		if !known[k] {
			return nil, "", usageErrorf("profile %q in %s: unknown key %q", name, path, k)
		}
		text := fmt.Sprint(v)
		if k == "addr" {
			p.addr = text
			continue
		}
		p.values[k] = text
	}
	return p, name, nil
}

func profileNames(pf *profileFile) []string {
	var names []string
	for n := range pf.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func writeProfiles(pf *profileFile, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return withCode(exitIO, err)
	}
	var b strings.Builder
	b.WriteString("# Blindfold CLI connection profiles (blindfold profile save/use/list).\n")
	if err := toml.NewEncoder(&b).Encode(pf); err != nil {
		return withCode(exitIO, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return withCode(exitIO, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return withCode(exitIO, err)
	}
	return nil
}

// profileSaveFlags are the flags of "profile save" besides the connection
// flags.
type profileSaveFlags struct {
	conn       *connFlags
	keepCert   bool
	noActivate bool
}

func profileSaveCommand() *command {
	return &command{
		name:     "save",
		synopsis: "blindfold profile save NAME [ADDR] [connection flags]",
		summary:  "connect once and save the address, pinned certificate fingerprint and ports as a profile",
		help: `Connects to ADDR (or $BLINDFOLD_ADDR) as "blindfold info" does, then saves a profile NAME
holding the address, the SHA-256 fingerprint of the untrusted port's
certificate (pinned: later commands trust that certificate only), the
attested port used, --simulation and --policy. Tokens are never saved:
use BLINDFOLD_TOKEN. The profile becomes the current one unless
--no-use is given, so that later commands need no ADDR and no
connection flags:

  blindfold profile save local localhost --host-cert host_server.pem --simulation
  blindfold list

The profiles live in ` + "$" + profilesEnv + `, else
$XDG_CONFIG_HOME/blindfold/profiles.toml (~/.config/blindfold/profiles.toml).`,
		minArgs: 1, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &profileSaveFlags{conn: addConnFlags(fs)}
			fs.BoolVar(&f.keepCert, "keep-cert-path", false, "save the --host-cert path instead of pinning the certificate's fingerprint")
			fs.BoolVar(&f.noActivate, "no-use", false, "do not make the profile the current one")
			return func(e *env, args []string) error {
				addr := ""
				if len(args) > 1 {
					addr = args[1]
				}
				return runProfileSave(e, f, args[0], addr)
			}
		},
	}
}

func runProfileSave(e *env, f *profileSaveFlags, name, addr string) error {
	if name == "" || strings.ContainsAny(name, " \t\"'") {
		return usageErrorf("profile name %q: use letters, digits, - and _", name)
	}
	f.conn.Profile = noProfile // ignore the current profile while saving another
	addr, err := f.conn.resolve(addr)
	if err != nil {
		return err
	}
	c, _, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	_, port, err := client.SplitAddr(c.AttestedAddr())
	if err != nil {
		return err
	}
	vals := map[string]any{"addr": addr, "attested_port": port}
	if f.keepCert && f.conn.HostCert != "" {
		abs, err := filepath.Abs(f.conn.HostCert)
		if err != nil {
			return withCode(exitIO, err)
		}
		vals["host_cert"] = abs
	} else {
		vals["host_cert_fingerprint"] = c.HostCertificateFingerprint()
	}
	if f.conn.Simulation {
		vals["simulation"] = true
	}
	if f.conn.Policy != "" {
		abs, err := filepath.Abs(f.conn.Policy)
		if err != nil {
			return withCode(exitIO, err)
		}
		vals["policy"] = abs
	}
	pf, path, err := readProfiles()
	if err != nil {
		return err
	}
	pf.Profiles[name] = vals
	if !f.noActivate {
		pf.Current = name
	}
	if err := writeProfiles(pf, path); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "profile %q saved in %s\naddress:              %s\nhost certificate:     %s (pinned)\nattested port:        %d\n", name, path, addr, c.HostCertificateFingerprint(), port)
	if !f.noActivate {
		fmt.Fprintf(e.stdout, "current profile:      %s\n", name)
	}
	return nil
}

func profileUseCommand() *command {
	return &command{
		name:     "use",
		synopsis: "blindfold profile use NAME",
		summary:  "make a saved profile the current one",
		help:     `Makes NAME the profile that commands use when --profile and ` + "$BLINDFOLD_PROFILE" + ` are not given.`,
		minArgs:  1, maxArgs: 1,
		setup: func(*flag.FlagSet) func(*env, []string) error {
			return func(e *env, args []string) error {
				pf, path, err := readProfiles()
				if err != nil {
					return err
				}
				if _, ok := pf.Profiles[args[0]]; !ok {
					return usageErrorf("no profile %q in %s (saved: %s)", args[0], path, strings.Join(profileNames(pf), ", "))
				}
				pf.Current = args[0]
				if err := writeProfiles(pf, path); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "current profile: %s\n", args[0])
				return nil
			}
		},
	}
}

func profileListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "blindfold profile list",
		summary:  "list the saved profiles (* marks the current one)",
		help:     `Lists the saved profiles and their addresses; * marks the current one.`,
		minArgs:  0, maxArgs: 0,
		setup: func(*flag.FlagSet) func(*env, []string) error {
			return func(e *env, _ []string) error {
				pf, path, err := readProfiles()
				if err != nil {
					return err
				}
				names := profileNames(pf)
				if len(names) == 0 {
					fmt.Fprintf(e.stderr, "no profiles in %s; save one with \"blindfold profile save NAME ADDR ...\"\n", path)
					return nil
				}
				for _, n := range names {
					mark := " "
					if n == pf.Current {
						mark = "*"
					}
					fmt.Fprintf(e.stdout, "%s %-16s %v\n", mark, n, pf.Profiles[n]["addr"])
				}
				return nil
			}
		},
	}
}
