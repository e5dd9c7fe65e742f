package postgres

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/migrations"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

var retention = engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 90 * 24 * time.Hour}

// partitionNames lists price_history's partitions by name, oldest first,
// the DEFAULT one last.
func partitionNames(t *testing.T, db *DB) []string {
	t.Helper()
	ps, err := partitions(context.Background(), db.pool)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return out
}

// dayName is the partition name of the day of t.
func dayName(t int64) string { return "price_history_p" + time.Unix(0, t).UTC().Format("20060102") }

func mustPrune(t *testing.T, db *DB, now int64, r engine.HistoryRetention) engine.HistoryPruned {
	t.Helper()
	n, err := db.PruneHistory(context.Background(), now, r)
	if err != nil {
		t.Fatalf("PruneHistory: %v", err)
	}
	return n
}

// TestHistoryPartitions: with the clock given, a run creates the seven
// days after today, rolls the partitions older than the raw window into
// summaries and drops them, and leaves the day that straddles the cut-off
// and the DEFAULT partition's young rows alone.
func TestHistoryPartitions(t *testing.T) {
	db := freshDB(t)
	now := time.Date(2025, 3, 20, 13, 30, 0, 0, time.UTC).UnixNano()
	const day = dayNS
	t0 := now - 45*day
	n := mustPrune(t, db, t0, engine.HistoryRetention{})
	var want []string
	for d := int64(1); d <= 7; d++ {
		want = append(want, dayName(t0+d*day))
	}
	if got := partitionNames(t, db); n.Created != 7 || !slices.Equal(got[:7], want) {
		t.Fatalf("after a run 45 days ago: %+v, partitions %v; want %v first", n, got, want)
	}
	// Rows in the day partitions (44 to 38 days ago), in the DEFAULT one
	// (50 days ago; 1 and 29 days ago), and in the day that straddles the
	// cut-off (30 days and 5 hours ago, once it has its partition).
	s := db.Store(0, nil)
	mustLoad(t, s)
	rows := []engine.HistoryRow{
		{ProductID: "a", Price: 1, Source: pricing.SourceBase, At: now - 50*day, Version: 1},
		{ProductID: "a", Price: 2, Source: pricing.SourceDynamic, At: now - 44*day, Version: 2},
		{ProductID: "a", Price: 3, Source: pricing.SourceDynamic, At: now - 44*day + 1e9, Version: 3},
		{ProductID: "a", Price: 4, Source: pricing.SourceOverride, At: now - 39*day, Version: 4},
		{ProductID: "a", Price: 5, Source: pricing.SourceDynamic, At: now - 29*day, Version: 5},
		{ProductID: "a", Price: 6, Source: pricing.SourceDynamic, At: now - day, Version: 6},
	}
	mustCommit(t, s, &engine.Batch{Products: []pricing.Product{product("a")}, History: rows})
	mustPrune(t, db, now-31*day, engine.HistoryRetention{}) // creates the straddling day, among others
	straddle := engine.HistoryRow{ProductID: "a", Price: 7, Source: pricing.SourceDynamic, At: now - 30*day - 5*3600e9, Version: 7}
	mustCommit(t, s, &engine.Batch{History: []engine.HistoryRow{straddle}})
	var inDay int
	if err := db.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{dayName(straddle.At)}.Sanitize()).Scan(&inDay); err != nil || inDay != 1 {
		t.Fatalf("the straddling day's partition holds %d rows, %v; want 1", inDay, err)
	}

	n = mustPrune(t, db, now, retention)
	// The 7 days of 44 to 38 days ago go, and 7 days ahead of now come;
	// of those of 30 to 24 days ago (but the one of 29, whose rows were
	// already in the DEFAULT partition), none is all older than 30 days.
	if n.Dropped != 7 || n.Created != 7 || n.Rolled != 4 || n.Summaries != 3 {
		t.Errorf("PruneHistory = %+v, want 7 partitions dropped, 7 created, 4 changes rolled into 3 summaries", n)
	}
	got := partitionNames(t, db)
	for d := int64(1); d <= 7; d++ {
		if name := dayName(t0 + d*day); slices.Contains(got, name) {
			t.Errorf("partition %s, older than 30 days, is still there", name)
		}
		if name := dayName(now + d*day); !slices.Contains(got, name) {
			t.Errorf("partition %s, ahead of now, is not there", name)
		}
	}
	if !slices.Contains(got, dayName(straddle.At)) || slices.Contains(got, dayName(rows[4].At)) {
		t.Errorf("partitions %v: want the straddling day's, and none for the day whose row came first", got)
	}
	page, err := db.HistoryPage(context.Background(), "a", 10, -1)
	if err != nil {
		t.Fatal(err)
	}
	wantPage := engine.HistoryPage{
		Changes: []engine.HistoryRow{rows[5], rows[4], straddle},
		Hourly:  newest(engine.Summarize(rows[:4])),
	}
	if !reflect.DeepEqual(page, wantPage) {
		t.Errorf("HistoryPage =\n %+v\nwant\n %+v", page, wantPage)
	}
	// A month on, the straddling day goes too.
	n = mustPrune(t, db, now+31*day, retention)
	if page, err := db.HistoryPage(context.Background(), "a", 10, 0); err != nil || len(page.Changes) != 0 || n.Rolled != 3 {
		t.Errorf("a month on: %+v, changes %+v, %v; want the last 3 rolled", n, page.Changes, err)
	}
}

// newest returns summaries newest first.
func newest(s []engine.HourlyRow) []engine.HourlyRow {
	slices.Reverse(s)
	return s
}

// TestRetentionOneEngineAtATime: engines (separate pools) that run the
// retention at once do its work once between them.
func TestRetentionOneEngineAtATime(t *testing.T) {
	first := freshDB(t)
	schema := schemaName("pgtest_", t.Name())
	now := time.Date(2025, 3, 20, 13, 30, 0, 0, time.UTC).UnixNano()
	var rows []engine.HistoryRow
	for i := range 5000 {
		rows = append(rows, engine.HistoryRow{ProductID: "a", Price: float64(i), Source: pricing.SourceDynamic,
			At: now - 40*dayNS + int64(i)*1e9, Version: uint64(i + 1)})
	}
	s := first.Store(0, nil)
	mustLoad(t, s)
	mustCommit(t, s, &engine.Batch{Products: []pricing.Product{product("a")}, History: rows})
	const engines = 4
	res := make([]engine.HistoryPruned, engines)
	var wg sync.WaitGroup
	for i := range engines {
		db := openDB(t, schema)
		wg.Go(func() {
			var err error
			if res[i], err = db.PruneHistory(context.Background(), now, retention); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var rolled int64
	created := 0
	for _, r := range res {
		rolled += r.Rolled
		created += r.Created
	}
	// Those that found the lock taken did nothing; a later one may have
	// found nothing left.
	if rolled != int64(len(rows)) || created != 7 {
		t.Errorf("runs %+v: %d rolled and %d partitions created in all, want %d and 7", res, rolled, created, len(rows))
	}
	page, err := first.HistoryPage(context.Background(), "a", 0, 10)
	if err != nil || len(page.Hourly) != 2 || page.Hourly[0].Changes+page.Hourly[1].Changes != int64(len(rows)) {
		t.Errorf("summaries = %+v, %v; want 2 hours of %d changes", page.Hourly, err, len(rows))
	}
}

// TestDropDoesNotStallCommits: while a long read holds price_history
// (a report on the original view, say), dropping an old partition cannot
// take its lock; it waits at most dropLockTimeout each time it tries, so
// the commits queued behind it wait no longer, and it is dropped by a
// later run once the read is over.
func TestDropDoesNotStallCommits(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	now := time.Now().UnixNano()
	mustPrune(t, db, now-45*dayNS, engine.HistoryRetention{})
	s := db.Store(0, nil)
	mustLoad(t, s)
	mustCommit(t, s, &engine.Batch{Products: []pricing.Product{product("a")},
		History: []engine.HistoryRow{{ProductID: "a", Price: 1, Source: pricing.SourceBase, At: now - 43*dayNS, Version: 1}}})

	reader, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM price_history").Scan(&n); err != nil {
		t.Fatal(err)
	}
	done := make(chan engine.HistoryPruned, 1)
	go func() {
		done <- mustPrune(t, db, now, engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 30 * 24 * time.Hour})
	}()
	var worst time.Duration
	commits := 0
	v := uint64(1)
	for running := true; running; {
		select {
		case res := <-done:
			if res.Dropped != 0 {
				t.Errorf("dropped %d partitions while a read held the table", res.Dropped)
			}
			running = false
		default:
		}
		v++
		t0 := time.Now()
		mustCommit(t, s, &engine.Batch{History: []engine.HistoryRow{{ProductID: "a", Price: 2, Source: pricing.SourceDynamic, At: now + int64(v), Version: v}}})
		worst = max(worst, time.Since(t0))
		commits++
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	reader.Release()
	t.Logf("%d commits while the drop was refused %d times, the slowest %v", commits, dropTries, worst)
	// Generous for a shared machine: a commit that waited for the whole
	// run would have taken its 4 s of pauses and more.
	if worst > time.Second {
		t.Errorf("a commit took %v while the drop waited for its lock", worst)
	}
	if res := mustPrune(t, db, now, engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 30 * 24 * time.Hour}); res.Dropped != 7 {
		t.Errorf("the run after the read: %+v, want the 7 old partitions dropped", res)
	}
}

// TestUpgradeTo0006: a database of migration 0005 with history opens with
// the history intact as the partition price_history_legacy, the original
// view reads it, and the retention rolls it up and drops it in time.
func TestUpgradeTo0006(t *testing.T) {
	schema := schemaName("pgtest_", t.Name())
	dropSchema(t, schema)
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: testURL(t), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ms, err := migrations.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= 6 {
			break
		}
		if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		}); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	// History as 0005 keeps it: 3 days of a, 40 to 38 days ago.
	now := time.Now().UnixNano()
	var rows []engine.HistoryRow
	for i := range 3 {
		rows = append(rows, engine.HistoryRow{ProductID: "a", Price: float64(10 + i), Demand: 1, Source: pricing.SourceDynamic,
			At: now - int64(40-i)*dayNS, Version: uint64(i + 1)})
	}
	for _, r := range rows {
		if _, err := db.pool.Exec(ctx, `INSERT INTO price_history (product_id, event_time, version, price, demand, source)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.ProductID, r.At, int64(r.Version), r.Price, r.Demand, r.Source.String()); err != nil {
			t.Fatal(err)
		}
	}
	if applied, err := db.Migrate(ctx); err != nil || !slices.Contains(applied, "0006_history_partitions") {
		t.Fatalf("Migrate = %v, %v", applied, err)
	}
	names := partitionNames(t, db)
	if len(names) != 1+8+1 || names[0] != "price_history_legacy" || names[len(names)-1] != "price_history_default" {
		t.Fatalf("partitions after the upgrade: %v, want the legacy one, today and 7 days, and the default one", names)
	}
	h, err := db.History(ctx, "a", 10)
	if err != nil || !reflect.DeepEqual(h, newestRows(rows)) {
		t.Fatalf("History after the upgrade = %+v, %v", h, err)
	}
	// The original view reads the partitioned table, new rows included.
	s := db.Store(0, nil)
	mustLoad(t, s)
	fresh := engine.HistoryRow{ProductID: "a", Price: 20, Source: pricing.SourceDynamic, At: now, Version: 4}
	mustCommit(t, s, &engine.Batch{History: []engine.HistoryRow{fresh}})
	var n int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema + "_original", "price_history"}.Sanitize()).Scan(&n); err != nil || n != 4 {
		t.Fatalf("the original view shows %d rows, %v; want 4", n, err)
	}
	// The legacy partition is older than the raw window: rolled up and
	// dropped.
	res := mustPrune(t, db, now, retention)
	if res.Rolled != 3 || res.Dropped != 1 || slices.Contains(partitionNames(t, db), "price_history_legacy") {
		t.Errorf("PruneHistory = %+v, partitions %v; want the legacy partition's 3 rows rolled and dropped", res, partitionNames(t, db))
	}
	page, err := db.HistoryPage(ctx, "a", 10, -1)
	if err != nil || !reflect.DeepEqual(page, engine.HistoryPage{Changes: []engine.HistoryRow{fresh}, Hourly: newest(engine.Summarize(rows))}) {
		t.Errorf("HistoryPage after the retention = %+v, %v", page, err)
	}
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema + "_original", "price_history"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Errorf("the original view shows %d rows, %v; want the 1 kept", n, err)
	}
	if _, err := db.pool.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema + "_original", "price_history"}.Sanitize()); err == nil ||
		!strings.Contains(err.Error(), "read-only") {
		t.Errorf("a delete through the original view: %v, want it refused", err)
	}
}

// newestRows returns rows reversed.
func newestRows(rows []engine.HistoryRow) []engine.HistoryRow {
	out := slices.Clone(rows)
	slices.Reverse(out)
	return out
}

// TestRetentionDoesNotStallCommitsPG rolls up a backlog of old history
// (DYNAPRICE_BENCH_RETAIN rows, 200,000 by default, over 7 day partitions
// and a tenth as many products) and drops its partitions while a slot
// commits batches of 100 changes: the commits go on beside the roll-up,
// and every old change ends in a summary.
func TestRetentionDoesNotStallCommitsPG(t *testing.T) {
	rows := 200_000
	if v, err := strconv.Atoi(os.Getenv("DYNAPRICE_BENCH_RETAIN")); err == nil && v > 0 {
		rows = v
	}
	if testing.Short() {
		rows = 20_000
	}
	products := max(rows/10, 1)
	db := freshDB(t)
	ctx := context.Background()
	now := time.Now().UnixNano()
	mustPrune(t, db, now-45*dayNS, engine.HistoryRetention{})
	start := now - 45*dayNS
	start += dayNS - ((start%dayNS)+dayNS)%dayNS // the first day partition's
	s := db.Store(0, nil)
	mustLoad(t, s)
	span := 7 * dayNS
	const per = 20_000
	t0 := time.Now()
	for lo := 0; lo < rows; lo += per {
		b := &engine.Batch{}
		for i := lo; i < min(lo+per, rows); i++ {
			b.History = append(b.History, engine.HistoryRow{ProductID: fmt.Sprintf("p%07d", i%products), Price: float64(i%1000) / 10,
				Source: pricing.SourceDynamic, At: start + int64(i)*(span/int64(rows)), Version: uint64(i/products + 1)})
		}
		engine.SortHistory(b.History)
		mustCommit(t, s, b)
	}
	var size int64
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits WHERE inhparent = 'price_history'::regclass").Scan(&size); err != nil {
		t.Fatal(err)
	}
	t.Logf("backlog: %d rows over %d products in %v; price_history %d MB", rows, products, time.Since(t0).Round(time.Millisecond), size>>20)

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
		mustCommit(t, s, b)
		return time.Since(c0)
	}
	quantiles := func(lat []time.Duration) string {
		slices.Sort(lat)
		return fmt.Sprintf("%d commits of 100, p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
	var base []time.Duration
	for b0 := time.Now(); time.Since(b0) < 3*time.Second; {
		base = append(base, commit())
	}
	t.Logf("without the roll-up: %s", quantiles(base))
	done := make(chan error, 1)
	var res engine.HistoryPruned
	began := time.Now()
	go func() {
		var err error
		res, err = db.PruneHistory(ctx, now, retention)
		done <- err
	}()
	var lat []time.Duration
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		lat = append(lat, commit())
	}
	took := time.Since(began)
	t.Logf("rolled %d changes into %d summaries and dropped %d partitions in %v (%.0f changes/s); meanwhile %s",
		res.Rolled, res.Summaries, res.Dropped, took.Round(time.Millisecond), float64(res.Rolled)/took.Seconds(), quantiles(lat))
	var summarised int64
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(sum(changes), 0) FROM price_hourly").Scan(&summarised); err != nil {
		t.Fatal(err)
	}
	if res.Rolled != int64(rows) || summarised != int64(rows) || res.Dropped != 7 {
		t.Errorf("rolled %d, summaries of %d changes, %d partitions dropped; want %d, %d and 7", res.Rolled, summarised, res.Dropped, rows, rows)
	}
}
