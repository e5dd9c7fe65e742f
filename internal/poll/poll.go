// Package poll is the tests' one way to wait for a condition that another
// goroutine or process makes true: a server becoming ready, an engine
// having applied events, a counter having moved. Tests import it; it is
// not a _test file so that every package's tests can.
//
// Wait for a positive condition, never for time to pass: a test that
// sleeps and then asserts that something did not happen passes without
// testing anything on a slow machine. To show that something did not
// happen, wait until something that must come after it did (a later
// record applied, a counter moved), then assert.
package poll

import (
	"fmt"
	"testing"
	"time"
)

// First and Max bound the wait between two checks of Until's condition:
// it starts at First and doubles up to Max, so that a condition that holds
// soon is seen soon, and one that takes seconds (a Kafka rebalance, a
// process starting) is not checked thousands of times.
const (
	First = time.Millisecond
	Max   = 50 * time.Millisecond
)

// Until calls cond until it returns nil, first at once and then with
// waits growing from First to Max. If cond has not returned nil timeout
// after the call, Until fails t with t.Fatalf, naming what it waited for
// and cond's last error, which should say what cond saw instead (see
// Check).
//
// cond runs on the caller's goroutine, so it may itself call t.Fatal for
// a condition that can no longer become true (the process it waits for
// exited). Until uses time.Sleep and time.Now: inside a testing/synctest
// bubble it waits in fake time.
func Until(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := First
	for {
		err := cond()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
			return // t.Fatalf returns only from a fake testing.TB
		}
		time.Sleep(min(wait, time.Until(deadline)))
		wait = min(2*wait, Max)
	}
}

// Check is a condition for Until made of a boolean: nil if ok, else an
// error formatted from format and args, which say what was seen instead.
func Check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}
