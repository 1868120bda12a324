package sim

import (
	"fmt"
	"io"
	"strings"
)

// WriteSVG draws two panels over time: origin egress (P2P on vs CDN only)
// and rare-chunk scarcity (fewest copies of any chunk, chunks with at most
// one copy).
func (r *Report) WriteSVG(w io.Writer) error {
	const W, H, pad, panel = 800, 520, 60, 200
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="15">%s — %s</text>`+"\n", pad, esc(r.Scenario.Name), esc(r.Scenario.Kind))

	tmax := 0.0
	for _, x := range []*Result{r.On, r.Off} {
		if x != nil && len(x.Series) > 0 {
			tmax = max(tmax, x.Series[len(x.Series)-1].T.Seconds())
		}
	}
	tmax = max(tmax, 1)

	type line struct {
		name, color string
		pts         [][2]float64
	}
	plot := func(top int, title, unit string, lines []line) {
		ymax := 0.0
		for _, l := range lines {
			for _, p := range l.pts {
				ymax = max(ymax, p[1])
			}
		}
		ymax = max(ymax*1.1, 1)
		x0, x1, y0, y1 := float64(pad), float64(W-pad), float64(top+panel), float64(top)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", pad, top-8, esc(title))
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#888"/>`+"\n", x0, y1, x1-x0, y0-y1)
		for k := 0; k <= 4; k++ {
			y := y0 - float64(k)/4*(y0-y1)
			fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%.4g</text>`+"\n", x0-4, y+4, ymax*float64(k)/4)
			x := x0 + float64(k)/4*(x1-x0)
			fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%.0fs</text>`+"\n", x, y0+16, tmax*float64(k)/4)
		}
		fmt.Fprintf(&b, `<text x="%g" y="%g" transform="rotate(-90 %g %g)" text-anchor="middle">%s</text>`+"\n", x0-45, (y0+y1)/2, x0-45, (y0+y1)/2, esc(unit))
		for k, l := range lines {
			var pts []string
			for _, p := range l.pts {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x0+p[0]/tmax*(x1-x0), y0-p[1]/ymax*(y0-y1)))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", l.color, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%g" y="%g" fill="%s">%s</text>`+"\n", x1-150, y1+16+float64(k)*15, l.color, esc(l.name))
		}
	}
	series := func(x *Result, f func(Sample) float64) [][2]float64 {
		var out [][2]float64
		for _, s := range x.Series {
			out = append(out, [2]float64{s.T.Seconds(), f(s)})
		}
		return out
	}
	egress := []line{{"P2P on", "#1f77b4", series(r.On, func(s Sample) float64 { return s.OriginMbps })}}
	if r.Off != nil {
		egress = append(egress, line{"CDN only", "#d62728", series(r.Off, func(s Sample) float64 { return s.OriginMbps })})
	}
	plot(60, fmt.Sprintf("origin egress (offload %.1f%%)", 100*r.On.Offload()), "Mbit/s", egress)
	plot(300, "rare-chunk scarcity (P2P on)", "chunks / copies", []line{
		{"min copies", "#2ca02c", series(r.On, func(s Sample) float64 { return float64(s.MinCopies) })},
		{"chunks with ≤1 copy", "#9467bd", series(r.On, func(s Sample) float64 { return float64(s.Rare) })},
	})
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
