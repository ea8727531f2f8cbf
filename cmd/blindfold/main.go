// Command blindfold is the command-line client of a Blindfold confidential
// inference server: it shows server information, uploads, runs and deletes
// models, and verifies proof files. Run "blindfold help" for the commands
// and the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
