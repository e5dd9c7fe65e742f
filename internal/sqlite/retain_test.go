package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

var retention = engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 90 * 24 * time.Hour}

// dayNS is a day in nanoseconds.
const dayNS = int64(24 * time.Hour)

// count returns the single integer q answers.
func count(t *testing.T, s *Store, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.r.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestRetentionSplitsHoursAcrossSteps: with steps of 3 rows, the hours of
// two products interleaved over several commits are split between steps;
// each product still gets exactly one summary per hour, equal to that of
// all its changes of the hour, and the state log stays consistent.
func TestRetentionSplitsHoursAcrossSteps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "split.db")
	tun := defaultTuning()
	tun.retainRows = 3
	s, err := open(ctx, Config{Path: path}, tun)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC).UnixNano()
	h := engine.HourOf(now - 40*dayNS)
	var all []engine.HistoryRow
	v := map[string]uint64{}
	for i := range 23 {
		b := &engine.Batch{}
		for _, id := range []string{"a", "b"} {
			if id == "b" && i%3 == 0 {
				continue
			}
			v[id]++
			// 23 changes 5 minutes apart: two hours' worth.
			r := engine.HistoryRow{ProductID: id, Price: float64((i*7)%11) + 1, Demand: float64(i), Source: pricing.Source(i % 3),
				At: h + int64(i)*5*60e9, Version: v[id]}
			b.History = append(b.History, r)
			all = append(all, r)
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	kept := engine.HistoryRow{ProductID: "a", Price: 99, At: now, Version: 100}
	if err := s.Commit(ctx, &engine.Batch{History: []engine.HistoryRow{kept}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneHistory(ctx, now, retention)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Summarize(all)
	if n.Rolled != int64(len(all)) || len(want) != 4 {
		t.Fatalf("PruneHistory = %+v, want %d rolled into 4 summaries (have %d)", n, len(all), len(want))
	}
	if got := count(t, s, "SELECT count(*) FROM price_hourly"); got != 4 {
		t.Errorf("price_hourly holds %d rows, want one per product and hour: 4", got)
	}
	check := func(when string) {
		t.Helper()
		for _, id := range []string{"a", "b"} {
			var w []engine.HourlyRow
			for _, r := range want {
				if r.ProductID == id {
					w = append([]engine.HourlyRow{r}, w...)
				}
			}
			p, err := s.HistoryPage(ctx, id, 100, -1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Hourly, w) {
				t.Errorf("%s: %s's summaries\n got %+v\nwant %+v", when, id, p.Hourly, w)
			}
		}
		if p, err := s.HistoryPage(ctx, "a", 100, 0); err != nil || !reflect.DeepEqual(p.Changes, []engine.HistoryRow{kept}) {
			t.Errorf("%s: a's changes = %+v, %v; want only the one kept", when, p.Changes, err)
		}
	}
	check("after the retention")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check("after reopening")
}

// TestUpgradeTo0007: a database of migration 0006, with history, opens
// with its history intact and applies the retention.
func TestUpgradeTo0007(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s := openTest(t, path)
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC).UnixNano()
	old := engine.HistoryRow{ProductID: "a", Price: 10, Source: pricing.SourceDynamic, At: now - 40*dayNS, Version: 1}
	young := engine.HistoryRow{ProductID: "a", Price: 11, Source: pricing.SourceDynamic, At: now - dayNS, Version: 2}
	if err := s.Commit(ctx, &engine.Batch{Products: []pricing.Product{{ID: "a", BasePrice: 10}},
		States: []engine.ProductState{{ID: "a", State: pricing.State{Price: 11, Version: 2}}}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []engine.HistoryRow{old, young} {
		if err := s.Commit(ctx, &engine.Batch{History: []engine.HistoryRow{r}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to 0006.
	db, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TABLE price_hourly", "ALTER TABLE state_log DROP COLUMN hourly", "DELETE FROM schema_migrations WHERE version = 7"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = openTest(t, path)
	snap, err := s.Load(ctx)
	if err != nil || snap.StateMap()["a"].Version != 2 {
		t.Fatalf("Load after the upgrade: %+v, %v", snap.States, err)
	}
	if h, err := s.History(ctx, "a", 10); err != nil || !reflect.DeepEqual(h, []engine.HistoryRow{young, old}) {
		t.Fatalf("History after the upgrade = %+v, %v", h, err)
	}
	if _, err := s.PruneHistory(ctx, now, retention); err != nil {
		t.Fatal(err)
	}
	p, err := s.HistoryPage(ctx, "a", 10, -1)
	if err != nil || !reflect.DeepEqual(p, engine.HistoryPage{Changes: []engine.HistoryRow{young}, Hourly: engine.Summarize([]engine.HistoryRow{old})}) {
		t.Fatalf("HistoryPage after the retention = %+v, %v", p, err)
	}
}

// TestRetentionDoesNotStallCommits rolls up a backlog of old history
// spread over a large catalog (what an upgrade to a release with
// retention finds: DYNAPRICE_BENCH_RETAIN rows, 2M by default) while
// another goroutine commits batches as serve's writer does: the commits
// must interleave with the steps, not wait for the roll-up, and every old
// change must end in a summary.
func TestRetentionDoesNotStallCommits(t *testing.T) {
	rows, products := 2_000_000, 200_000
	if v, err := strconv.Atoi(os.Getenv("DYNAPRICE_BENCH_RETAIN")); err == nil && v > 0 {
		rows, products = v, max(v/10, 1)
	}
	if testing.Short() || raceEnabled {
		rows, products = 40_000, 4_000
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "retain.db")
	s := openTest(t, path)
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC).UnixNano()
	// The backlog: 10 changes per product over 40 to 31 days ago, a
	// change every few seconds, committed in batches of 20,000.
	start := now - 40*dayNS
	span := 9 * dayNS
	const per = 20_000
	t0 := time.Now()
	for lo := 0; lo < rows; lo += per {
		b := &engine.Batch{}
		for i := lo; i < min(lo+per, rows); i++ {
			b.History = append(b.History, engine.HistoryRow{ProductID: fmt.Sprintf("p%07d", i%products), Price: float64(i%1000) / 10,
				Source: pricing.SourceDynamic, At: start + int64(i)*(span/int64(rows)), Version: uint64(i/products + 1)})
		}
		engine.SortHistory(b.History)
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	t.Logf("backlog: %d rows over %d products written in %v; file %d MB", rows, products, time.Since(t0).Round(time.Millisecond), fi.Size()>>20)

	// 100 new changes of products spread over the catalog, now.
	next := uint64(1_000_000)
	commit := func() time.Duration {
		b := &engine.Batch{}
		for j := range 100 {
			next++
			b.History = append(b.History, engine.HistoryRow{ProductID: fmt.Sprintf("p%07d", (int(next)*7919+j)%products), Price: 1,
				Source: pricing.SourceDynamic, At: now + int64(next), Version: next})
		}
		engine.SortHistory(b.History)
		c0 := time.Now()
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		return time.Since(c0)
	}
	quantiles := func(lat []time.Duration) string {
		slices.Sort(lat)
		return fmt.Sprintf("%d commits of 100, p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
	// The same commits without the roll-up first, for comparison.
	var base []time.Duration
	for b0 := time.Now(); time.Since(b0) < 3*time.Second; {
		base = append(base, commit())
	}
	baseCommits := len(base)
	t.Logf("without the roll-up: %s", quantiles(base))

	done := make(chan error, 1)
	var res engine.HistoryPruned
	began := time.Now()
	go func() {
		var err error
		res, err = s.PruneHistory(ctx, now, retention)
		done <- err
	}()
	var lat []time.Duration
	for pruning := true; pruning; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			pruning = false
		default:
		}
		lat = append(lat, commit())
	}
	took := time.Since(began)
	if res.Rolled != int64(rows) {
		t.Errorf("rolled %d changes, want the backlog's %d", res.Rolled, rows)
	}
	if got, want := count(t, s, "SELECT count(*) FROM price_history"), int64(baseCommits+len(lat))*100; got != want {
		t.Errorf("price_history holds %d rows, want only the %d committed since the backlog", got, want)
	}
	if got := count(t, s, "SELECT coalesce(sum(changes), 0) FROM price_hourly"); got != int64(rows) {
		t.Errorf("the summaries count %d changes, want %d", got, rows)
	}
	fi, _ = os.Stat(path)
	t.Logf("rolled %d changes into %d summaries in %v (%.0f changes/s); meanwhile %s; file %d MB, %d of %d pages free",
		res.Rolled, res.Summaries, took.Round(time.Millisecond), float64(res.Rolled)/took.Seconds(), quantiles(lat), fi.Size()>>20,
		count(t, s, "SELECT freelist_count FROM pragma_freelist_count"), count(t, s, "SELECT page_count FROM pragma_page_count"))
	// A roll-up in one statement would let a handful of commits through;
	// interleaving with the steps is the behaviour (how long each waited
	// is a measurement: docs/BENCHMARKS.md).
	if steps := rows / s.tun.retainRows; len(lat) < steps/4 {
		t.Errorf("only %d commits during a roll-up of %d rows (%d steps) that took %v: commits waited for it", len(lat), rows, steps, took)
	}
}

// TestRetentionBoundsDisk runs 60 days of history by a clock of its own:
// 50 products changing 6 times an hour, committed hourly, the retention
// (30 days raw, 45 hourly) applied every 6 hours. Once both windows are
// full the database holds exactly what they say and stops growing: the
// pages the deletions free are reused.
func TestRetentionBoundsDisk(t *testing.T) {
	// The same 60 days with fewer products under the race detector,
	// which makes SQLite about ten times slower (a minute at 50).
	products := 50
	if testing.Short() || raceEnabled {
		products = 8
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "soak.db")
	s := openTest(t, path)
	r := engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 45 * 24 * time.Hour}
	const perHour, days = 6, 60
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hourNS := engine.HourNS
	pages := func() int64 {
		return count(t, s, "SELECT page_count - freelist_count FROM pragma_page_count, pragma_freelist_count")
	}
	var v uint64
	var used []int64 // pages in use at the end of each day
	for h := range int64(days * 24) {
		b := &engine.Batch{}
		for k := range int64(perHour) {
			v++
			for p := range products {
				b.History = append(b.History, engine.HistoryRow{ProductID: fmt.Sprintf("p%02d", p), Price: float64((int(v)+p)%50) + 1,
					Source: pricing.SourceDynamic, At: start + h*hourNS + k*hourNS/perHour + int64(p), Version: v})
			}
		}
		engine.SortHistory(b.History)
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if h%6 == 5 {
			if _, err := s.PruneHistory(ctx, start+(h+1)*hourNS, r); err != nil {
				t.Fatal(err)
			}
		}
		if h%24 == 23 {
			used = append(used, pages())
		}
	}
	now := start + days*24*hourNS
	raw, hourly := r.Cutoffs(now)
	if got, want := count(t, s, "SELECT count(*) FROM price_history"), (now-raw)/hourNS*perHour*int64(products); got != want {
		t.Errorf("price_history holds %d rows, want the last 30 days' %d", got, want)
	}
	if got, want := count(t, s, "SELECT count(*) FROM price_hourly"), (raw-hourly)/hourNS*int64(products); got != want {
		t.Errorf("price_hourly holds %d rows, want one per product and hour of the 15 days before: %d", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pages in use at the end of days 10, 20, 30, 40, 46, 50, 60: %d %d %d %d %d %d %d; file %d KB",
		used[9], used[19], used[29], used[39], used[45], used[49], used[59], fi.Size()>>10)
	// From day 46 on, both windows are full: what is added each day is
	// what is deleted.
	if grown := float64(used[59]) / float64(used[45]); grown > 1.05 {
		t.Errorf("pages in use grew %.0f%% from day 46 to day 60, with both windows full", (grown-1)*100)
	}
}
