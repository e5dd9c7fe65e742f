package pricing

import (
	"slices"
	"testing"
)

func TestCheckCurrency(t *testing.T) {
	if !slices.IsSorted(currencies[:]) {
		t.Fatal("the currency list is not sorted: CheckCurrency's search would miss codes")
	}
	for _, c := range []string{"EUR", "USD", "GBP", "JPY", "CHF", "AED", "ZWG", DefaultCurrency} {
		if err := CheckCurrency(c); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	for _, c := range []string{"", "eur", "EURO", "XXX", "XAU", "€", "US"} {
		if CheckCurrency(c) == nil {
			t.Errorf("%q was accepted", c)
		}
	}
}
