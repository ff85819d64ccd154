package bench

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// point is one steady run: its call rate and its latencies.
type point struct {
	rate float64
	lat  Percentiles
}

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// One colour per percentile line.
	series = []struct {
		name string
		c    color.RGBA
		v    func(Percentiles) float64
	}{
		{"p50", color.RGBA{31, 119, 180, 255}, func(p Percentiles) float64 { return p.P50 }},
		{"p95", color.RGBA{44, 160, 44, 255}, func(p Percentiles) float64 { return p.P95 }},
		{"p99", color.RGBA{214, 39, 40, 255}, func(p Percentiles) float64 { return p.P99 }},
		{"max", color.RGBA{150, 150, 150, 255}, func(p Percentiles) float64 { return p.Max }},
	}
)

// plotLatency draws latency percentiles (ms) against call rate as a PNG.
func plotLatency(path, title string, pts []point) error {
	slices.SortFunc(pts, func(a, b point) int { return int(a.rate - b.rate) })
	const W, H = 800, 500
	const left, right, top, bottom = 80, 30, 50, 60
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Bounds(), white)

	xmax, ymin, ymax := 0.0, math.Inf(1), 0.0
	for _, p := range pts {
		xmax = max(xmax, p.rate)
		ymax = max(ymax, p.lat.Max)
		if p.lat.P50 > 0 {
			ymin = min(ymin, p.lat.P50)
		}
	}
	if xmax == 0 {
		xmax = 1
	}
	// Latencies span decades once a rate saturates: a log scale keeps
	// the unsaturated rates readable. Ticks at 1, 2, 5 × 10^n.
	lo := math.Pow(10, math.Floor(math.Log10(min(ymin, max(ymax, 0.1)))))
	hi := math.Pow(10, math.Ceil(math.Log10(max(ymax, lo*10))))
	px := func(x float64) int { return left + int(x/xmax*float64(W-left-right)) }
	py := func(y float64) int {
		y = max(y, lo)
		return H - bottom - int(math.Log10(y/lo)/math.Log10(hi/lo)*float64(H-top-bottom))
	}

	// Grid and y ticks.
	for dec := lo; dec <= hi*1.001; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			y := dec * m
			if y > hi*1.001 {
				break
			}
			c := grid
			if m != 1 {
				c = color.RGBA{242, 242, 242, 255}
			}
			line(img, left, py(y), W-right, py(y), c, 1)
			label := strconv.FormatFloat(y, 'f', decimals(y), 64)
			text(img, left-8-textWidth(label), py(y)-5, label, black)
		}
	}
	// x ticks at each measured rate.
	for _, p := range pts {
		line(img, px(p.rate), H-bottom, px(p.rate), H-bottom+6, black, 1)
		label := strconv.FormatFloat(p.rate, 'f', -1, 64)
		text(img, px(p.rate)-textWidth(label)/2, H-bottom+12, label, black)
	}
	// Axes.
	line(img, left, top, left, H-bottom, black, 2)
	line(img, left, H-bottom, W-right, H-bottom, black, 2)
	text(img, (W-textWidth("calls/s"))/2, H-bottom+34, "calls/s", black)
	text(img, 10, top-26, "ms (log)", black)
	text(img, (W-textWidth(title))/2, 14, title, black)

	for i, s := range series {
		for j, p := range pts {
			x, y := px(p.rate), py(s.v(p.lat))
			fill(img, image.Rect(x-3, y-3, x+4, y+4), s.c)
			if j > 0 {
				q := pts[j-1]
				line(img, px(q.rate), py(s.v(q.lat)), x, y, s.c, 2)
			}
		}
		// Legend, top left inside the plot.
		lx, ly := left+16, top+10+i*18
		line(img, lx, ly+5, lx+24, ly+5, s.c, 3)
		text(img, lx+32, ly, s.name, black)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func decimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a segment w pixels thick (Bresenham with a square pen).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, w int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fill(img, image.Rect(x0-w/2, y0-w/2, x0-w/2+w, y0-w/2+w), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// A 3×5 bitmap font, drawn at 2× scale: enough for numbers, units and
// titles without a font package.
var glyphs = map[rune][5]string{
	'0': {"111", "101", "101", "101", "111"}, '1': {"010", "110", "010", "010", "111"},
	'2': {"111", "001", "111", "100", "111"}, '3': {"111", "001", "111", "001", "111"},
	'4': {"101", "101", "111", "001", "001"}, '5': {"111", "100", "111", "001", "111"},
	'6': {"111", "100", "111", "101", "111"}, '7': {"111", "001", "001", "010", "010"},
	'8': {"111", "101", "111", "101", "111"}, '9': {"111", "101", "111", "001", "111"},
	'.': {"000", "000", "000", "000", "010"}, '/': {"001", "001", "010", "100", "100"},
	'-': {"000", "000", "111", "000", "000"}, ',': {"000", "000", "000", "010", "100"},
	'=': {"000", "111", "000", "111", "000"}, '(': {"010", "100", "100", "100", "010"},
	')': {"010", "001", "001", "001", "010"}, ':': {"000", "010", "000", "010", "000"},
	'a': {"000", "011", "101", "101", "011"}, 'b': {"100", "110", "101", "101", "110"},
	'c': {"000", "011", "100", "100", "011"}, 'd': {"001", "011", "101", "101", "011"},
	'e': {"000", "111", "111", "100", "011"}, 'f': {"011", "100", "110", "100", "100"},
	'g': {"011", "101", "011", "001", "110"}, 'h': {"100", "110", "101", "101", "101"},
	'i': {"010", "000", "010", "010", "010"}, 'k': {"100", "101", "110", "110", "101"},
	'l': {"110", "010", "010", "010", "111"}, 'm': {"000", "111", "111", "101", "101"},
	'n': {"000", "110", "101", "101", "101"}, 'o': {"000", "010", "101", "101", "010"},
	'p': {"000", "110", "101", "110", "100"}, 'q': {"000", "011", "101", "011", "001"},
	'r': {"000", "011", "100", "100", "100"}, 's': {"000", "011", "110", "011", "110"},
	't': {"010", "111", "010", "010", "011"}, 'u': {"000", "101", "101", "101", "011"},
	'v': {"000", "101", "101", "101", "010"}, 'w': {"000", "101", "101", "111", "111"},
	'x': {"000", "101", "010", "010", "101"}, 'y': {"101", "101", "011", "001", "110"},
	'j': {"001", "000", "001", "101", "010"}, 'z': {"000", "111", "011", "110", "111"},
}

const scale, advance = 2, 8 // pixels per font dot, pixels per character

func textWidth(s string) int { return len(s) * advance }

func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for i, r := range strings.ToLower(s) {
		g, ok := glyphs[r]
		if !ok {
			continue
		}
		for row, bits := range g {
			for col, b := range bits {
				if b == '1' {
					ox, oy := x+i*advance+col*scale, y+row*scale
					fill(img, image.Rect(ox, oy, ox+scale, oy+scale), c)
				}
			}
		}
	}
}
