package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// infoFlags are the flags of "blindfold info".
type infoFlags struct {
	conn *connFlags
}

func infoCommand() *command {
	return &command{
		name: "info", aliases: []string{"connect"}, addr: true,
		synopsis: "blindfold info [ADDR] [connection flags]",
		summary:  "connect and show the server's versions, mode and certificates",
		help: `Connects to the server as every command does (untrusted port, version
check, attestation, attested port) and prints what it learned: protocol
and server versions, simulation mode, the SHA-256 fingerprints of both
certificates, and the reply-signing key.

ADDR is HOST or HOST:PORT of the untrusted port (default port 50052),
or $BLINDFOLD_ADDR, or the profile's. The attested port is not derived
from it: it is --attested-port when given, else the port a Blindfold
server reports, else 50051; a BlindAI server on another port, or a port
mapping, needs --attested-port.`,
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &infoFlags{conn: addConnFlags(fs)}
			return func(e *env, args []string) error { return runInfo(e, f, args[0]) }
		},
	}
}

func runInfo(e *env, f *infoFlags, addr string) error {
	c, _, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	info := c.ServerInfo()
	w := e.stdout
	fmt.Fprintf(w, "untrusted port:        %s\n", c.UntrustedAddr())
	fmt.Fprintf(w, "attested port:         %s\n", c.AttestedAddr())
	fmt.Fprintf(w, "protocol version:      %s\n", shown(info.ProtocolVersion))
	fmt.Fprintf(w, "server version:        %s\n", orUnknown(info.ServerVersion))
	fmt.Fprintf(w, "evidence type:         %s\n", orUnknown(info.EvidenceType))
	fmt.Fprintf(w, "simulation:            %t\n", c.Simulation())
	if len(info.ReplicaID) > 0 {
		note := ""
		if info.ReplicaSource == "simulation" {
			note = " (random, made at start: proves nothing)"
		}
		id := info.ReplicaID
		if len(id) > maxShown {
			id = id[:maxShown]
		}
		fmt.Fprintf(w, "replica:               %s:%s%s\n", shown(info.ReplicaSource), hex.EncodeToString(id), note)
	}
	fmt.Fprintf(w, "host certificate:      %s\n", c.HostCertificateFingerprint())
	fmt.Fprintf(w, "attested certificate:  %s\n", c.AttestedCertificateFingerprint())
	fmt.Fprintf(w, "signing key (ed25519): %s\n", hex.EncodeToString(c.SigningKey()))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(not reported)"
	}
	return shown(s)
}

// maxShown is the most bytes of a server's text that info prints as is.
const maxShown = 128

// shown returns text the untrusted port reported as it is when it is
// short printable text, else quoted with Go escapes (and cut): a host
// must not write control sequences to the terminal of whoever runs info.
func shown(s string) string {
	if len(s) <= maxShown && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + "…"
	}
	return strconv.Quote(s)
}
