package main

import (
	"flag"
	"fmt"

	"github.com/blindfold-ai/blindfold/client"
)

// versionFlags are the flags of "blindfold version".
type versionFlags struct {
	conn *connFlags
}

// clientVersionLine is the client's version, in the server's form
// ("blindfold-server VERSION (protocol 0.5.0)").
func clientVersionLine() string {
	return fmt.Sprintf("blindfold %s (protocol %s)", client.Version, client.ProtocolVersion)
}

func versionCommand() *command {
	return &command{
		name:     "version",
		synopsis: "blindfold version [ADDR] [connection flags]",
		summary:  "show the client's version, and the server's beside it",
		help: `Prints the client's version. With a server address (ADDR,
$BLINDFOLD_ADDR or a profile) it connects and prints the server's
version and protocol beside it.`,
		minArgs: 0, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &versionFlags{conn: addConnFlags(fs)}
			return func(e *env, args []string) error {
				addr := ""
				if len(args) > 0 {
					addr = args[0]
				}
				return runVersion(e, f, addr)
			}
		},
	}
}

func runVersion(e *env, f *versionFlags, addr string) error {
	if addr == "" && defaultAddr(f.conn.fs) == "" {
		fmt.Fprintln(e.stdout, clientVersionLine())
		return nil
	}
	c, _, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	info := c.ServerInfo()
	server := "blindfold-server " + orUnknown(info.ServerVersion)
	if info.ServerVersion == "" {
		server = "(a server that does not report its version: BlindAI?)"
	}
	fmt.Fprintf(e.stdout, "client: %s\nserver: %s (protocol %s) at %s\n", clientVersionLine(), server, info.ProtocolVersion, c.UntrustedAddr())
	return nil
}
