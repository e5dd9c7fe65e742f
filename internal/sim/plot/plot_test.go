package plot

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestSVGIsWellFormedWithOnePathPerSeries(t *testing.T) {
	c := Chart{Title: "Revenue <cumulative>", XLabel: "hours", YLabel: "revenue",
		Series: []Series{{Name: "static", X: []float64{0, 1, 2}, Y: []float64{0, 10, 20}}, {Name: "thompson & co", X: []float64{0, 1, 2}, Y: []float64{0, 12, 30}}, {Name: "flat", X: []float64{0, 2}, Y: []float64{5, 5}}}}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	paths := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			paths++
		}
	}
	if paths != 3 {
		t.Errorf("%d paths, want 3", paths)
	}
	var again bytes.Buffer
	_ = c.WriteSVG(&again)
	for _, want := range []string{"Revenue &lt;cumulative&gt;", "thompson &amp; co", "M80.0 "} {
		if !strings.Contains(again.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestTicksAreRoundAndCoverTheRange(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		step   float64
	}{{0, 1234, 500}, {0, 1000, 200}, {3.2, 3.9, 0.2}, {-50, 50, 20}} {
		ts := ticks(c.lo, c.hi, 6)
		if len(ts) < 3 || len(ts) > 8 || ts[0] < c.lo || ts[len(ts)-1] > c.hi || ts[0]-c.lo >= c.step+1e-9 {
			t.Errorf("ticks(%v, %v) = %v", c.lo, c.hi, ts)
		}
		for k := 1; k < len(ts); k++ {
			if d := ts[k] - ts[k-1]; d < c.step*0.999 || d > c.step*1.001 {
				t.Errorf("ticks(%v, %v) = %v, want steps of %v", c.lo, c.hi, ts, c.step)
				break
			}
		}
	}
	if label(1.5e6) != "1.5M" || label(25000) != "25k" || label(0.25) != "0.25" {
		t.Error("labels")
	}
}
