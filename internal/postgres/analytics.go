package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ engine.AnalyticsReader = (*Store)(nil)
	_ engine.AnalyticsReader = (*DB)(nil)
)

// analyticsCols are the columns COPY writes, in analyticsRows' order.
var analyticsCols = []string{"hour", "product_id", "strategy", "arm", "views", "carts", "purchases", "units", "revenue", "cost", "list"}

// analyticsRows feeds a batch's analytics rows to COPY.
type analyticsRows struct {
	rows []engine.AnalyticsRow
	i    int
	vals [11]any
}

func (r *analyticsRows) Next() bool {
	r.i++
	return r.i <= len(r.rows)
}

func (r *analyticsRows) Values() ([]any, error) {
	a := &r.rows[r.i-1]
	r.vals = [11]any{a.Hour, a.ProductID, a.Strategy, a.Arm, a.Views, a.Carts, a.Purchases, a.Units, a.Revenue, a.Cost, a.List}
	return r.vals[:], nil
}

func (r *analyticsRows) Err() error { return nil }

// copyAnalytics appends rows inside the commit's transaction.
func copyAnalytics(ctx context.Context, tx pgx.Tx, rows []engine.AnalyticsRow) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"analytics_hourly"}, analyticsCols, &analyticsRows{rows: rows})
	return err
}

// AnalyticsTotals sums the analytics rows of q's hours by q.By.
func (s *Store) AnalyticsTotals(ctx context.Context, q engine.AnalyticsQuery) ([]engine.AnalyticsTotal, bool, error) {
	return s.db.AnalyticsTotals(ctx, q)
}

// AnalyticsTotals sums the analytics rows of q's hours by q.By, at most
// q.Max groups.
func (db *DB) AnalyticsTotals(ctx context.Context, q engine.AnalyticsQuery) ([]engine.AnalyticsTotal, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, fmt.Errorf("postgres: analytics: %w", err)
	}
	var key string
	numeric := false
	switch q.By {
	case engine.ByProduct:
		key = "product_id"
	case engine.ByStrategy:
		key = "strategy"
	case engine.ByArm:
		key = "arm"
	case engine.ByHour:
		key, numeric = "hour", true
	case engine.ByDay:
		key, numeric = "hour - hour % "+strconv.FormatInt(engine.DayNS, 10), true
	}
	query := "SELECT " + key + ` AS k, sum(views)::bigint, sum(carts)::bigint, sum(purchases)::bigint, sum(units)::bigint,
		sum(revenue), sum(cost), sum(list) FROM analytics_hourly WHERE hour >= $1 AND hour < $2`
	args := []any{q.From, q.To}
	if q.ProductID != "" {
		args = append(args, q.ProductID)
		query += " AND product_id = $" + strconv.Itoa(len(args))
	}
	if q.Strategy != "" {
		args = append(args, q.Strategy)
		query += " AND strategy = $" + strconv.Itoa(len(args))
	}
	query += " GROUP BY k"
	if numeric {
		query += " ORDER BY k"
	} else {
		query += " ORDER BY sum(revenue) DESC, " + key + ` COLLATE "C"`
	}
	if q.Max > 0 {
		args = append(args, q.Max+1)
		query += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: analytics: %w", err)
	}
	defer rows.Close()
	var out []engine.AnalyticsTotal
	for rows.Next() {
		var t engine.AnalyticsTotal
		var err error
		if numeric {
			err = rows.Scan(&t.Start, &t.Views, &t.Carts, &t.Purchases, &t.Units, &t.Revenue, &t.Cost, &t.List)
			t.Key = strconv.FormatInt(t.Start, 10)
		} else {
			err = rows.Scan(&t.Key, &t.Views, &t.Carts, &t.Purchases, &t.Units, &t.Revenue, &t.Cost, &t.List)
		}
		if err != nil {
			return nil, false, fmt.Errorf("postgres: analytics: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("postgres: analytics: %w", err)
	}
	if q.Max > 0 && len(out) > q.Max {
		return out[:q.Max], true, nil
	}
	return out, false, nil
}

// expireAnalytics deletes the analytics rows of hours before cut, a step
// of retainRows at a time, pausing as long as each step took.
func expireAnalytics(ctx context.Context, c *pgxpool.Conn, cut int64, n *engine.HistoryPruned) error {
	del := `DELETE FROM analytics_hourly WHERE ctid = ANY(ARRAY(SELECT ctid FROM analytics_hourly WHERE hour < $1 LIMIT $2))`
	for {
		t0 := time.Now()
		tag, err := c.Exec(ctx, del, cut, retainRows)
		if err != nil {
			return fmt.Errorf("expire analytics: %w", err)
		}
		n.Analytics += tag.RowsAffected()
		if tag.RowsAffected() < retainRows {
			return nil
		}
		if err := retry.Sleep(ctx, time.Since(t0)); err != nil {
			return err
		}
	}
}
