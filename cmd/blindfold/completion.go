package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// completionFlags are the flags of "blindfold completion" (none).
type completionFlags struct{}

func completionCommand() *command {
	return &command{
		name:     "completion",
		synopsis: "blindfold completion bash|zsh",
		summary:  "print a shell completion script (bash or zsh)",
		help: `Prints a completion script for commands, subcommands and flags:

  source <(blindfold completion bash)      # bash, this shell
  blindfold completion bash > /etc/bash_completion.d/blindfold
  source <(blindfold completion zsh)       # zsh (uses bashcompinit)`,
		minArgs: 1, maxArgs: 1,
		setup: func(*flag.FlagSet) func(*env, []string) error {
			f := &completionFlags{}
			return func(e *env, args []string) error { return runCompletion(e, f, args[0]) }
		},
	}
}

func runCompletion(e *env, _ *completionFlags, shell string) error {
	switch shell {
	case "bash":
		writeBashCompletion(e.stdout, commands())
	case "zsh":
		fmt.Fprint(e.stdout, "#compdef blindfold\nautoload -U +X bashcompinit && bashcompinit\n")
		writeBashCompletion(e.stdout, commands())
	default:
		return usageErrorf("unknown shell %q (allowed: bash, zsh)", shell)
	}
	return nil
}

// commandFlags returns a command's flags as "--name", sorted, without
// hidden ones.
func commandFlags(c *command) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(fs)
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if _, hidden := isConnFlag(f.Name); hidden || hiddenFlags[f.Name] {
			return
		}
		out = append(out, "--"+f.Name)
	})
	sort.Strings(out)
	return append(out, "--help")
}

func writeBashCompletion(w io.Writer, cmds []*command) {
	var top []string
	var cases strings.Builder
	for _, c := range cmds {
		top = append(top, c.name)
		if c.sub == nil {
			fmt.Fprintf(&cases, "    %q) opts=%q ;;\n", c.name, strings.Join(commandFlags(c), " "))
			continue
		}
		var subs []string
		for _, s := range c.sub {
			subs = append(subs, s.name)
		}
		fmt.Fprintf(&cases, "    %q) opts=%q ;;\n", c.name, strings.Join(subs, " "))
	}
	top = append(top, "help")
	fmt.Fprintf(w, `# bash completion for blindfold (blindfold completion bash)
_blindfold() {
  local cur key opts
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  key="${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -gt 2 ]; then
    case "$key ${COMP_WORDS[2]}" in
%s    esac
  fi
  if [ -z "$opts" ]; then
    case "$key" in
%s    esac
  fi
  if [[ "$cur" == -* || "$COMP_CWORD" -eq 2 && "$opts" != *--* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
}
complete -o default -F _blindfold blindfold
`, strings.Join(top, " "), subCases(cmds), cases.String())
}

// subCases are the case arms of subcommands only (key "cmd sub").
func subCases(cmds []*command) string {
	var b strings.Builder
	for _, c := range cmds {
		for _, s := range c.sub {
			fmt.Fprintf(&b, "    %q) opts=%q ;;\n", c.name+" "+s.name, strings.Join(commandFlags(s), " "))
		}
	}
	return b.String()
}
