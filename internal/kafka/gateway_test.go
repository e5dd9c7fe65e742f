package kafka

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// gwLog records what a Gateway writes; err makes every write fail, and
// applied, when set, stands in for the engine applying a control record.
type gwLog struct {
	events  [][]ingest.Event
	recs    []ControlRecord
	err     error
	applied func(ControlRecord)
}

func (l *gwLog) Events(_ context.Context, evs []ingest.Event) error {
	if l.err != nil {
		return l.err
	}
	l.events = append(l.events, evs)
	return nil
}

func (l *gwLog) Send(_ context.Context, r ControlRecord) error {
	if l.err != nil {
		return l.err
	}
	l.recs = append(l.recs, r)
	if l.applied != nil {
		l.applied(r)
	}
	return nil
}

// gwLive is a live view of product sources; err makes every read fail.
type gwLive struct {
	mu    sync.Mutex
	src   map[string]pricing.Source
	ver   map[string]uint64
	err   error
	reads int
}

func (l *gwLive) Lookup(_ context.Context, id string) (live.Price, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.err != nil {
		return live.Price{}, false, l.err
	}
	s, ok := l.src[id]
	return live.Price{ProductID: id, Source: s, Version: l.ver[id]}, ok, nil
}

// apply changes a product's live source, as the engine applying a control
// record does, with a new version.
func (l *gwLive) apply(id string, s pricing.Source) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ver == nil {
		l.ver = map[string]uint64{}
	}
	l.src[id] = s
	l.ver[id]++
}

// gwCatalog is a committed catalog; err makes every read fail.
type gwCatalog struct {
	products []pricing.Product
	states   map[string]pricing.State
	settings map[string]string
	err      error
}

func (c *gwCatalog) Products(context.Context) ([]pricing.Product, error) { return c.products, c.err }

func (c *gwCatalog) States(context.Context) (map[string]pricing.State, error) { return c.states, c.err }

func (c *gwCatalog) Settings(context.Context) (map[string]string, error) { return c.settings, c.err }

func (c *gwCatalog) Product(_ context.Context, id string) (pricing.Product, pricing.State, bool, error) {
	for _, p := range c.products {
		if p.ID == id {
			return p, c.states[id], true, c.err
		}
	}
	return pricing.Product{}, pricing.State{}, false, c.err
}

// gwNow is the gateway's clock in these tests.
var gwNow = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

type gwRig struct {
	log  *gwLog
	live *gwLive
	cat  *gwCatalog
	g    *Gateway
}

// newGateway returns a gateway whose live view knows PA (dynamic) and PO
// (under an override).
func newGateway(autoCreate bool) *gwRig {
	r := &gwRig{
		log:  &gwLog{},
		live: &gwLive{src: map[string]pricing.Source{"PA": pricing.SourceDynamic, "PO": pricing.SourceOverride}},
		cat:  &gwCatalog{},
	}
	r.g = NewGateway(r.log, r.live, r.cat, pricing.DefaultConfig(), autoCreate)
	r.g.now = func() time.Time { return gwNow }
	r.g.visible, r.g.poll = time.Second, time.Millisecond
	// The engine applies overrides at once, unless a test says otherwise.
	r.log.applied = func(rec ControlRecord) {
		switch rec.Kind {
		case ControlOverride:
			r.live.apply(rec.Key, pricing.SourceOverride)
		case ControlOverrideClear:
			r.live.apply(rec.Key, pricing.SourceDynamic)
		}
	}
	return r
}

// wantKind fails unless err is an *engine.Error of kind k whose message
// contains msg.
func wantKind(t *testing.T, what string, err error, k engine.Kind, msg string) {
	t.Helper()
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Kind != k || !strings.Contains(ee.Msg, msg) {
		t.Errorf("%s = %v (%T), want kind %d with %q", what, err, err, k, msg)
	}
}

func TestGatewaySetOverrideErrors(t *testing.T) {
	ctx := context.Background()
	ok := engine.OverrideInput{ProductID: "PA", Price: 12, Reason: "promo", By: "ops"}
	for _, c := range []struct {
		name string
		in   func(*engine.OverrideInput)
		rig  func(*gwRig)
		kind engine.Kind
		msg  string
	}{
		{"unknown product", func(in *engine.OverrideInput) { in.ProductID = "ZZ" }, nil, engine.KindNotFound, `unknown product_id "ZZ"`},
		{"zero price", func(in *engine.OverrideInput) { in.Price = 0 }, nil, engine.KindInvalid, "override_price must be a finite number > 0"},
		{"price below a cent", func(in *engine.OverrideInput) { in.Price = 0.001 }, nil, engine.KindInvalid, "override_price must be at least 0.01"},
		{"price beyond MaxPrice", func(in *engine.OverrideInput) { in.Price = 1e307 }, nil, engine.KindInvalid, "at most 1000000000"},
		{"long reason", func(in *engine.OverrideInput) { in.Reason = strings.Repeat("x", pricing.MaxOverrideReason+1) }, nil,
			engine.KindInvalid, "reason is longer than 500 bytes"},
		{"past expiry", func(in *engine.OverrideInput) { in.ExpiresAt = gwNow }, nil, engine.KindInvalid, "expires_at must be in the future"},
		{"live view down", nil, func(r *gwRig) { r.live.err = errors.New("connection refused") }, engine.KindUnavailable, "live price view is unavailable"},
		{"kafka down", nil, func(r *gwRig) { r.log.err = errors.New("broker unreachable") }, engine.KindUnavailable, "event log is unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newGateway(false)
			in := ok
			if c.in != nil {
				c.in(&in)
			}
			if c.rig != nil {
				c.rig(r)
			}
			wantKind(t, "SetOverride", r.g.SetOverride(ctx, in), c.kind, c.msg)
			if len(r.log.recs) != 0 {
				t.Errorf("records written: %+v", r.log.recs)
			}
		})
	}
	r := newGateway(false)
	if err := r.g.SetOverride(ctx, ok); err != nil || len(r.log.recs) != 1 || r.log.recs[0].Key != "PA" {
		t.Fatalf("valid SetOverride = %v, records %+v", err, r.log.recs)
	}
}

func TestGatewayClearOverrideErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		id   string
		rig  func(*gwRig)
		kind engine.Kind
		msg  string
	}{
		{"unknown product", "ZZ", nil, engine.KindNotFound, `unknown product_id "ZZ"`},
		{"no override", "PA", nil, engine.KindNotFound, `product "PA" has no override`},
		{"live view down", "PO", func(r *gwRig) { r.live.err = errors.New("timeout") }, engine.KindUnavailable, "live price view is unavailable"},
		{"kafka down", "PO", func(r *gwRig) { r.log.err = errors.New("broker unreachable") }, engine.KindUnavailable, "event log is unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newGateway(false)
			if c.rig != nil {
				c.rig(r)
			}
			wantKind(t, "ClearOverride", r.g.ClearOverride(ctx, c.id, "ops"), c.kind, c.msg)
			if len(r.log.recs) != 0 {
				t.Errorf("records written: %+v", r.log.recs)
			}
		})
	}
	r := newGateway(false)
	if err := r.g.ClearOverride(ctx, "PO", "ops"); err != nil || len(r.log.recs) != 1 || r.log.recs[0].Key != "PO" {
		t.Fatalf("valid ClearOverride = %v, records %+v", err, r.log.recs)
	}
}

func TestGatewaySubmit(t *testing.T) {
	ctx := context.Background()
	evs := []ingest.Event{
		{Type: pricing.View, ProductID: "PA"},
		{Type: pricing.View, ProductID: "ZZ"},
		{Type: pricing.Cart, ProductID: "PA"},
		{Type: pricing.View, ProductID: "ZZ"},
		{Type: pricing.Purchase, ProductID: "PO"},
	}
	r := newGateway(false)
	res, err := r.g.Submit(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || len(res.Rejects) != 2 || res.Rejects[0].Index != 1 || res.Rejects[1].Index != 3 ||
		res.Rejects[0].Error != `unknown product_id "ZZ" (not in the catalog)` {
		t.Errorf("Submit = %+v", res)
	}
	if len(r.log.events) != 1 || len(r.log.events[0]) != 3 {
		t.Errorf("events written: %+v", r.log.events)
	}
	if r.live.reads != 3 {
		t.Errorf("%d live reads, want one per product (3)", r.live.reads)
	}

	// With auto-create the live view is not asked: every event goes.
	r = newGateway(true)
	if res, err := r.g.Submit(ctx, evs); err != nil || res.Accepted != 5 || r.live.reads != 0 {
		t.Errorf("auto-create Submit = %+v, %v after %d live reads", res, err, r.live.reads)
	}

	r = newGateway(false)
	r.live.err = errors.New("timeout")
	_, err = r.g.Submit(ctx, evs)
	wantKind(t, "Submit with the live view down", err, engine.KindUnavailable, "live price view is unavailable")
	r = newGateway(false)
	r.log.err = errors.New("broker unreachable")
	_, err = r.g.Submit(ctx, evs)
	wantKind(t, "Submit with Kafka down", err, engine.KindUnavailable, "event log is unavailable")
}

func TestGatewayCatalogChanges(t *testing.T) {
	ctx := context.Background()
	r := newGateway(false)
	_, err := r.g.UpsertProduct(ctx, pricing.Product{ID: "PX", BasePrice: -1})
	wantKind(t, "UpsertProduct of a bad product", err, engine.KindInvalid, "base_price")
	_, err = r.g.UpsertProduct(ctx, pricing.Product{ID: "PX", BasePrice: 1, Strategy: "magic"})
	wantKind(t, "UpsertProduct with an unknown strategy", err, engine.KindInvalid, "unknown strategy")
	wantKind(t, "SetDefaultStrategy(magic)", r.g.SetDefaultStrategy(ctx, "magic"), engine.KindInvalid, "default_strategy")
	if len(r.log.recs) != 0 {
		t.Fatalf("records written for invalid changes: %+v", r.log.recs)
	}
	if created, err := r.g.UpsertProduct(ctx, pricing.Product{ID: "PX", BasePrice: 1}); err != nil || !created {
		t.Errorf("UpsertProduct(PX) = %v, %v; want created", created, err)
	}
	if created, err := r.g.UpsertProduct(ctx, pricing.Product{ID: "PA", BasePrice: 1}); err != nil || created {
		t.Errorf("UpsertProduct(PA) = %v, %v; want updated", created, err)
	}
	r.log.err = errors.New("broker unreachable")
	_, err = r.g.UpsertProduct(ctx, pricing.Product{ID: "PA", BasePrice: 1})
	wantKind(t, "UpsertProduct with Kafka down", err, engine.KindUnavailable, "event log is unavailable")
	wantKind(t, "SetDefaultStrategy with Kafka down", r.g.SetDefaultStrategy(ctx, "decay"), engine.KindUnavailable, "event log is unavailable")

	r.cat.err = errors.New("connection refused")
	_, err = r.g.Products(ctx)
	wantKind(t, "Products with PostgreSQL down", err, engine.KindUnavailable, "database is unavailable")
	_, err = r.g.Explain(ctx, "PA")
	wantKind(t, "Explain with PostgreSQL down", err, engine.KindUnavailable, "database is unavailable")
	r.cat.err = nil
	_, err = r.g.Explain(ctx, "ZZ")
	wantKind(t, "Explain(ZZ)", err, engine.KindNotFound, `unknown product_id "ZZ"`)
}

// TestGatewayRecordsApply checks that what the gateway writes is what an
// engine applies: each record goes through applyControl, as the processor
// passes it, into a real Machine.
func TestGatewayRecordsApply(t *testing.T) {
	ctx := context.Background()
	r := newGateway(false)
	now := gwNow.UnixNano()
	m := engine.NewMachine(engine.DefaultConfig())
	if _, err := m.Load(engine.Snapshot{}, now); err != nil {
		t.Fatal(err)
	}
	// apply applies and forgets what the gateway wrote so far.
	apply := func(what string) {
		t.Helper()
		for _, rec := range r.log.recs {
			if rec.AllPartitions == (rec.Key != "") {
				t.Fatalf("%s: record %s has key %q and AllPartitions %v", what, rec.Kind, rec.Key, rec.AllPartitions)
			}
			kr := rec.record(DefaultControlTopic, testSigner)
			if kind := header(&kr, HeaderControl); string(kind) != rec.Kind {
				t.Fatalf("%s: control header %q, want %q", what, kind, rec.Kind)
			}
			if err := testSigner.verify(rec.Kind, kr.Key, kr.Value, header(&kr, HeaderSignature)); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if err := applyControl(m, rec.Kind, kr.Value, now); err != nil {
				t.Fatalf("%s: applying %s %s: %v", what, rec.Kind, kr.Value, err)
			}
		}
		r.log.recs = nil
	}

	p := pricing.Product{ID: "PN", Name: "New", BasePrice: 20, Strategy: "decay",
		Guardrails: pricing.Guardrails{Floor: 10, Ceiling: 40, Rounding: ".99"}}
	if _, err := r.g.UpsertProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := r.g.SetDefaultStrategy(ctx, "decay"); err != nil {
		t.Fatal(err)
	}
	apply("catalog")
	ps := m.Products()
	if len(ps) != 1 || ps[0].Name != "New" || ps[0].Guardrails != p.Guardrails || ps[0].EffectiveStrategy != "decay" {
		t.Fatalf("machine catalog = %+v", ps)
	}
	b, _ := m.Seal()
	if b.Settings["default_strategy"] != "decay" {
		t.Errorf("default strategy not applied: settings %v", b.Settings)
	}

	// The gateway checks the live view; the machine now knows PN.
	r.live.src["PN"] = pricing.SourceBase
	m.Begin()
	expires := gwNow.Add(time.Hour).Round(0)
	in := engine.OverrideInput{ProductID: "PN", Price: 33.333, Reason: "launch, \"quoted\"", By: "ops", ExpiresAt: expires}
	if err := r.g.SetOverride(ctx, in); err != nil {
		t.Fatal(err)
	}
	apply("override")
	e, err := m.Explain("PN")
	if err != nil {
		t.Fatal(err)
	}
	o := e.Override
	if e.Source != pricing.SourceOverride.String() || e.Price != 33.33 || o == nil || o.Reason != in.Reason || o.By != "ops" ||
		o.ExpiresAt == nil || !o.ExpiresAt.Equal(expires) {
		t.Fatalf("after the override: %+v, override %+v", e, o)
	}

	r.live.src["PN"] = pricing.SourceOverride
	if err := r.g.ClearOverride(ctx, "PN", "boss"); err != nil {
		t.Fatal(err)
	}
	apply("clear")
	if e, _ := m.Explain("PN"); e.Override != nil || e.Source == pricing.SourceOverride.String() {
		t.Fatalf("after the clear: %+v", e)
	}
	b, _ = m.Seal()
	if len(b.Overrides) != 2 || b.Overrides[0].Set == nil || b.Overrides[0].Set.Price != 33.33 ||
		b.Overrides[1].End == nil || b.Overrides[1].End.By != "boss" || b.Overrides[1].End.Reason != "removed" {
		t.Errorf("batch overrides: %+v", b.Overrides)
	}
}

// TestProducerSend checks where Send puts control records: a keyed one on
// its product's partition, an AllPartitions one on every partition, each
// with its kind in the control header.
func TestProducerSend(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const partitions = 4
	topics := DefaultTopics()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	if _, err := kadm.NewClient(admCl).CreateTopic(ctx, partitions, 1, nil, topics.ControlTopic()); err != nil {
		t.Fatal(err)
	}
	pr, err := NewProducer(ClientConfig{Brokers: c.ListenAddrs(), Topics: topics, Signer: testSigner})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	rec, err := ProductRecord(pricing.Product{ID: "PA", BasePrice: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []ControlRecord{rec, DefaultStrategyRecord("decay")} {
		if err := pr.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics.ControlTopic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]int32{}
	for n := 0; n < 1+partitions; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			kind := string(header(r, HeaderControl))
			got[kind] = append(got[kind], r.Partition)
			if kind == ControlDefaultStrategy && (r.Key != nil || string(r.Value) != `{"default_strategy":"decay"}`) {
				t.Errorf("default-strategy record: key %q, value %s", r.Key, r.Value)
			}
			n++
		})
	}
	if p := got[ControlProduct]; len(p) != 1 || p[0] != PartitionOf("PA", partitions) {
		t.Errorf("product record on partitions %v, want [%d]", p, PartitionOf("PA", partitions))
	}
	ps := got[ControlDefaultStrategy]
	slices.Sort(ps)
	if !slices.Equal(ps, []int32{0, 1, 2, 3}) {
		t.Errorf("default-strategy record on partitions %v, want every one", ps)
	}
}

// TestGatewayWaitsUntilAnOverrideIsVisible: an operator's override is
// answered once the live view shows it, so the next read (GET /price, or a
// DELETE) sees it; when the engine takes longer than the wait, the answer
// says it is accepted but not yet applied.
func TestGatewayWaitsUntilAnOverrideIsVisible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newGateway(false)
		r.g.poll = 20 * time.Millisecond
		// The engine applies each control record 200ms after it is written.
		r.log.applied = func(rec ControlRecord) {
			src := map[string]pricing.Source{ControlOverride: pricing.SourceOverride, ControlOverrideClear: pricing.SourceDynamic}[rec.Kind]
			time.AfterFunc(200*time.Millisecond, func() { r.live.apply(rec.Key, src) })
		}
		start := time.Now()
		if err := r.g.SetOverride(ctx, engine.OverrideInput{ProductID: "PA", Price: 10, By: "ops"}); err != nil {
			t.Fatalf("SetOverride = %v", err)
		}
		if took := time.Since(start); took < 200*time.Millisecond {
			t.Fatalf("SetOverride answered after %v, before the engine applied it (200ms)", took)
		}
		if err := r.g.ClearOverride(ctx, "PA", "ops"); err != nil {
			t.Fatalf("ClearOverride right after SetOverride = %v, want it to see the override", err)
		}
		// An engine that does not apply it within the wait.
		r.log.applied = nil
		start = time.Now()
		if err := r.g.SetOverride(ctx, engine.OverrideInput{ProductID: "PA", Price: 11, By: "ops"}); !errors.Is(err, engine.ErrNotYetVisible) {
			t.Fatalf("SetOverride not applied in time = %v, want ErrNotYetVisible", err)
		}
		if took := time.Since(start); took != r.g.visible {
			t.Fatalf("waited %v, want the bound (%v)", took, r.g.visible)
		}
	})
}

// TestGatewayRelease: the gateway refuses to release what the committed
// state shows is unknown or not held, writes a signed release record that
// an engine applies, and waits until the engine committed it.
func TestGatewayRelease(t *testing.T) {
	ctx := context.Background()
	now := gwNow.UnixNano()
	cfg := engine.DefaultConfig()
	cfg.Pricing.Limits.MaxMovePct = 10
	m := engine.NewMachine(cfg)
	prods := []pricing.Product{{ID: "PH", BasePrice: 100}, {ID: "PA", BasePrice: 100}}
	if _, err := m.Load(engine.Snapshot{Products: prods}, now); err != nil {
		t.Fatal(err)
	}
	var res engine.SubmitResult
	m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: "PH", Quantity: 100}}, now, &res)
	commit := func(r *gwRig) {
		b, _ := m.Seal()
		for _, s := range b.States {
			r.cat.states[s.ID] = s.State
		}
	}
	newRig := func() *gwRig {
		r := newGateway(false)
		r.cat.products, r.cat.states = prods, map[string]pricing.State{}
		commit(r)
		return r
	}

	r := newRig()
	if r.cat.states["PH"].Brake.Held == 0 {
		t.Fatal("PH is not held: the test's purchase did not trip the breaker")
	}
	wantKind(t, "unknown product", r.g.Release(ctx, "ZZ", "ops"), engine.KindNotFound, `unknown product_id "ZZ"`)
	wantKind(t, "a product not held", r.g.Release(ctx, "PA", "ops"), engine.KindNotFound, `product "PA" is not held`)
	if len(r.log.recs) != 0 {
		t.Fatalf("refused releases wrote %d records", len(r.log.recs))
	}

	// The engine applies the record and commits: the gateway sees it.
	r.log.applied = func(rec ControlRecord) {
		kr := rec.record(DefaultControlTopic, testSigner)
		if rec.Kind != ControlRelease || string(kr.Key) != "PH" {
			t.Errorf("record %s key %q", rec.Kind, kr.Key)
		}
		if err := testSigner.verify(rec.Kind, kr.Key, kr.Value, header(&kr, HeaderSignature)); err != nil {
			t.Error(err)
		}
		if err := applyControl(m, rec.Kind, kr.Value, now+1); err != nil {
			t.Errorf("applying %s: %v", kr.Value, err)
		}
		commit(r)
	}
	if err := r.g.Release(ctx, "PH", "ops"); err != nil {
		t.Fatalf("release: %v", err)
	}
	if e, _ := m.Explain("PH"); e.Breaker != nil || e.Price != pricing.RoundCents(100+5*math.Sqrt(500)) {
		t.Fatalf("after the release: price %v breaker %+v", e.Price, e.Breaker)
	}
	// A release the engine finds already released (its window passed in
	// between) is no dead letter; one for a product it does not know is.
	if err := applyControl(m, ControlRelease, ReleaseRecord("PH", "ops").Value, now+2); err != nil {
		t.Errorf("a release of a product no longer held: %v", err)
	}
	if err := applyControl(m, ControlRelease, ReleaseRecord("ZZ", "ops").Value, now+2); err == nil {
		t.Error("a release of an unknown product was applied")
	}

	// An engine that does not commit in time: accepted, not yet visible.
	m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: "PA", Quantity: 100}}, now+3, &res)
	r = newRig()
	r.g.visible = 20 * time.Millisecond
	if err := r.g.Release(ctx, "PA", "ops"); !errors.Is(err, engine.ErrNotYetVisible) {
		t.Fatalf("release not applied in time = %v, want ErrNotYetVisible", err)
	}
	r.cat.err = errors.New("db down")
	wantKind(t, "database down", r.g.Release(ctx, "PA", "ops"), engine.KindUnavailable, "the database")
}
