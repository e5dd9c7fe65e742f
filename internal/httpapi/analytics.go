package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Analytics answers revenue analytics (GET /analytics).
type Analytics interface {
	// Analytics sums the hours of q by q.By, at most limit groups (the
	// most revenue first; by hour and day in time order); more reports
	// that groups were left out.
	Analytics(ctx context.Context, q engine.AnalyticsQuery, limit int) (groups []engine.AnalyticsTotal, more bool, err error)
}

// GET /analytics bounds. A range is at most MaxAnalyticsRange (the hourly
// history's default retention, beyond which there are no rows), and by
// hour at most MaxAnalyticsHourly (744 groups); an answer has at most
// MaxAnalyticsLimit groups, DefaultAnalyticsLimit unless ?limit= says.
// Without ?from= the range is the DefaultAnalyticsRange before ?to=, which
// is by default the end of the current hour.
const (
	DefaultAnalyticsLimit = 100
	MaxAnalyticsLimit     = 1000
	MaxAnalyticsRange     = 400 * 24 * time.Hour
	MaxAnalyticsHourly    = 31 * 24 * time.Hour
	DefaultAnalyticsRange = 24 * time.Hour
	// analyticsScan is how many groups the store is asked for, before the
	// open hour is added and the answer cut to its limit: enough that the
	// ranking by revenue is exact unless more than this many products sold
	// in the range.
	analyticsScan = 10_000
	// maxAnalyticsFilter bounds ?product= and ?strategy=.
	maxAnalyticsFilter = 256
)

// analyticsGroup is one group of a GET /analytics answer. Ratios are
// null where their denominator is 0.
type analyticsGroup struct {
	Key string `json:"key"`
	// Start is the group's first hour for by=hour and by=day.
	Start        string   `json:"start,omitempty"`
	Views        int64    `json:"views"`
	Carts        int64    `json:"carts"`
	Purchases    int64    `json:"purchases"`
	Units        int64    `json:"units"`
	Conversion   *float64 `json:"conversion"`
	Revenue      float64  `json:"revenue"`
	Cost         float64  `json:"cost"`
	Margin       float64  `json:"margin"`
	MarginPct    *float64 `json:"margin_pct"`
	AvgPrice     *float64 `json:"avg_price"`
	AvgListPrice *float64 `json:"avg_list_price"`
	PriceIndex   *float64 `json:"price_index"`
}

type analyticsAnswer struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	By       string           `json:"by"`
	Currency string           `json:"currency"`
	Groups   []analyticsGroup `json:"groups"`
	More     bool             `json:"more"`
}

func ratio(n, d float64, decimals int) *float64 {
	if d == 0 {
		return nil
	}
	v := pricing.Round(n/d, decimals)
	return &v
}

func groupOf(by string, t engine.AnalyticsTotal) analyticsGroup {
	g := analyticsGroup{Key: t.Key, Views: t.Views, Carts: t.Carts, Purchases: t.Purchases, Units: t.Units,
		Revenue: pricing.RoundCents(t.Revenue), Cost: pricing.RoundCents(t.Cost),
		Margin:     pricing.RoundCents(t.Revenue - t.Cost),
		Conversion: ratio(float64(t.Purchases), float64(t.Views), 4),
		MarginPct:  ratio(100*(t.Revenue-t.Cost), t.Revenue, 2),
		AvgPrice:   ratio(t.Revenue, float64(t.Units), 2), AvgListPrice: ratio(t.List, float64(t.Units), 2),
		PriceIndex: ratio(t.Revenue, t.List, 4)}
	if by == engine.ByHour || by == engine.ByDay {
		g.Start = rfc3339(t.Start)
		g.Key = g.Start
	}
	return g
}

// parseAnalyticsTime reads ?from= or ?to=: RFC 3339, a date (YYYY-MM-DD,
// midnight UTC) or unix seconds.
func parseAnalyticsTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < 1<<33 {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errStatus(http.StatusBadRequest, name+" must be an RFC 3339 time, a date (YYYY-MM-DD) or unix seconds, got "+strconv.Quote(s))
}

// analyticsQuery reads and checks a GET /analytics query.
func (a *API) analyticsQuery(r *http.Request) (engine.AnalyticsQuery, int, string, error) {
	v := r.URL.Query()
	var q engine.AnalyticsQuery
	q.By = v.Get("by")
	if q.By == "" {
		q.By = engine.ByProduct
	}
	switch q.By {
	case engine.ByProduct, engine.ByStrategy, engine.ByArm, engine.ByHour, engine.ByDay:
	default:
		return q, 0, "", errStatus(http.StatusBadRequest, "by must be product, strategy, arm, hour or day, got "+strconv.Quote(q.By))
	}
	format := v.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		return q, 0, "", errStatus(http.StatusBadRequest, "format must be json or csv, got "+strconv.Quote(format))
	}
	to := a.now()
	if s := v.Get("to"); s != "" {
		t, err := parseAnalyticsTime("to", s)
		if err != nil {
			return q, 0, "", err
		}
		to = t
	}
	from := to.Add(-DefaultAnalyticsRange)
	if s := v.Get("from"); s != "" {
		t, err := parseAnalyticsTime("from", s)
		if err != nil {
			return q, 0, "", err
		}
		from = t
	}
	if !from.Before(to) {
		return q, 0, "", errStatus(http.StatusBadRequest, "from must be before to")
	}
	if from.Year() < 2000 || to.Year() > 2200 {
		return q, 0, "", errStatus(http.StatusBadRequest, "from and to must be between the years 2000 and 2200")
	}
	q.From, q.To = engine.Hours(from, to)
	span := time.Duration(q.To - q.From)
	if span > MaxAnalyticsRange {
		return q, 0, "", errStatus(http.StatusBadRequest, "the range from from to to must be at most 400 days")
	}
	if q.By == engine.ByHour && span > MaxAnalyticsHourly {
		return q, 0, "", errStatus(http.StatusBadRequest, "by=hour takes a range of at most 31 days; use by=day for longer ones")
	}
	q.ProductID, q.Strategy = v.Get("product"), v.Get("strategy")
	if len(q.ProductID) > maxAnalyticsFilter || len(q.Strategy) > maxAnalyticsFilter {
		return q, 0, "", errStatus(http.StatusBadRequest, "product and strategy must be at most "+strconv.Itoa(maxAnalyticsFilter)+" bytes")
	}
	limit, err := parseLimit(r, DefaultAnalyticsLimit, MaxAnalyticsLimit)
	if err != nil {
		return q, 0, "", err
	}
	q.Max = max(limit, analyticsScan)
	return q, limit, format, nil
}

// getAnalytics answers GET /analytics: revenue, units, conversion, margin
// and the average price against the list price, over whole UTC hours,
// grouped by product, strategy, experiment arm, hour or day; as JSON or,
// with format=csv, as a CSV file.
func (a *API) getAnalytics(w http.ResponseWriter, r *http.Request, _ Key) error {
	if a.deps.Analytics == nil {
		return errStatus(http.StatusNotImplemented, "analytics are not served by this process")
	}
	q, limit, format, err := a.analyticsQuery(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	ts, more, err := a.deps.Analytics.Analytics(ctx, q, limit)
	if err != nil {
		return err
	}
	out := analyticsAnswer{From: rfc3339(q.From), To: rfc3339(q.To), By: q.By, Currency: a.currency(),
		Groups: make([]analyticsGroup, len(ts)), More: more}
	for i, t := range ts {
		out.Groups[i] = groupOf(q.By, t)
	}
	if format == "json" {
		return writeJSON(w, http.StatusOK, out)
	}
	return writeAnalyticsCSV(w, out)
}

// writeAnalyticsCSV writes the answer as a CSV file, one line per group,
// ratios empty where they have no value.
func writeAnalyticsCSV(w http.ResponseWriter, out analyticsAnswer) error {
	var b bytes.Buffer
	c := csv.NewWriter(&b)
	_ = c.Write([]string{out.By, "views", "carts", "purchases", "units", "conversion", "revenue", "cost", "margin",
		"margin_pct", "avg_price", "avg_list_price", "price_index", "currency"})
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	opt := func(f *float64) string {
		if f == nil || math.IsNaN(*f) {
			return ""
		}
		return num(*f)
	}
	for _, g := range out.Groups {
		_ = c.Write([]string{csvCell(g.Key), strconv.FormatInt(g.Views, 10), strconv.FormatInt(g.Carts, 10),
			strconv.FormatInt(g.Purchases, 10), strconv.FormatInt(g.Units, 10), opt(g.Conversion), num(g.Revenue),
			num(g.Cost), num(g.Margin), opt(g.MarginPct), opt(g.AvgPrice), opt(g.AvgListPrice), opt(g.PriceIndex), out.Currency})
	}
	c.Flush()
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="analytics-by-`+out.By+`.csv"`)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return nil
}

// csvCell keeps a product id or strategy from being read as a formula by
// a spreadsheet (CSV injection): a cell that starts with one of = + - @
// or a tab or carriage return gets a leading apostrophe.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
