package engine

import (
	"errors"
	"fmt"
)

// Kind classifies an Error so the edges (HTTP, CLI) can react without
// parsing messages.
type Kind uint8

// Error kinds.
const (
	KindInvalid     Kind = iota + 1 // the caller sent something wrong
	KindNotFound                    // no such product or override
	KindUnavailable                 // stopped, overloaded or the store failed; retry later
)

// Error is the engine's domain error: a kind and a message that is safe to
// show to an API client.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// ErrStopped is returned for requests after the engine stopped.
var ErrStopped = &Error{Kind: KindUnavailable, Msg: "engine is shutting down"}

// ErrNotYetVisible is returned by an API replica's writes that were
// accepted (they are in Kafka, and will be applied) but were not yet
// visible in the live view when the wait for them ended; the API answers
// 202 and says so.
var ErrNotYetVisible = errors.New("accepted; not applied yet")
