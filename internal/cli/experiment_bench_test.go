package cli

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkIngestHTTPExperiment is BenchmarkIngestHTTP without event ids,
// with and without a running experiment over the ten products the events
// name (three arms, split by the events' user_id): what counting each
// event in its arm costs ingest end to end (docs/BENCHMARKS.md, goal ≤
// 10%).
func BenchmarkIngestHTTPExperiment(b *testing.B) {
	for _, withExp := range []bool{false, true} {
		b.Run(fmt.Sprintf("experiment=%v", withExp), func(b *testing.B) {
			o := testOptions(b.TempDir())
			o.Sync = syncMode()
			benchLimits(&o)
			s := startServer(b, o)
			if withExp {
				code, m := s.do("POST", "/experiments", adminKey, "", `{"id":"bench","split":"shopper",
					"products":["PA","PB","PC","PD","PE","PF","PG","PH","PI","PJ"],
					"arms":[{"name":"list","kind":"control"},{"name":"lower","kind":"fixed","price":279},{"name":"engine","kind":"live"}]}`)
				if code != 201 {
					b.Fatalf("POST /experiments = %d %v", code, m)
				}
			}
			const perBatch = 5000
			var sb bytes.Buffer
			sb.WriteByte('[')
			for i := 0; i < perBatch; i++ {
				if i > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"event_type":"%s","product_id":"P%c","user_id":"U%d","timestamp":1773713139,"price":299}`,
					[...]string{"view", "cart", "purchase"}[i%3], 'A'+i%10, i)
			}
			sb.WriteByte(']')
			body := sb.Bytes()
			postAll(b, s.url, 8, b.N, func(int) []byte { return body })
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
