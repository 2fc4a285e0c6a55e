package bench

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"sort"
	"time"
)

// Series is one line of the latency chart.
type Series struct {
	Name      string
	Latencies []time.Duration
}

// SeriesOf returns the chart's series of rows: each row's load-phase latencies.
func SeriesOf(rows []Row) []Series {
	s := make([]Series, 0, len(rows))
	for i := range rows {
		s = append(s, Series{Name: rows[i].Name(), Latencies: rows[i].LoadLatencies})
	}
	return s
}

// PlotOptions size and title the chart. Zero fields take defaults (1000x600).
type PlotOptions struct {
	Width, Height int
	Title         string
}

// ErrNoSamples is returned when there is nothing to draw.
var ErrNoSamples = errors.New("bench: no latencies to plot")

// Minimum chart size: below it the labels would overlap.
const minPlotWidth, minPlotHeight = 400, 300

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
	{0xe3, 0x77, 0xc2, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	black = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid  = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
)

// WritePlot draws the cumulative distribution of each series' latencies (x: latency, log scale;
// y: share of requests completed within it) as a PNG, one coloured line per series, with a legend
// giving each one's p50 and p99.
func WritePlot(w io.Writer, series []Series, opts PlotOptions) error {
	if opts.Width == 0 {
		opts.Width = 1000
	}
	if opts.Height == 0 {
		opts.Height = 600
	}
	if opts.Width < minPlotWidth || opts.Height < minPlotHeight {
		return fmt.Errorf("bench: a chart must be at least %dx%d pixels", minPlotWidth, minPlotHeight)
	}
	sorted := make([][]time.Duration, len(series))
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for i, s := range series {
		sorted[i] = slices.Clone(s.Latencies)
		slices.Sort(sorted[i])
		if n := len(sorted[i]); n > 0 {
			lo, hi = min(lo, max(sorted[i][0], time.Microsecond)), max(hi, sorted[i][n-1])
		}
	}
	if hi == 0 {
		return ErrNoSamples
	}
	// The x axis spans whole decades of microseconds around the samples.
	xmin := math.Floor(math.Log10(micros(lo)))
	xmax := math.Ceil(math.Log10(micros(hi)))
	if xmax <= xmin {
		xmax = xmin + 1
	}

	c := newCanvas(opts.Width, opts.Height)
	const scale = 2 // font pixels per glyph pixel
	left, right, top, bottom := 100, opts.Width-30, 50, opts.Height-70
	px := func(us float64) int {
		return left + int(math.Round((math.Log10(us)-xmin)/(xmax-xmin)*float64(right-left)))
	}
	py := func(frac float64) int { return bottom - int(math.Round(frac*float64(bottom-top))) }

	// Grid, ticks and tick labels.
	for p := 0; p <= 100; p += 10 {
		y := py(float64(p) / 100)
		c.hline(left, right, y, grid)
		c.hline(left-6, left, y, black)
		if p%20 == 0 {
			label := fmt.Sprintf("%d%%", p)
			c.text(left-10-textWidth(label, scale), y-glyphH*scale/2, label, scale, black)
		}
	}
	decades := int(xmax - xmin)
	for d := range decades + 1 {
		base := math.Pow(10, xmin+float64(d))
		for _, m := range []float64{1, 2, 5} {
			us := base * m
			if math.Log10(us) > xmax+1e-9 {
				break
			}
			x := px(us)
			c.vline(x, top, bottom, grid)
			c.vline(x, bottom, bottom+6, black)
			if m == 1 || decades <= 2 {
				label := formatTick(us)
				c.text(x-textWidth(label, scale)/2, bottom+12, label, scale, black)
			}
		}
	}
	c.rect(left, top, right, bottom, black)

	// Axis titles and the chart's title.
	xTitle := "latency per request (log scale)"
	c.text((left+right-textWidth(xTitle, scale))/2, opts.Height-30, xTitle, scale, black)
	yTitle := "requests completed within"
	c.textUp(20, (top+bottom+textWidth(yTitle, scale))/2, yTitle, scale, black)
	if opts.Title != "" {
		c.text((opts.Width-textWidth(opts.Title, scale))/2, 15, opts.Title, scale, black)
	}

	// One cumulative line per series: at each pixel column, the share of samples at or below it.
	for i, s := range sorted {
		if len(s) == 0 {
			continue
		}
		col := palette[i%len(palette)]
		prevX, prevY := -1, 0
		for x := left; x <= right; x++ {
			us := math.Pow(10, xmin+float64(x-left)/float64(right-left)*(xmax-xmin))
			limit := time.Duration(us * 1e3)
			n := sort.Search(len(s), func(j int) bool { return s[j] > limit })
			y := py(float64(n) / float64(len(s)))
			if prevX >= 0 {
				c.line(prevX, prevY, x, y, col)
			}
			prevX, prevY = x, y
		}
	}

	// Legend, top left inside the plot, where CDFs are low.
	lx, ly := left+12, top+12
	lineH := (glyphH + 4) * scale
	for i, s := range series {
		if len(sorted[i]) == 0 {
			continue
		}
		col := palette[i%len(palette)]
		cy := ly + glyphH*scale/2
		for dy := -1; dy <= 1; dy++ {
			c.hline(lx, lx+28, cy+dy, col)
		}
		label := fmt.Sprintf("%-12s p50 %s  p99 %s", s.Name,
			formatMicros(micros(percentileSorted(sorted[i], 0.5))), formatMicros(micros(percentileSorted(sorted[i], 0.99))))
		c.text(lx+36, ly, label, scale, black)
		ly += lineH
	}
	return png.Encode(w, c.img)
}

// formatTick labels a decade tick: 10µs, 200µs, 1ms, 50ms, 1s.
func formatTick(us float64) string {
	switch {
	case us < 1e3:
		return fmt.Sprintf("%gµs", us)
	case us < 1e6:
		return fmt.Sprintf("%gms", us/1e3)
	default:
		return fmt.Sprintf("%gs", us/1e6)
	}
}

// canvas draws on an RGBA image, clipping to it.
type canvas struct{ img *image.RGBA }

func newCanvas(w, h int) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = white.R, white.G, white.B, white.A
	}
	return &canvas{img: img}
}

func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *canvas) hline(x0, x1, y int, col color.RGBA) {
	for x := x0; x <= x1; x++ {
		c.set(x, y, col)
	}
}

func (c *canvas) vline(x, y0, y1 int, col color.RGBA) {
	for y := y0; y <= y1; y++ {
		c.set(x, y, col)
	}
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	c.hline(x0, x1, y0, col)
	c.hline(x0, x1, y1, col)
	c.vline(x0, y0, y1, col)
	c.vline(x1, y0, y1, col)
}

// line draws a 2-pixel-wide line from (x0,y0) to (x1,y1) (Bresenham).
func (c *canvas) line(x0, y0, x1, y1 int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.set(x0, y0, col)
		c.set(x0+1, y0, col)
		c.set(x0, y0+1, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// text draws s with its top-left corner at (x, y), each font pixel scale x scale.
func (c *canvas) text(x, y int, s string, scale int, col color.RGBA) {
	c.glyphs(s, scale, col, func(gx, gy int) (int, int) { return x + gx, y + gy })
}

// textUp draws s rotated a quarter turn anticlockwise, reading upwards from (x, y).
func (c *canvas) textUp(x, y int, s string, scale int, col color.RGBA) {
	c.glyphs(s, scale, col, func(gx, gy int) (int, int) { return x + gy, y - gx })
}

// glyphs draws s through place, which maps a pixel of the horizontal text to the canvas.
func (c *canvas) glyphs(s string, scale int, col color.RGBA, place func(gx, gy int) (int, int)) {
	ox := 0
	for _, r := range s {
		g := glyph(r)
		down := 0
		if descenders[r] {
			down = descent
		}
		for row := range glyphH {
			for column := range glyphW {
				if g[row][column] != '#' {
					continue
				}
				for i := range scale {
					for j := range scale {
						x, y := place(ox+column*scale+i, (row+down)*scale+j)
						c.set(x, y, col)
					}
				}
			}
		}
		ox += (glyphW + 1) * scale
	}
}

func textWidth(s string, scale int) int {
	n := 0
	for range s {
		n++
	}
	return n*(glyphW+1)*scale - scale
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
