package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/engine"
)

var _ engine.AnalyticsReader = (*Store)(nil)

// writeAnalytics appends b's analytics rows inside the commit's
// transaction.
func writeAnalytics(ctx context.Context, ws *writeStmts, rows []engine.AnalyticsRow) error {
	return ws.analytics.exec(ctx, ws, len(rows), func(v []driver.NamedValue, i int) {
		r := &rows[i]
		v[0].Value, v[1].Value, v[2].Value, v[3].Value = r.Hour, r.ProductID, r.Strategy, r.Arm
		v[4].Value, v[5].Value, v[6].Value, v[7].Value = r.Views, r.Carts, r.Purchases, r.Units
		v[8].Value, v[9].Value, v[10].Value = r.Revenue, r.Cost, r.List
	})
}

// analyticsKey is the SQL expression of each grouping's key.
func analyticsKey(by string) (string, error) {
	switch by {
	case engine.ByProduct:
		return "product_id", nil
	case engine.ByStrategy:
		return "strategy", nil
	case engine.ByArm:
		return "arm", nil
	case engine.ByHour:
		return "hour", nil
	case engine.ByDay:
		return "hour - hour % " + strconv.FormatInt(engine.DayNS, 10), nil
	}
	return "", fmt.Errorf("unknown grouping %q", by)
}

// AnalyticsTotals sums the analytics rows of q's hours by q.By, on a
// reader connection (commits go on alongside).
func (s *Store) AnalyticsTotals(ctx context.Context, q engine.AnalyticsQuery) ([]engine.AnalyticsTotal, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, fmt.Errorf("sqlite: analytics: %w", err)
	}
	key, err := analyticsKey(q.By)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: analytics: %w", err)
	}
	query := "SELECT " + key + ` AS k, sum(views), sum(carts), sum(purchases), sum(units), sum(revenue), sum(cost), sum(list)
		FROM analytics_hourly WHERE hour >= ? AND hour < ?`
	args := []any{q.From, q.To}
	if q.ProductID != "" {
		query += " AND product_id = ?"
		args = append(args, q.ProductID)
	}
	if q.Strategy != "" {
		query += " AND strategy = ?"
		args = append(args, q.Strategy)
	}
	query += " GROUP BY k"
	if q.By == engine.ByHour || q.By == engine.ByDay {
		query += " ORDER BY k"
	} else {
		query += " ORDER BY sum(revenue) DESC, k"
	}
	if q.Max > 0 {
		query += " LIMIT ?"
		args = append(args, q.Max+1)
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: analytics: %w", err)
	}
	defer rows.Close()
	var out []engine.AnalyticsTotal
	for rows.Next() {
		var t engine.AnalyticsTotal
		var k any
		if err := rows.Scan(&k, &t.Views, &t.Carts, &t.Purchases, &t.Units, &t.Revenue, &t.Cost, &t.List); err != nil {
			return nil, false, fmt.Errorf("sqlite: analytics: %w", err)
		}
		switch v := k.(type) {
		case int64:
			t.Key, t.Start = strconv.FormatInt(v, 10), v
		case string:
			t.Key = v
		case []byte:
			t.Key = string(v)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("sqlite: analytics: %w", err)
	}
	if q.Max > 0 && len(out) > q.Max {
		return out[:q.Max], true, nil
	}
	return out, false, nil
}

// expireAnalytics deletes analytics rows of hours before cut, at most
// tuning.retainRows a step; more reports a full step.
func (s *Store) expireAnalytics(ctx context.Context, cut int64, n *engine.HistoryPruned) (more bool, err error) {
	err = s.withWriter(ctx, func(c writeConn, ws *writeStmts) error {
		tx, err := c.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		res, err := ws.analyticsExpire.(driver.StmtExecContext).ExecContext(ctx, []driver.NamedValue{
			{Ordinal: 1, Value: cut}, {Ordinal: 2, Value: int64(s.tun.retainRows)}})
		var k int64
		if err == nil {
			k, err = res.RowsAffected()
		}
		if err != nil {
			tx.Rollback() //nolint:errcheck // secondary to err
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		n.Analytics += k
		more = k == int64(s.tun.retainRows)
		return nil
	})
	return more, err
}
