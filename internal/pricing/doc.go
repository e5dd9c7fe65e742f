// Package pricing is dynaprice's pricing core: the demand model, the
// strategies that turn demand into a price, the guardrails applied after
// them, operator overrides, the 30-day lowest price and the explanation of
// every price.
//
// It does no I/O and reads no clock: callers pass the time in. That keeps it
// deterministic (tests, simulation, replay) and fast: applying an event to a
// Book allocates nothing. A Book is not safe for concurrent use; the engine
// owns one and serialises access to it.
package pricing
