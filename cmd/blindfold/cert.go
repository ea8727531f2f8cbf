package main

import (
	"flag"
	"fmt"

	"github.com/blindfold-ai/blindfold/identity"
)

// certGenerateFlags are the flags of "blindfold cert generate".
type certGenerateFlags struct {
	cert, key string
}

func certGenerateCommand() *command {
	return &command{
		name:     "generate",
		synopsis: "blindfold cert generate [--cert host_server.pem] [--key host_server.key]",
		summary:  "make the untrusted port's TLS certificate and key",
		help: `Makes a P-256 key and a self-signed certificate (CN and SAN blindai-srv)
for the server's untrusted port, as host_server.pem and host_server.key,
and prints the certificate's SHA-256 fingerprint. Existing files are
never overwritten; the key file is created with mode 0600. Give the
certificate (never the key) to the server's users for --host-cert.`,
		minArgs: 0, maxArgs: 0,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &certGenerateFlags{}
			fs.StringVar(&f.cert, "cert", "host_server.pem", "certificate output `FILE` (PEM)")
			fs.StringVar(&f.key, "key", "host_server.key", "private key output `FILE` (PEM, mode 0600)")
			return func(e *env, _ []string) error { return runCertGenerate(e, f) }
		},
	}
}

func runCertGenerate(e *env, f *certGenerateFlags) error {
	if f.cert == "" || f.key == "" || f.cert == f.key {
		return usageErrorf("--cert and --key must be two different, non-empty paths")
	}
	der, err := identity.GenerateHostCertificate(f.cert, f.key)
	if err != nil {
		return withCode(exitIO, err)
	}
	fmt.Fprintf(e.stdout, "certificate: %s\nkey:         %s\nsha256 fingerprint: %s\n", f.cert, f.key, identity.Fingerprint(der))
	return nil
}
