package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Config configures Open.
type Config struct {
	// Path is the database file. It is created, with its directory's
	// permissions allowing, when missing. It must be a real file: the store
	// opens it twice (a writer and a pool of readers), which an in-memory
	// database cannot share.
	Path string
	// Synchronous is the SQLite synchronous level: "full" (the default) or
	// "normal".
	//
	// With "full" every Commit syncs the write-ahead log before it returns,
	// so a committed batch survives a power loss. With "normal" the log is
	// only synced at checkpoints: a commit still survives a crash of the
	// process (the port's promise), but the last batches before a power
	// loss or kernel panic may be lost, and Commit is cheaper.
	Synchronous string
	// Logger receives migration and maintenance messages; nil discards them.
	Logger *slog.Logger
}

// Validate reports whether c can be opened.
func (c Config) Validate() error {
	switch p := strings.TrimSpace(c.Path); {
	case p == "":
		return errors.New("sqlite: config: path is required")
	case p != c.Path:
		return fmt.Errorf("sqlite: config: path %q has leading or trailing space", c.Path)
	case p == ":memory:" || strings.HasPrefix(p, "file:"):
		return fmt.Errorf("sqlite: config: path %q must be a file name, not %s", c.Path, "an SQLite URI or :memory:")
	case strings.ContainsRune(p, 0):
		return errors.New("sqlite: config: path contains a NUL byte")
	}
	if _, err := c.synchronous(); err != nil {
		return err
	}
	return nil
}

// synchronous returns the PRAGMA synchronous value for c.Synchronous.
func (c Config) synchronous() (string, error) {
	switch strings.ToLower(strings.TrimSpace(c.Synchronous)) {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	}
	return "", fmt.Errorf("sqlite: config: synchronous %q: want \"full\" or \"normal\"", c.Synchronous)
}

// logger returns c.Logger or one that discards.
func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
