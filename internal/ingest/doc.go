// Package ingest decodes and validates shopper events where they enter
// dynaprice: the body of POST /events.
//
// Events keep the JSON shape of the system dynaprice replaces,
//
//	{"event_type":"view","product_id":"PA","user_id":"U1","timestamp":1773713139123,"price":299}
//
// with optional "event_id" and "quantity"; unknown fields are ignored. A
// body holds one object, an array of them, or NDJSON. Each event is checked
// on its own: a bad one becomes a Reject naming its position and the field
// at fault, and the others still go through.
//
// # Why a hand-written decoder
//
// This is the hot path of the service, which has to take 200,000 events/s
// end to end on two cores, so decoding gets a small fraction of a core.
// encoding/json spends most of that on reflection and allocates every string
// it decodes, including fields we only validate (user_id) or throw away
// (unknown ones). The shape here is fixed and small, so a scanner written
// for it (scan.go) walks the body once, keeps undecoded sub-slices of the
// body for the fields it knows, and decodes only what it keeps: the event
// id, and the product id, which is interned because the same few ids
// repeat. A typical event costs no allocation, or one when it carries an
// event id.
//
// The price of doing it by hand is the risk of disagreeing with JSON. The
// scanner follows encoding/json wherever they overlap: the same grammar,
// nesting limit and string decoding (invalid UTF-8 and lone surrogates
// become U+FFFD), the last of duplicate keys wins, null counts as absent.
// FuzzDecode holds it to that by comparing every object that encoding/json
// accepts with a slow reference built on encoding/json.
package ingest
