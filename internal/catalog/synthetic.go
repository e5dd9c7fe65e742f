package catalog

import (
	"bufio"
	"fmt"
	"io"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// The synthetic catalog is the one large-catalog measurements share: the
// ingest benchmarks import it, `dynaprice loadgen --products N` sends
// events for it and `--write-catalog` writes it for `serve --catalog`.
// Product i has the id P followed by i in at least seven digits
// (P0000000, P0000001, ...), the name "product i" and the base price
// 5.99 + i mod 50. It is defined by these functions and never stored, so
// that a generator of a million products' events need not hold a million
// ids, and the ids a load generator sends are those serve imported.

// MaxSynthetic is the most products a synthetic catalog may have. It
// bounds the memory of the ones that are materialized (Synthetic, the
// zipf draw) and keeps a product's index arithmetic far from overflow.
const MaxSynthetic = 100_000_000

// AppendSyntheticID appends the id of product i (0 <= i) of the synthetic
// catalog to b: P%07d, without fmt, so that a generator can write ids
// into a request body without allocating.
func AppendSyntheticID(b []byte, i int) []byte {
	b = append(b, 'P')
	for d := 1_000_000; d > 1 && i < d; d /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(i), 10)
}

// SyntheticID is the id of product i of the synthetic catalog.
func SyntheticID(i int) string {
	var b [24]byte
	return string(AppendSyntheticID(b[:0], i))
}

// SyntheticBasePrice is the base price of product i of the synthetic
// catalog: 5.99 to 54.99, so that prices differ between products without
// any of them being near a guardrail.
func SyntheticBasePrice(i int) float64 {
	return float64(5+i%50) + 0.99
}

// checkSynthetic checks a synthetic catalog's size.
func checkSynthetic(n int) error {
	if n < 1 || n > MaxSynthetic {
		return fmt.Errorf("catalog: a synthetic catalog has 1 to %d products, not %d", MaxSynthetic, n)
	}
	return nil
}

// Synthetic is the synthetic catalog of n products, for callers that need
// it as products (a million take about 200 MB; WriteSynthetic streams it
// instead).
func Synthetic(n int) (File, error) {
	if err := checkSynthetic(n); err != nil {
		return File{}, err
	}
	f := File{Products: make([]pricing.Product, n)}
	for i := range f.Products {
		f.Products[i] = pricing.Product{ID: SyntheticID(i), Name: "product " + strconv.Itoa(i), BasePrice: SyntheticBasePrice(i)}
	}
	return f, nil
}

// WriteSynthetic writes the synthetic catalog of n products to w as a
// catalog file, one product at a time: a million products are 64 MB of
// JSON, which need not be in memory at once.
func WriteSynthetic(w io.Writer, n int) error {
	if err := checkSynthetic(n); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	b := make([]byte, 0, 128)
	bw.WriteString(`{"products":[`)
	for i := range n {
		b = b[:0]
		if i > 0 {
			b = append(b, ",\n"...)
		}
		b = append(b, `{"product_id":"`...)
		b = AppendSyntheticID(b, i)
		b = append(b, `","name":"product `...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","base_price":`...)
		b = strconv.AppendFloat(b, SyntheticBasePrice(i), 'f', -1, 64)
		b = append(b, '}')
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("catalog: writing: %w", err)
		}
	}
	bw.WriteString("]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("catalog: writing: %w", err)
	}
	return nil
}
