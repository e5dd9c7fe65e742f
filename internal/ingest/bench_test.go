package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// benchBody is n events shaped like the old system's producer output (ten
// products, five users, millisecond times, catalog prices), optionally
// with an event id and quantity, as a JSON array or NDJSON.
func benchBody(n int, withID, ndjson bool) []byte {
	products := []string{"PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ"}
	prices := []float64{299, 349, 129, 499, 219, 179, 649, 269, 399, 159}
	types := []string{"view", "view", "view", "cart", "purchase"}
	var b bytes.Buffer
	if !ndjson {
		b.WriteByte('[')
	}
	for i := range n {
		if i > 0 && !ndjson {
			b.WriteByte(',')
		}
		p := (i * 7) % len(products)
		b.WriteByte('{')
		if withID {
			fmt.Fprintf(&b, `"event_id":"evt-%08d",`, i)
		}
		fmt.Fprintf(&b, `"event_type":%q,"product_id":%q,"user_id":"U%d","timestamp":%d,"price":%g`,
			types[i%len(types)], products[p], i%5, 1773713139000-int64(n-i)*3, prices[p])
		if withID {
			fmt.Fprintf(&b, `,"quantity":%d`, 1+i%3)
		}
		b.WriteByte('}')
		if ndjson {
			b.WriteByte('\n')
		}
	}
	if !ndjson {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// BenchmarkDecode decodes bodies of 10,000 events. Run with
//
//	go test -run=NONE -bench=Decode -benchmem ./internal/ingest/
func BenchmarkDecode(b *testing.B) {
	const n = 10000
	for _, bc := range []struct {
		name           string
		withID, ndjson bool
		contentType    string
	}{
		{"array", false, false, ""},
		{"ndjson", false, true, "application/x-ndjson"},
		{"ndjson-detected", false, true, ""},
		{"array-event-id", true, false, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := benchBody(n, bc.withID, bc.ndjson)
			d := testDecoder()
			dst := make([]Event, 0, n)
			idx := make([]int, 0, n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				dst, idx, _, err = d.Decode(body, bc.contentType, dst[:0], idx[:0])
				if err != nil || len(dst) != n {
					b.Fatalf("%d events, %v", len(dst), err)
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/event")
		})
	}
}

// BenchmarkEncodingJSON is the baseline the package doc argues from:
// encoding/json decoding the same array into structs, validating nothing.
func BenchmarkEncodingJSON(b *testing.B) {
	const n = 10000
	body := benchBody(n, false, false)
	type wire struct {
		EventID   string  `json:"event_id"`
		EventType string  `json:"event_type"`
		ProductID string  `json:"product_id"`
		UserID    string  `json:"user_id"`
		Timestamp float64 `json:"timestamp"`
		Price     float64 `json:"price"`
		Quantity  int32   `json:"quantity"`
	}
	dst := make([]wire, 0, n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst = dst[:0]
		if err := json.Unmarshal(body, &dst); err != nil || len(dst) != n {
			b.Fatalf("%d events, %v", len(dst), err)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
}
