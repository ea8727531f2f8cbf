package main

import (
	"flag"
	"fmt"
)

// deleteFlags are the flags of "blindfold delete".
type deleteFlags struct {
	conn *connFlags
}

func deleteCommand() *command {
	return &command{
		name: "delete", addr: true,
		synopsis: "blindfold delete [ADDR] MODEL_ID [connection flags]",
		summary:  "delete (unload) a model",
		help:     `Deletes a model from the server.`,
		minArgs:  2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*env, []string) error {
			f := &deleteFlags{conn: addConnFlags(fs)}
			return func(e *env, args []string) error { return runDelete(e, f, args[0], args[1]) }
		},
	}
}

func runDelete(e *env, f *deleteFlags, addr, id string) error {
	c, ctx, done, err := f.conn.connect(e, addr)
	if err != nil {
		return err
	}
	defer done()
	if err := c.DeleteModel(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted %s\n", id)
	return nil
}
