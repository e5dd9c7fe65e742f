// Command barehttp is the baseline for the GET /price benchmark: a bare
// net/http server answering every request with the same bytes that
// `dynaprice serve` returns for GET /price/PA, from memory. docs/BENCHMARKS.md
// compares dynaprice against it with wrk.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	body := flag.String("body", `{"product_id":"PA","price":299,"demand":0,"price_source":"base","lowest_30d":299,"version":1,"updated_at":"2026-11-25T15:00:00.123456789Z"}`, "response body")
	flag.Parse()
	b := []byte(*body)
	n := strconv.Itoa(len(b))
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{n}
		_, _ = w.Write(b)
	})))
}
