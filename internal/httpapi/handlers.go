package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
)

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ Key) error {
	WriteHealth(w)
	return nil
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request, _ Key) error {
	// Written here rather than returned: not being ready while starting or
	// draining is expected, and every probe would log an error.
	why := "not ready"
	if a.deps.Ready != nil {
		why = a.deps.Ready()
	}
	WriteReadiness(w, why)
	return nil
}

// productID reads and validates the {id} path value.
func productID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !pricing.ValidID(id) {
		return "", errStatus(http.StatusBadRequest, "invalid product id "+strconv.Quote(id)+": must match [A-Za-z0-9_-]{1,64}")
	}
	return id, nil
}

func (a *API) getPrice(w http.ResponseWriter, r *http.Request, _ Key) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	var shopper string
	if raw := r.URL.RawQuery; raw != "" {
		if v := queryValue(raw, "explain"); v != "" && v != "0" && v != "false" {
			return a.explain(w, r, id)
		}
		if shopper = queryValue(raw, "shopper"); len(shopper) > maxShopperLen {
			return errStatus(http.StatusBadRequest, "shopper must be at most "+strconv.Itoa(maxShopperLen)+" bytes")
		}
	}
	b, ok, err := a.deps.Prices.Price(r.Context(), id)
	if err != nil {
		return errPricesUnavailable(err)
	}
	if !ok {
		return errStatus(http.StatusNotFound, "unknown product_id "+strconv.Quote(id))
	}
	if shopper != "" && a.experimentPrice(w, id, shopper, b) {
		return nil
	}
	a.writePrice(w, b)
	return nil
}

// currencyField is the `,"currency":"XXX"}` that ends a price's JSON, for
// one currency code.
type currencyField struct {
	code string
	tail []byte
}

// writePrice writes a price's JSON object with the catalog's currency
// added as its last field, without copying the object (which a Prices
// implementation may share): the object without its closing brace, then
// the field. The field is built once per currency.
func (a *API) writePrice(w http.ResponseWriter, b []byte) {
	code := a.currency()
	f := a.curField.Load()
	if f == nil || f.code != code {
		f = &currencyField{code: code, tail: []byte(`,"currency":` + strconv.Quote(code) + "}")}
		a.curField.Store(f)
	}
	if len(b) < 2 || b[len(b)-1] != '}' {
		writeJSONBytes(w, http.StatusOK, b)
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b) - 1 + len(f.tail))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b[:len(b)-1])
	_, _ = w.Write(f.tail)
}

// explain needs a key with read access: an explanation reveals floors,
// ceilings and strategy, which a shop may not want its competitors to see.
func (a *API) explain(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := a.authorize(r, permRead); err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	e, err := a.deps.Engine.Explain(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	writeJSONBytes(w, status, append(b, '\n'))
	return nil
}

// timeout bounds how long a request waits for the engine.
func (a *API) timeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
}

// eventsResponse is POST /events' answer.
type eventsResponse struct {
	Accepted   int             `json:"accepted"`
	Rejected   int             `json:"rejected"`
	Duplicates int             `json:"duplicates"`
	Errors     []ingest.Reject `json:"errors"`
	// ErrorsOmitted counts rejected events not described in Errors.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
}

type eventBuffers struct {
	body   bytes.Buffer
	events []ingest.Event
	idx    []int
}

var bufPool = sync.Pool{New: func() any { return new(eventBuffers) }}

// postEvents accepts one event, a JSON array or NDJSON and answers 202 once
// every accepted event is durably committed.
func (a *API) postEvents(w http.ResponseWriter, r *http.Request, _ Key) error {
	if r.ContentLength > a.cfg.MaxEventsBody {
		return errStatus(http.StatusRequestEntityTooLarge, "request body is larger than "+strconv.FormatInt(a.cfg.MaxEventsBody, 10)+" bytes")
	}
	bufs := bufPool.Get().(*eventBuffers)
	defer func() {
		if bufs.body.Cap() <= 32<<20 {
			bufs.body.Reset()
			clear(bufs.events)
			bufPool.Put(bufs)
		}
	}()
	bufs.body.Reset()
	a.bodyDeadline(w)
	if _, err := bufs.body.ReadFrom(http.MaxBytesReader(w, r.Body, a.cfg.MaxEventsBody)); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return errStatus(http.StatusBadRequest, "reading request body: "+err.Error())
	}
	events, idx, rejects, err := a.deps.Decoder.Decode(bufs.body.Bytes(), r.Header.Get("Content-Type"), bufs.events[:0], bufs.idx[:0])
	bufs.events, bufs.idx = events, idx
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	res, err := a.deps.Engine.Submit(ctx, events)
	if err != nil {
		return err
	}
	// The engine's rejects index into the valid events; map them back to
	// positions in the body.
	for _, rj := range res.Rejects {
		rejects = append(rejects, ingest.Reject{Index: idx[rj.Index], Error: rj.Error})
	}
	slices.SortStableFunc(rejects, func(x, y ingest.Reject) int { return cmp.Compare(x.Index, y.Index) })
	if rejects == nil {
		rejects = []ingest.Reject{}
	}
	resp := eventsResponse{Accepted: res.Accepted, Rejected: len(rejects), Duplicates: res.Duplicates, Errors: rejects}
	if maxErr := a.maxErrors(); len(rejects) > maxErr {
		resp.Errors, resp.ErrorsOmitted = rejects[:maxErr], len(rejects)-maxErr
	}
	return writeJSON(w, http.StatusAccepted, resp)
}

// bodyDeadline sets when reading the request body must be done. A body
// read past it fails, the handler answers 400, and the connection closes.
func (a *API) bodyDeadline(w http.ResponseWriter) {
	d := a.cfg.BodyTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
}

func (a *API) maxErrors() int {
	if a.cfg.MaxErrors > 0 {
		return a.cfg.MaxErrors
	}
	return DefaultMaxErrors
}

// decodeBody decodes a small JSON request body strictly: unknown fields are
// errors, so a typo such as "overide_price" is caught rather than ignored.
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	a.bodyDeadline(w)
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.cfg.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errStatus(http.StatusBadRequest, "request body is empty; want a JSON object")
		}
		return errStatus(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return errStatus(http.StatusBadRequest, "invalid JSON body: more than one value")
	}
	return nil
}

type overrideRequest struct {
	ProductID     string   `json:"product_id"`
	OverridePrice *float64 `json:"override_price"`
	Reason        string   `json:"reason"`
	// ExpiresAt (RFC 3339) or TTLSeconds set an optional expiry.
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	TTLSeconds *float64   `json:"ttl_seconds,omitempty"`
}

type overrideResponse struct {
	ProductID     string     `json:"product_id"`
	OverridePrice float64    `json:"override_price"`
	Reason        string     `json:"reason"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	Status        string     `json:"status"`
}

// DefaultOverrideReason is the reason of an override given none: the
// original's.
const DefaultOverrideReason = "manual override"

func (a *API) postOverride(w http.ResponseWriter, r *http.Request, k Key) error {
	var req overrideRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	// As the original did: spaces around the id are trimmed (an id itself
	// has none), and an override given no reason is a "manual override".
	req.ProductID = strings.TrimSpace(req.ProductID)
	if !pricing.ValidID(req.ProductID) {
		return errStatus(http.StatusBadRequest, "product_id "+strconv.Quote(req.ProductID)+" must match [A-Za-z0-9_-]{1,64}")
	}
	if req.OverridePrice == nil {
		return errStatus(http.StatusBadRequest, "override_price is required")
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = DefaultOverrideReason
	}
	in := engine.OverrideInput{ProductID: req.ProductID, Price: *req.OverridePrice, Reason: reason, By: k.Name}
	now := time.Now()
	switch {
	case req.ExpiresAt != nil && req.TTLSeconds != nil:
		return errStatus(http.StatusBadRequest, "give expires_at or ttl_seconds, not both")
	case req.ExpiresAt != nil:
		in.ExpiresAt = *req.ExpiresAt
	case req.TTLSeconds != nil:
		if !(*req.TTLSeconds > 0) || *req.TTLSeconds > 10*365*86400 {
			return errStatus(http.StatusBadRequest, "ttl_seconds must be > 0 and at most ten years")
		}
		in.ExpiresAt = now.Add(time.Duration(*req.TTLSeconds * float64(time.Second)))
	}
	// The engine checks again when it applies the override (the product's
	// existence too); checking here answers 400 before anything is queued.
	if err := in.Check(now.UnixNano()); err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	status, code := "upserted", http.StatusOK
	if err := a.deps.Engine.SetOverride(ctx, in); errors.Is(err, engine.ErrNotYetVisible) {
		// An API replica: in Kafka, not yet priced by the engine.
		status, code = "accepted", http.StatusAccepted
	} else if err != nil {
		return err
	}
	resp := overrideResponse{ProductID: in.ProductID, OverridePrice: pricing.RoundCents(in.Price), Reason: in.Reason, Status: status}
	if !in.ExpiresAt.IsZero() {
		t := in.ExpiresAt.UTC()
		resp.ExpiresAt = &t
	}
	return writeJSON(w, code, resp)
}

func (a *API) deleteOverride(w http.ResponseWriter, r *http.Request, k Key) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	if err := a.deps.Engine.ClearOverride(ctx, id, k.Name); errors.Is(err, engine.ErrNotYetVisible) {
		return writeJSON(w, http.StatusAccepted, map[string]any{"product_id": id, "deleted": true, "status": "accepted"})
	} else if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"product_id": id, "deleted": true})
}

// postRelease lets a price held by the price-velocity breaker go.
func (a *API) postRelease(w http.ResponseWriter, r *http.Request, k Key) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	err = a.deps.Engine.Release(ctx, id, k.Name)
	if err != nil && !errors.Is(err, engine.ErrNotYetVisible) {
		return err
	}
	a.cfg.Logger.Info("held price released", "product_id", id, "by", k.Name)
	if err != nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"product_id": id, "released": true, "status": "accepted"})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"product_id": id, "released": true})
}

// parseLimit reads ?limit=N: default def when absent, capped at max, 400
// unless a positive integer. A positive integer too large for an int is a
// large limit like any other and is capped, not refused.
func parseLimit(r *http.Request, def, max int) (int, error) {
	q := r.URL.Query()
	if !q.Has("limit") {
		return def, nil
	}
	s := q.Get("limit")
	n, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' {
		return max, nil
	}
	if err != nil || n < 1 {
		return 0, errStatus(http.StatusBadRequest, "limit must be a positive integer, got "+strconv.Quote(s))
	}
	return min(n, max), nil
}

// archiveQuery reads the product id and ?limit= of a history or audit
// query; an unknown product is a 404 rather than an empty list.
func (a *API) archiveQuery(r *http.Request) (string, int, error) {
	id, err := productID(r)
	if err != nil {
		return "", 0, err
	}
	limit, err := parseLimit(r, defaultHistoryLimit, maxHistoryLimit)
	if err != nil {
		return "", 0, err
	}
	_, ok, err := a.deps.Prices.Price(r.Context(), id)
	if err != nil {
		return "", 0, errPricesUnavailable(err)
	}
	if !ok {
		return "", 0, errStatus(http.StatusNotFound, "unknown product_id "+strconv.Quote(id))
	}
	return id, limit, nil
}

type historyPoint struct {
	Price       float64 `json:"price"`
	EventTime   string  `json:"event_time"`
	PriceSource string  `json:"price_source"`
	Demand      float64 `json:"demand"`
	Version     uint64  `json:"version"`
}

// hourlyPoint is an hourly summary of changes older than the history
// retention's raw window (engine.HourlyRow); the close's details have
// historyPoint's names.
type hourlyPoint struct {
	Hour        string  `json:"hour"`
	Open        float64 `json:"open"`
	High        float64 `json:"high"`
	Low         float64 `json:"low"`
	Close       float64 `json:"close"`
	Changes     int64   `json:"changes"`
	CloseTime   string  `json:"close_time"`
	PriceSource string  `json:"price_source"`
	Demand      float64 `json:"demand"`
	Version     uint64  `json:"version"`
}

type historyAnswer struct {
	ProductID string         `json:"product_id"`
	Currency  string         `json:"currency"`
	History   []historyPoint `json:"history"`
	// Hourly is absent, rather than empty, when there are none: the
	// answer of a product whose changes are all kept one by one is the
	// one it always was.
	Hourly []hourlyPoint `json:"hourly,omitempty"`
}

// parseHourly reads ?hourly=N, the most hourly summaries to add: -1 (as
// many as limit leaves) when absent, capped at max, 400 unless an integer
// >= 0.
func parseHourly(r *http.Request, max int) (int, error) {
	q := r.URL.Query()
	if !q.Has("hourly") {
		return -1, nil
	}
	s := q.Get("hourly")
	n, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' {
		return max, nil
	}
	if err != nil || n < 0 {
		return 0, errStatus(http.StatusBadRequest, "hourly must be an integer >= 0, got "+strconv.Quote(s))
	}
	return min(n, max), nil
}

func (a *API) getHistory(w http.ResponseWriter, r *http.Request, _ Key) error {
	hourly, err := parseHourly(r, maxHistoryLimit)
	if err != nil {
		return err
	}
	id, limit, err := a.archiveQuery(r)
	if err != nil {
		return err
	}
	page, err := a.deps.Archive.HistoryPage(r.Context(), id, limit, hourly)
	if err != nil {
		return err
	}
	at := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	out := historyAnswer{ProductID: id, Currency: a.currency(), History: make([]historyPoint, len(page.Changes))}
	for i, h := range page.Changes {
		out.History[i] = historyPoint{Price: h.Price, EventTime: at(h.At),
			PriceSource: h.Source.String(), Demand: pricing.Round(h.Demand, pricing.DemandDecimals), Version: h.Version}
	}
	for _, h := range page.Hourly {
		out.Hourly = append(out.Hourly, hourlyPoint{Hour: at(h.Hour), Open: h.Open, High: h.High, Low: h.Low, Close: h.Close,
			Changes: h.Changes, CloseTime: at(h.CloseAt), PriceSource: h.Source.String(),
			Demand: pricing.Round(h.Demand, pricing.DemandDecimals), Version: h.Version})
	}
	return writeJSON(w, http.StatusOK, out)
}

type auditEntry struct {
	engine.OverrideRecord
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at,omitempty"`
	EndedAt   string `json:"ended_at,omitempty"`
	Active    bool   `json:"active"`
}

func rfc3339(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func (a *API) getOverrideAudit(w http.ResponseWriter, r *http.Request, _ Key) error {
	id, limit, err := a.archiveQuery(r)
	if err != nil {
		return err
	}
	recs, err := a.deps.Archive.OverrideAudit(r.Context(), id, limit)
	if err != nil {
		return err
	}
	out := make([]auditEntry, len(recs))
	for i, o := range recs {
		out[i] = auditEntry{OverrideRecord: o, CreatedAt: rfc3339(o.CreatedAt), ExpiresAt: rfc3339(o.ExpiresAt),
			EndedAt: rfc3339(o.EndedAt), Active: o.EndedAt == 0}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"product_id": id, "overrides": out})
}

type productJSON struct {
	pricing.Product
	EffectiveStrategy string  `json:"effective_strategy"`
	Price             float64 `json:"price"`
	PriceSource       string  `json:"price_source"`
	Demand            float64 `json:"demand"`
}

func (a *API) getProducts(w http.ResponseWriter, r *http.Request, _ Key) error {
	ctx, cancel := a.timeout(r)
	defer cancel()
	ps, err := a.deps.Engine.Products(ctx)
	if err != nil {
		return err
	}
	out := make([]productJSON, len(ps))
	for i, p := range ps {
		out[i] = productJSON{Product: p.Product, EffectiveStrategy: p.EffectiveStrategy, Price: p.Price,
			PriceSource: p.Source.String(), Demand: pricing.Round(p.Demand, pricing.DemandDecimals)}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"products": out, "currency": a.currency()})
}

func (a *API) putProduct(w http.ResponseWriter, r *http.Request, _ Key) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	var p pricing.Product
	if err := a.decodeBody(w, r, &p); err != nil {
		return err
	}
	if p.ID != "" && p.ID != id {
		return errStatus(http.StatusBadRequest, "product_id in the body ("+strconv.Quote(p.ID)+") differs from the path")
	}
	p.ID = id
	ctx, cancel := a.timeout(r)
	defer cancel()
	created, err := a.deps.Engine.UpsertProduct(ctx, p)
	if err != nil {
		return err
	}
	status, word := http.StatusOK, "updated"
	if created {
		status, word = http.StatusCreated, "created"
	}
	return writeJSON(w, status, map[string]any{"product": p, "status": word})
}
