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
	KindConflict                    // the request conflicts with the state (an experiment's id or products taken)
)

// Error is the engine's domain error: a kind and a message that is safe to
// show to an API client. Cause, when set, is what went wrong underneath
// (a driver's error naming hosts, users, databases): it is part of Error()
// for logs, and the HTTP API never sends it, only Msg.
type Error struct {
	Kind  Kind
	Msg   string
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Unavailable reports that what (a dependency: "the database", "the event
// log") cannot be reached, as a KindUnavailable Error whose message names
// only what and whose Cause is cause: adapters wrap connection failures
// with it, so every route answers 503, and never with the connection's
// details.
func Unavailable(what string, cause error) error {
	return &Error{Kind: KindUnavailable, Msg: what + " is unavailable; retry later", Cause: cause}
}

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
