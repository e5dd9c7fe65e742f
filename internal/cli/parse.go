package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseArgs parses args with fs and returns the positional arguments.
// Flags may come before or after them (`simulate steady.json --svg out`),
// as in most command lines; after "--" everything is positional.
//
// A mistake is reported in three lines and nothing else, so that it is the
// last thing on the screen: the error, a suggestion when an unknown flag
// is a near miss of a known one, and how to see the flags. The usage is
// printed only for --help. The error is then errUsage (or flag.ErrHelp),
// which Run maps to the exit status.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			usage()
			return nil, err
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
			if s := suggestFlag(fs, err); s != "" {
				fmt.Fprintf(stderr, "Did you mean --%s?\n", s)
			}
			fmt.Fprintf(stderr, "Run \"%s --help\" to see the flags.\n", fs.Name())
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// parseFlags is parseArgs for a command that takes no positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	pos, err := parseArgs(fs, args, stderr)
	if err == nil && len(pos) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (every setting is a flag: --name value)\n", fs.Name(), pos)
		fmt.Fprintf(stderr, "Run \"%s --help\" to see the flags.\n", fs.Name())
		return errUsage
	}
	return err
}

// suggestFlag returns the known flag closest to the unknown one err names,
// if it is a near miss (at most two edits, or one a prefix of the other),
// and "" otherwise.
func suggestFlag(fs *flag.FlagSet, err error) string {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	name := strings.TrimLeft(strings.TrimPrefix(msg, prefix), "-")
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(name, f.Name)
		if len(name) >= 3 && (strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name)) {
			d = min(d, 1)
		}
		if d < bestD || (d == bestD && f.Name < best) {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes: flag names
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
