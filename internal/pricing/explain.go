package pricing

import "time"

// Explanation says how a product's price came about. It is built on demand
// from the State's Trace, so the hot path never formats anything.
type Explanation struct {
	ProductID     string          `json:"product_id"`
	Price         float64         `json:"price"`
	Source        string          `json:"price_source"`
	Strategy      string          `json:"strategy"`
	BasePrice     float64         `json:"base_price"`
	Demand        float64         `json:"demand"`
	TotalDemand   float64         `json:"total_demand"`
	StrategyPrice float64         `json:"strategy_price"`
	DynamicPrice  float64         `json:"dynamic_price"`
	Guardrails    []GuardrailStep `json:"guardrails"`
	Override      *OverrideInfo   `json:"override,omitempty"`
	// Breaker is the price-velocity breaker, when it holds the price.
	Breaker *BreakerInfo `json:"breaker,omitempty"`
	// Learning is what a learning strategy knows, per price it tries.
	Learning []RungInfo `json:"learning,omitempty"`
	// Learner is what bounds a learning strategy's price (the product's
	// effective learning policy) and whether its purchase signal holds.
	Learner *LearnerInfo `json:"learner,omitempty"`
	// Market is the stock and competitor prices the engine knows of.
	Market    *MarketInfo `json:"market,omitempty"`
	Lowest30  float64     `json:"lowest_30d"`
	Version   uint64      `json:"version"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// RungInfo is one price a learning strategy tries and what it learned.
type RungInfo struct {
	Price float64 `json:"price"`
	Views float64 `json:"views"`
	Buys  float64 `json:"purchases"`
	// Shown marks the rung shown now.
	Shown bool `json:"shown"`
	// InBand marks the rungs inside the product's price band, the only
	// ones learning may show.
	InBand bool `json:"in_band"`
}

// LearnerInfo explains the learning policy a product is priced under and
// where it stands (see LearnPolicy).
type LearnerInfo struct {
	// The price band, as multiples of the base price and as prices.
	BandLow       float64 `json:"band_low"`
	BandHigh      float64 `json:"band_high"`
	BandLowPrice  float64 `json:"band_low_price"`
	BandHighPrice float64 `json:"band_high_price"`
	// Objective is what is maximised per view: "revenue", or "margin"
	// (revenue while the product has no unit_cost).
	Objective string `json:"objective"`
	// HalfLife is how fast what was learned is forgotten (event time).
	HalfLife string `json:"half_life"`
	// MaxChangesPerHour caps the price changes learning makes;
	// NextChangeAt is the earliest event time of the next one.
	MaxChangesPerHour int        `json:"max_changes_per_hour"`
	NextChangeAt      *time.Time `json:"next_change_at,omitempty"`
	// Fallback is set while the product shows its list price because its
	// purchases stopped: ViewsWithoutPurchase views (while in stock) since
	// the last purchase, where ExpectedPurchases were expected at the
	// learned ConversionRate, a drought as likely as NoPurchaseChance
	// (fallback below 0.001).
	Fallback             bool    `json:"fallback"`
	ViewsWithoutPurchase float64 `json:"views_without_purchase"`
	ConversionRate       float64 `json:"conversion_rate"`
	ExpectedPurchases    float64 `json:"expected_purchases"`
	NoPurchaseChance     float64 `json:"no_purchase_chance"`
	Detail               string  `json:"detail"`
}

// MarketInfo explains the market signals a price was set on.
type MarketInfo struct {
	// Stock on hand, when known.
	Stock *float64 `json:"stock,omitempty"`
	// Selling is the product's selling period, when its plan applies.
	Selling *SellingInfo `json:"selling,omitempty"`
	// Competitors are the latest competitor prices; Reference is the one
	// the competitor strategy positions against (the lowest fresh one).
	Competitors []QuoteInfo `json:"competitors,omitempty"`
	Reference   *QuoteInfo  `json:"reference,omitempty"`
}

// SellingInfo is where a product stands against its selling plan.
type SellingInfo struct {
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Opening     float64   `json:"opening_stock"`
	Keep        float64   `json:"keep"`
	ToSell      float64   `json:"to_sell"`
	OnPlan      float64   `json:"to_sell_on_plan"`
	// ViewsPerHour is the product's traffic since its stock is known.
	ViewsPerHour float64 `json:"views_per_hour"`
	// Multiplier is what the inventory strategy applies to the base
	// price (1 for other strategies).
	Multiplier float64 `json:"multiplier"`
}

// QuoteInfo is one competitor's price.
type QuoteInfo struct {
	Competitor string    `json:"competitor"`
	Price      float64   `json:"price"`
	At         time.Time `json:"at"`
}

// GuardrailStep is one guardrail that changed the price.
type GuardrailStep struct {
	Guardrail string  `json:"guardrail"`
	Before    float64 `json:"before"`
	After     float64 `json:"after"`
	Detail    string  `json:"detail"`
}

// BreakerInfo explains a price held by the price-velocity breaker: the
// strategy wants Wanted, more than MaxMovePct away from Anchor (the price
// at WindowStart), so Price stays until an operator releases it
// (POST /release/{id}) or ReleaseAt passes.
type BreakerInfo struct {
	Held        bool      `json:"held"`
	HeldSince   time.Time `json:"held_since"`
	Wanted      float64   `json:"wanted_price"`
	Anchor      float64   `json:"anchor_price"`
	WindowStart time.Time `json:"window_start"`
	ReleaseAt   time.Time `json:"release_at"`
	MaxMovePct  float64   `json:"max_move_pct"`
	Window      string    `json:"move_window"`
	Detail      string    `json:"detail"`
}

// OverrideInfo describes the active override.
type OverrideInfo struct {
	Price     float64    `json:"override_price"`
	Reason    string     `json:"reason"`
	By        string     `json:"set_by"`
	Since     time.Time  `json:"since"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Explain describes product i's current price.
func (b *Book) Explain(i int) Explanation {
	p, s, g := b.products[i], &b.states[i], b.products[i].Guardrails
	t := s.Trace
	e := Explanation{
		ProductID: p.ID, Price: s.Price, Source: s.Source.String(), Strategy: b.strat[i].Name(),
		BasePrice: p.BasePrice, Demand: s.DynDemand, TotalDemand: s.Demand.Total,
		StrategyPrice: t.Raw, DynamicPrice: t.Final, Guardrails: []GuardrailStep{},
		Lowest30: s.Lowest30, Version: s.Version, UpdatedAt: time.Unix(0, s.ChangedAt).UTC(),
	}
	if t.Applied&GuardMaxChange != 0 {
		e.Guardrails = append(e.Guardrails, GuardrailStep{"max_change", t.Raw, t.Limited,
			"a single update may move the price at most " + ftoa(g.MaxChangePct) + "% from " + ftoa(t.Reference)})
	}
	if t.Applied&GuardFloor != 0 {
		e.Guardrails = append(e.Guardrails, GuardrailStep{"floor", t.Limited, t.Bounded, "never below " + ftoa(g.Floor)})
	}
	if t.Applied&GuardMargin != 0 {
		before := t.Limited
		if t.Applied&GuardFloor != 0 {
			before = g.Floor
		}
		e.Guardrails = append(e.Guardrails, GuardrailStep{"margin_floor", before, t.Bounded,
			"never below unit cost " + ftoa(p.UnitCost) + " plus " + ftoa(g.MinMarginPct) + "% margin"})
	}
	if t.Applied&GuardCeiling != 0 {
		e.Guardrails = append(e.Guardrails, GuardrailStep{"ceiling", t.Limited, t.Bounded, "never above " + ftoa(g.Ceiling)})
	}
	if t.Applied&GuardRounding != 0 {
		rule := g.Rounding
		if rule == "" {
			rule = "cents"
		}
		e.Guardrails = append(e.Guardrails, GuardrailStep{"rounding", t.Bounded, t.Final, "rounded to " + rule})
	}
	if th, ok := b.strat[i].(Thompson); ok && s.Learn != nil && len(s.Learn.Views) == len(th.Ladder) {
		r := &b.guards[i].learn
		for k, m := range th.Ladder {
			e.Learning = append(e.Learning, RungInfo{Price: RoundCents(p.BasePrice * m), Views: Round(s.Learn.Views[k], DemandDecimals),
				Buys: Round(s.Learn.Buys[k], DemandDecimals), Shown: k == s.Learn.Arm, InBand: r.inBand(m)})
		}
		e.Learner = explainLearner(p, s.Learn, r)
	}
	if m := s.Market; m != nil {
		e.Market = b.explainMarket(i, m)
	}
	if br := s.Brake; br.Held != 0 && !s.Override.Active {
		gr := b.guards[i]
		w := time.Duration(gr.window)
		e.Breaker = &BreakerInfo{Held: true, HeldSince: time.Unix(0, br.Held).UTC(), Wanted: br.Wanted, Anchor: br.Anchor,
			WindowStart: time.Unix(0, br.Since).UTC(), ReleaseAt: time.Unix(0, br.Since+gr.window).UTC(),
			MaxMovePct: gr.movePct, Window: w.String(),
			Detail: "held at " + ftoa(s.Price) + ": the strategy's " + ftoa(br.Wanted) + " is more than " + ftoa(gr.movePct) +
				"% away from " + ftoa(br.Anchor) + ", the price when the " + w.String() + " window started"}
	}
	if o := s.Override; o.Active {
		e.Override = &OverrideInfo{Price: o.Price, Reason: o.Reason, By: o.By, Since: time.Unix(0, o.Since).UTC()}
		if o.Expires > 0 {
			x := time.Unix(0, o.Expires).UTC()
			e.Override.ExpiresAt = &x
		}
	}
	return e
}

func (b *Book) explainMarket(i int, m *Signals) *MarketInfo {
	s := &b.states[i]
	now := s.ChangedAt
	info := &MarketInfo{}
	if m.StockKnown {
		st := m.Stock
		info.Stock = &st
	}
	if sell := b.selling(i, now); sell.Active {
		mult := 1.0
		if inv, ok := b.strat[i].(Inventory); ok {
			mult = inv.Multiplier(sell, now)
		}
		info.Selling = &SellingInfo{PeriodStart: time.Unix(0, sell.Start).UTC(), PeriodEnd: time.Unix(0, sell.End).UTC(),
			Opening: sell.Opening, Keep: sell.Keep, ToSell: sell.ToSell(), OnPlan: sell.OnPlan(now), ViewsPerHour: RoundCents(sell.ViewRate * float64(time.Hour)),
			Multiplier: mult}
	}
	for _, q := range m.Quotes {
		info.Competitors = append(info.Competitors, quoteInfo(q))
	}
	maxAge := DefaultCompetitor().MaxAge
	if c, ok := b.strat[i].(Competitor); ok {
		maxAge = c.MaxAge
	}
	if q, ok := m.reference(now, maxAge); ok {
		r := quoteInfo(q)
		info.Reference = &r
	}
	return info
}

func quoteInfo(q Quote) QuoteInfo {
	return QuoteInfo{Competitor: q.Competitor, Price: q.Price, At: time.Unix(0, q.At).UTC()}
}

func explainLearner(p Product, l *Learning, r *learnRules) *LearnerInfo {
	info := &LearnerInfo{BandLow: r.lo, BandHigh: r.hi, BandLowPrice: RoundCents(p.BasePrice * r.lo),
		BandHighPrice: RoundCents(p.BasePrice * r.hi), Objective: ObjectiveRevenue,
		HalfLife: time.Duration(r.halfLife).String(), MaxChangesPerHour: int(int64(time.Hour) / r.gap),
		Fallback: l.Fallback(), ViewsWithoutPurchase: l.Dry, ConversionRate: Round(l.rate(), 6),
		ExpectedPurchases: Round(l.Dry*l.rate(), DemandDecimals), NoPurchaseChance: Round(l.NoPurchaseChance(), 6)}
	if r.margin && p.UnitCost > 0 {
		info.Objective = ObjectiveMargin
	}
	if l.Moved != 0 {
		t := time.Unix(0, l.Moved+r.gap).UTC()
		info.NextChangeAt = &t
	}
	band := "learning shows prices from " + ftoa(info.BandLowPrice) + " to " + ftoa(info.BandHighPrice) +
		" (" + ftoa(r.lo) + "× to " + ftoa(r.hi) + "× the base price), maximising " + info.Objective + " per view"
	if info.Fallback {
		info.Detail = "fallen back to the base price: no purchase in " + ftoa(l.Dry) + " views, where " +
			ftoa(info.ExpectedPurchases) + " were expected at the learned conversion of " + ftoa(info.ConversionRate) +
			" (a chance of " + ftoa(info.NoPurchaseChance) + "); check that purchase events arrive. Learning resumes with the next purchase; " + band
		return info
	}
	info.Detail = band
	return info
}
