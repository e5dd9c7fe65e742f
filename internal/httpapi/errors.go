package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
)

// apiError is an error with the status and message to send.
type apiError struct {
	status     int
	msg        string
	retryAfter time.Duration // sent as Retry-After when > 0
}

func (e *apiError) Error() string { return e.msg }

func errStatus(status int, msg string) error { return &apiError{status: status, msg: msg} }

// tooMany is a 429 whose answer says, in Retry-After, when to come back.
func tooMany(wait time.Duration, msg string) error {
	return &apiError{status: http.StatusTooManyRequests, msg: msg, retryAfter: wait}
}

// errPricesUnavailable reports a failing live view (Redis down) as 503; the
// cause is logged by the caller's middleware, never sent.
func errPricesUnavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errStatus(http.StatusServiceUnavailable, "live prices are unavailable; retry later")
}

// setRetryAfter sets Retry-After (whole seconds, at least 1) when err asks
// the client to come back later.
func setRetryAfter(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) && ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.retryAfter.Seconds()))))
	}
}

// statusOf maps any error to an HTTP status and a message safe to show.
// It is the only place that does so; unknown errors become a generic 500
// so internals never leak.
func statusOf(err error) (int, string) {
	var ae *apiError
	var ee *engine.Error
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.As(err, &ee):
		switch ee.Kind {
		case engine.KindInvalid:
			return http.StatusBadRequest, ee.Msg
		case engine.KindNotFound:
			return http.StatusNotFound, ee.Msg
		case engine.KindUnavailable:
			return http.StatusServiceUnavailable, ee.Msg
		case engine.KindConflict:
			return http.StatusConflict, ee.Msg
		}
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, "request body is larger than " + strconv.FormatInt(mb.Limit, 10) + " bytes"
	case errors.Is(err, ingest.ErrTooManyEvents):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, ingest.ErrNotJSON):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request cancelled or timed out"
	}
	return http.StatusInternalServerError, "internal error"
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var jsonContentType = []string{"application/json"}
