package postgres

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dynaprice/dynaprice/internal/engine"
)

// unreachable returns err as engine.Unavailable("the database", err) when
// it says the server could not be reached or the connection broke (refused,
// reset, timed out, closed (the pool too: "closed pool"), the server shutting down or refusing more
// connections), so that the HTTP API answers 503 and shows no connection
// details; any other error (a statement the server refused, a value that
// does not decode) is returned as it is. The cause stays in the chain, for
// the log.
func unreachable(err error) error {
	if err == nil || !connectionFailure(err) {
		return err
	}
	return engine.Unavailable("the database", err)
}

// connectionFailure reports whether err is about reaching the server
// rather than about what was asked of it.
func connectionFailure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// connection_exception (08…), operator intervention such as
		// admin_shutdown or cannot_connect_now (57P0…),
		// too_many_connections (53300).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P0") || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	// pgx reports a connection it closed after a network error as "conn
	// closed", and a closed pool as "closed pool", without a type to test.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}
