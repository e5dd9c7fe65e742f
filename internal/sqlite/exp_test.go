package sqlite

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func BenchmarkExp(b *testing.B) {
	tun := defaultTuning()
	env := func(k string, p *int) {
		if v := os.Getenv(k); v != "" {
			n, _ := strconv.Atoi(v)
			*p = n
		}
	}
	env("PS", &tun.pageSize)
	env("CACHE", &tun.writeCacheKiB)
	env("WAC", &tun.walAutocheckpoint)
	env("HR", &tun.historyRows)
	env("SR", &tun.seenRows)
	prefill := 0
	env("PREFILL", &prefill)
	for _, sync := range strings.Split(os.Getenv("SYNC"), ",") {
		b.Run("sync="+sync, func(b *testing.B) { benchmarkCommit(b, sync, tun, prefill) })
	}
}
