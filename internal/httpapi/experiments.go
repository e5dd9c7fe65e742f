package httpapi

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Experiments is the part of the engine that runs price experiments
// (engine.Writer in serve). Optional: without it the experiment routes are
// not served and GET /price ignores shopper.
type Experiments interface {
	CreateExperiment(ctx context.Context, in engine.ExperimentInput) (engine.ExperimentState, error)
	StopExperiment(ctx context.Context, in engine.ExperimentInput) (engine.ExperimentState, error)
	PromoteExperiment(ctx context.Context, in engine.ExperimentInput) (engine.ExperimentState, error)
	Experiments(ctx context.Context, id string) ([]engine.ExperimentState, error)
	// Serving returns what pricing a shopper in an experiment needs; safe
	// for concurrent use.
	Serving() *engine.Serving
}

// experimentRequest is POST /experiments' body: a definition with times
// as RFC 3339 (start: now when absent; end: none, run until stopped).
type experimentRequest struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Products []string          `json:"products"`
	Arms     []experiment.Arm  `json:"arms"`
	Split    experiment.Split  `json:"split"`
	Salt     string            `json:"salt"`
	Metric   experiment.Metric `json:"metric"`
	Alpha    float64           `json:"alpha"`
	Start    *time.Time        `json:"start"`
	End      *time.Time        `json:"end"`
}

// experimentJSON is an experiment as the API shows it.
type experimentJSON struct {
	ID        string             `json:"id"`
	Name      string             `json:"name,omitempty"`
	Products  []string           `json:"products"`
	Arms      []experiment.Arm   `json:"arms"`
	Split     experiment.Split   `json:"split"`
	Salt      string             `json:"salt"`
	Metric    experiment.Metric  `json:"metric"`
	Alpha     float64            `json:"alpha"`
	Start     time.Time          `json:"start"`
	End       *time.Time         `json:"end,omitempty"`
	Status    string             `json:"status"`
	CreatedAt time.Time          `json:"created_at"`
	CreatedBy string             `json:"created_by,omitempty"`
	StoppedAt *time.Time         `json:"stopped_at,omitempty"`
	StoppedBy string             `json:"stopped_by,omitempty"`
	Promoted  string             `json:"promoted,omitempty"`
	Readout   experiment.Readout `json:"readout"`
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func experimentOut(s engine.ExperimentState, now int64) experimentJSON {
	r := s.Record
	out := experimentJSON{ID: r.ID, Name: r.Name, Products: r.Products, Arms: r.Arms, Split: r.Split, Salt: r.Salt,
		Metric: r.Metric, Alpha: r.Alpha, Start: utc(r.Start), CreatedAt: utc(r.CreatedAt), CreatedBy: r.CreatedBy,
		StoppedBy: r.StoppedBy, Promoted: r.Promoted, Readout: s.Readout()}
	if r.End != 0 {
		e := utc(r.End)
		out.End = &e
	}
	if r.StoppedAt != 0 {
		e := utc(r.StoppedAt)
		out.StoppedAt = &e
	}
	switch {
	case r.StoppedAt != 0:
		out.Status = "stopped"
	case now < r.Start:
		out.Status = "scheduled"
	case r.End != 0 && now >= r.End:
		out.Status = "ended"
	default:
		out.Status = "running"
	}
	return out
}

// experimentID reads and checks the {id} path value.
func experimentID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !pricing.ValidID(id) {
		return "", errStatus(http.StatusBadRequest, "invalid experiment id "+strconv.Quote(id)+": must match [A-Za-z0-9_-]{1,64}")
	}
	return id, nil
}

func (a *API) postExperiment(w http.ResponseWriter, r *http.Request, k Key) error {
	var req experimentRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	// Experiment ids go into paths: the product id rules keep them safe
	// there.
	if !pricing.ValidID(req.ID) {
		return errStatus(http.StatusBadRequest, "id "+strconv.Quote(req.ID)+" must match [A-Za-z0-9_-]{1,64}")
	}
	d := experiment.Definition{ID: req.ID, Name: req.Name, Products: req.Products, Arms: req.Arms, Split: req.Split,
		Salt: req.Salt, Metric: req.Metric, Alpha: req.Alpha}
	if req.Start != nil {
		if req.Start.Year() < 2000 || req.Start.Year() > 2200 {
			return errStatus(http.StatusBadRequest, "start must be between the years 2000 and 2200")
		}
		d.Start = req.Start.UnixNano()
	}
	if req.End != nil {
		if req.End.Year() < 2000 || req.End.Year() > 2200 {
			return errStatus(http.StatusBadRequest, "end must be between the years 2000 and 2200")
		}
		d.End = req.End.UnixNano()
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	s, err := a.deps.Experiments.CreateExperiment(ctx, engine.ExperimentInput{Definition: d, By: k.Name})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/experiments/"+req.ID)
	return writeJSON(w, http.StatusCreated, experimentOut(s, time.Now().UnixNano()))
}

func (a *API) getExperiments(w http.ResponseWriter, r *http.Request, _ Key) error {
	ctx, cancel := a.timeout(r)
	defer cancel()
	es, err := a.deps.Experiments.Experiments(ctx, "")
	if err != nil {
		return err
	}
	now := time.Now().UnixNano()
	out := make([]experimentJSON, len(es))
	for i, s := range es {
		out[i] = experimentOut(s, now)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"experiments": out})
}

func (a *API) getExperiment(w http.ResponseWriter, r *http.Request, _ Key) error {
	id, err := experimentID(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	es, err := a.deps.Experiments.Experiments(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, experimentOut(es[0], time.Now().UnixNano()))
}

func (a *API) postExperimentStop(w http.ResponseWriter, r *http.Request, k Key) error {
	id, err := experimentID(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	s, err := a.deps.Experiments.StopExperiment(ctx, engine.ExperimentInput{ID: id, By: k.Name})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, experimentOut(s, time.Now().UnixNano()))
}

// promoteRequest is POST /experiments/{id}/promote's optional body.
type promoteRequest struct {
	// Arm names the arm to promote; empty: the readout's winner.
	Arm string `json:"arm"`
}

func (a *API) postExperimentPromote(w http.ResponseWriter, r *http.Request, k Key) error {
	id, err := experimentID(r)
	if err != nil {
		return err
	}
	var req promoteRequest
	if r.ContentLength != 0 {
		if err := a.decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	ctx, cancel := a.timeout(r)
	defer cancel()
	s, err := a.deps.Experiments.PromoteExperiment(ctx, engine.ExperimentInput{ID: id, Arm: req.Arm, By: k.Name})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, experimentOut(s, time.Now().UnixNano()))
}

// maxShopperLen bounds GET /price's shopper, as ingest bounds user_id.
const maxShopperLen = 128

// experimentPrice writes a shopper's price for a product in a running
// experiment: the product's price JSON with the arm's price in place of
// its own and the experiment and arm added. It reports false when the
// shopper is not in an experiment for the product, for the caller to
// answer as usual. It splices bytes rather than decoding and encoding the
// JSON again: GET /price is the hot path, and assignment must cost it
// little (docs/BENCHMARKS.md).
func (a *API) experimentPrice(w http.ResponseWriter, id, shopper string, live []byte) bool {
	if a.deps.Experiments == nil {
		return false
	}
	as, ok := a.deps.Experiments.Serving().Assign(id, shopper, time.Now().UnixNano())
	if !ok {
		return false
	}
	// The live JSON is live.Price.AppendJSON's: `{"product_id":…,
	// "price":N,…}`, the price a number up to the next comma.
	i := bytes.Index(live, priceKey)
	j := -1
	if i >= 0 {
		j = bytes.IndexByte(live[i+len(priceKey):], ',')
	}
	if j < 0 || len(live) == 0 || live[len(live)-1] != '}' {
		return false // not the shape expected: answer the product's price
	}
	j += i + len(priceKey)
	b := make([]byte, 0, len(live)+len(as.Fields)+16)
	if math.IsNaN(as.Price) {
		b = append(b, live[:len(live)-1]...)
	} else {
		b = append(b, live[:i+len(priceKey)]...)
		b = strconv.AppendFloat(b, pricing.RoundCents(as.Price), 'f', -1, 64)
		b = append(b, live[j:len(live)-1]...)
	}
	b = append(append(b, as.Fields...), '}')
	writeJSONBytes(w, http.StatusOK, b)
	return true
}

var priceKey = []byte(`,"price":`)

// queryValue is url.Values.Get of a raw query without building the map
// (GET /price is the hot path): the first value of key, unescaped, ""
// when absent or not unescapable.
func queryValue(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return ""
			}
			return u
		}
		return v
	}
	return ""
}
