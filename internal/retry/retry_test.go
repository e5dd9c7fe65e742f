package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestDoRetriesWithDoublingWaitsUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var waits []time.Duration
		calls := 0
		start := time.Now()
		err := Do(context.Background(), Backoff{First: 100 * time.Millisecond, Max: 300 * time.Millisecond},
			func(context.Context) error {
				calls++
				if calls < 5 {
					return errors.New("down")
				}
				return nil
			},
			func(_ error, wait time.Duration) { waits = append(waits, wait) })
		if err != nil || calls != 5 {
			t.Fatalf("err %v after %d calls, want success on the 5th", err, calls)
		}
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
		if len(waits) != len(want) {
			t.Fatalf("waits %v, want %v", waits, want)
		}
		for i := range want {
			if waits[i] != want[i] {
				t.Fatalf("waits %v, want %v", waits, want)
			}
		}
		if took := time.Since(start); took != 900*time.Millisecond {
			t.Fatalf("took %v of fake time, want the sum of the waits (900ms)", took)
		}
	})
}

func TestDoStopsAtAPermanentError(t *testing.T) {
	bad := errors.New("database does not exist")
	calls := 0
	err := Do(context.Background(), Default, func(context.Context) error { calls++; return Permanent(bad) }, nil)
	if !errors.Is(err, bad) || !IsPermanent(err) || calls != 1 {
		t.Fatalf("err %v after %d calls, want the permanent error at once", err, calls)
	}
}

func TestDoGivesUpWhenTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		down := errors.New("connection refused")
		v, err := Value(ctx, Default, func(context.Context) (int, error) { return 7, down }, nil)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, down) {
			t.Fatalf("err = %v, want both the deadline and the last error", err)
		}
		if v != 7 {
			t.Fatalf("v = %d, want the last value", v)
		}
	})
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(1h) with a cancelled context = %v, want context.Canceled", err)
	}
}
