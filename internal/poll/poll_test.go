package poll

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeT records what Until reports; Fatalf ends the goroutine like the
// real one.
type fakeT struct {
	testing.TB
	fatal string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls Until with a fakeT on a goroutine of its own, so that Fatalf
// can end it, and returns what it reported.
func run(timeout time.Duration, what string, cond func() error) string {
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Until(f, timeout, what, cond)
	}()
	<-done
	return f.fatal
}

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		start := time.Now()
		fatal := run(time.Second, "the fifth call", func() error {
			calls++
			return Check(calls == 5, "call %d", calls)
		})
		if fatal != "" || calls != 5 {
			t.Fatalf("%d calls, failure %q; want success at the fifth call", calls, fatal)
		}
		// Checked at once, then after waits of 1, 2, 4 and 8 ms.
		if took := time.Since(start); took != 15*time.Millisecond {
			t.Fatalf("took %v of fake time, want 15ms", took)
		}
	})
}

func TestUntilWaitsAtMostMaxBetweenChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Duration
		start := time.Now()
		run(time.Second, "never", func() error {
			at = append(at, time.Since(start))
			return errors.New("no")
		})
		for i := 1; i < len(at); i++ {
			if gap := at[i] - at[i-1]; gap > Max {
				t.Fatalf("checks at %v and %v: %v apart, more than Max (%v)", at[i-1], at[i], gap, Max)
			}
		}
		if n := len(at); at[n-1] != time.Second {
			t.Fatalf("last check at %v, want at the timeout (1s)", at[n-1])
		}
	})
}

func TestUntilFailsWithWhatAndTheLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		start := time.Now()
		fatal := run(200*time.Millisecond, "the engine to apply PA", func() error {
			calls++
			return fmt.Errorf("PA demand %d", calls)
		})
		if took := time.Since(start); took != 200*time.Millisecond {
			t.Errorf("gave up after %v of fake time, want the timeout (200ms)", took)
		}
		want := fmt.Sprintf("timed out after 200ms waiting for the engine to apply PA: PA demand %d", calls)
		if fatal != want {
			t.Fatalf("failure %q, want %q", fatal, want)
		}
	})
}

func TestUntilChecksAtLeastOnce(t *testing.T) {
	calls := 0
	if fatal := run(0, "anything", func() error { calls++; return nil }); fatal != "" || calls != 1 {
		t.Fatalf("%d calls, failure %q; want one successful call", calls, fatal)
	}
	if fatal := run(0, "anything", func() error { return errors.New("down") }); !strings.HasSuffix(fatal, "anything: down") {
		t.Fatalf("failure %q, want the condition's error", fatal)
	}
}

func TestCheck(t *testing.T) {
	if err := Check(true, "owned %d", 3); err != nil {
		t.Errorf("Check(true) = %v", err)
	}
	if err := Check(false, "owned %d of %d", 3, 6); err == nil || err.Error() != "owned 3 of 6" {
		t.Errorf("Check(false) = %v", err)
	}
}
