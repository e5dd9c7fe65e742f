//go:build race

package sqlite

// raceEnabled is true in a build with the race detector, which makes
// SQLite (pure Go) about ten times slower: tests that fill a large table
// use fewer rows there.
const raceEnabled = true
