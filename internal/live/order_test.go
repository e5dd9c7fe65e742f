package live

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCatalogOrder(t *testing.T) {
	catalog := []string{"PA", "PB", "PC"}
	var loads int
	var fail bool
	now := time.Unix(1_800_000_000, 0)
	o := NewCatalogOrder(func(context.Context) ([]string, error) {
		loads++
		if fail {
			return nil, errors.New("db down")
		}
		return slices.Clone(catalog), nil
	}, time.Second)
	o.now = func() time.Time { return now }
	ctx := context.Background()
	sorted := func(ids ...string) []string {
		o.Sort(ctx, ids)
		return ids
	}

	if got := sorted("PC", "PA", "PB"); !slices.Equal(got, []string{"PA", "PB", "PC"}) || loads != 1 {
		t.Fatalf("sorted %v after %d loads", got, loads)
	}
	if sorted("PB", "PA"); loads != 1 {
		t.Fatalf("known ids loaded again (%d loads)", loads)
	}
	// A product the last load did not hold: listed last until the next
	// load, which waits for the interval.
	catalog = []string{"PA", "PN", "PB", "PC"}
	if got := sorted("PN", "PC", "PA"); !slices.Equal(got, []string{"PA", "PC", "PN"}) || loads != 1 {
		t.Fatalf("within the interval: %v after %d loads", got, loads)
	}
	now = now.Add(time.Second)
	if got := sorted("PN", "PC", "PA", "PB"); !slices.Equal(got, []string{"PA", "PN", "PB", "PC"}) || loads != 2 {
		t.Fatalf("after the interval: %v after %d loads", got, loads)
	}
	// A failed load keeps the order known.
	fail, now = true, now.Add(time.Second)
	if got := sorted("PZ", "PC", "PA"); !slices.Equal(got, []string{"PA", "PC", "PZ"}) || loads != 3 {
		t.Fatalf("failed load: %v after %d loads", got, loads)
	}
}
