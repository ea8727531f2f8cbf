package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docCommand is a blindfold command line found in a document.
type docCommand struct {
	where string // file:line
	args  []string
	block bool // in a code block (whole command) or inline code (flags only)
}

// shellWords splits a command line as a shell would for the simple lines
// of the docs: quotes, and an end at a comment, pipe, redirection or
// command separator.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !inWord && strings.ContainsRune("#|>;&<", r):
			return words
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// blindfoldArgs returns the arguments of a blindfold command in words
// (after environment assignments and "$ "), or nil.
func blindfoldArgs(words []string) []string {
	for len(words) > 0 && (words[0] == "$" || (strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-"))) {
		words = words[1:]
	}
	if len(words) == 0 || (words[0] != "blindfold" && words[0] != "bin/blindfold") {
		return nil
	}
	var out []string
	for _, w := range words[1:] {
		if w != "..." {
			out = append(out, w)
		}
	}
	return out
}

func docCommands(t *testing.T) []docCommand {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	var out []docCommand
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := false
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			where := filepath.Base(f) + ":" + itoa(i+1)
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inBlock = !inBlock
				continue
			}
			if inBlock {
				for strings.HasSuffix(strings.TrimSpace(line), "\\") && i+1 < len(lines) {
					line = strings.TrimSuffix(strings.TrimSpace(line), "\\") + " " + lines[i+1]
					i++
				}
				if args := blindfoldArgs(shellWords(strings.TrimSpace(line))); args != nil {
					out = append(out, docCommand{where: where, args: args, block: true})
				}
				continue
			}
			// Inline code: `blindfold ...`.
			for _, span := range strings.Split(line, "`")[1:] {
				if args := blindfoldArgs(shellWords(span)); args != nil {
					out = append(out, docCommand{where: where, args: args})
				}
			}
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDocsCommandsParse: every blindfold command line in README.md and
// docs/*.md names a command that exists, and its flags exist; command
// lines in code blocks also have the right number of arguments.
func TestDocsCommandsParse(t *testing.T) {
	cmds := docCommands(t)
	if len(cmds) < 20 {
		t.Fatalf("found only %d blindfold command lines in the docs; the scan is broken", len(cmds))
	}
	for _, dc := range cmds {
		if err := parseDocCommand(dc); err != nil {
			t.Errorf("%s: blindfold %s: %v", dc.where, strings.Join(dc.args, " "), err)
		}
	}
}

func parseDocCommand(dc docCommand) error {
	args := dc.args
	if len(args) == 0 || isHelp(args[0]) || args[0] == "--version" {
		return nil
	}
	c := findCommand(commands(), args[0])
	if c == nil {
		if !dc.block && strings.ToUpper(args[0]) == args[0] {
			return nil // a placeholder such as COMMAND
		}
		return errors.New("no such command")
	}
	args = args[1:]
	for c.sub != nil {
		if len(args) == 0 {
			if dc.block {
				return errors.New("missing subcommand")
			}
			return nil
		}
		s := findCommand(c.sub, args[0])
		if s == nil {
			return errors.New("no such subcommand " + args[0])
		}
		c, args = s, args[1:]
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if !dc.block {
		return nil
	}
	n := len(pos)
	if c.addr && n == c.minArgs-1 {
		n++ // ADDR from BLINDFOLD_ADDR or a profile
	}
	if n < c.minArgs || (c.maxArgs >= 0 && n > c.maxArgs) {
		return errors.New("wrong number of arguments " + itoa(len(pos)))
	}
	return nil
}

// TestDocsScanner checks the scanner on the shapes the docs use.
func TestDocsScanner(t *testing.T) {
	got := blindfoldArgs(shellWords(`BLINDFOLD_TOKEN=x bin/blindfold upload localhost "my model.onnx" --id m ... # comment`))
	if strings.Join(got, "|") != "upload|localhost|my model.onnx|--id|m" {
		t.Fatalf("%q", got)
	}
	if err := parseDocCommand(docCommand{args: []string{"info", "localhost", "--no-such-flag"}, block: true}); err == nil {
		t.Fatal("an unknown flag parsed")
	}
	if err := parseDocCommand(docCommand{args: []string{"upload", "a", "b", "c"}, block: true}); err == nil {
		t.Fatal("too many arguments parsed")
	}
}

// TestFirstFiveMinutesInDemo: every blindfold command of
// docs/first-five-minutes.md is run, as written, by make demo
// (scripts/demo.sh).
func TestFirstFiveMinutesInDemo(t *testing.T) {
	page, err := os.ReadFile("../../docs/first-five-minutes.md")
	if err != nil {
		t.Fatal(err)
	}
	demo, err := os.ReadFile("../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	demoLines := map[string]bool{}
	for _, l := range strings.Split(string(demo), "\n") {
		demoLines[strings.Join(strings.Fields(l), " ")] = true
	}
	found := 0
	inBlock := false
	for i, l := range strings.Split(string(page), "\n") {
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
			continue
		}
		cmd := strings.Join(strings.Fields(strings.SplitN(l, "#", 2)[0]), " ")
		if !inBlock || !strings.HasPrefix(cmd, "bin/blindfold ") {
			continue
		}
		found++
		if !demoLines[cmd] {
			t.Errorf("first-five-minutes.md:%d: %q is not run by scripts/demo.sh", i+1, cmd)
		}
	}
	if found < 10 {
		t.Fatalf("found %d commands in the page; the scan is broken", found)
	}
}

// TestPolicyKeysDocumented: every key of the policy template, set or
// commented out, has a row in docs/policy.md.
func TestPolicyKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, l := range strings.Split(sgxPolicyTemplate(strings.Repeat("ab", 32)), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		key, _, ok := strings.Cut(l, " = ")
		if !ok || strings.ContainsAny(key, " \"") {
			continue
		}
		keys++
		if !strings.Contains(string(doc), "| `"+key+"` |") {
			t.Errorf("docs/policy.md has no row for %s", key)
		}
	}
	if keys < 15 {
		t.Fatalf("found %d keys in the template", keys)
	}
}
