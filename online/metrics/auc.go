package metrics

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// DefaultBins is the ROCAUC resolution used when NewROCAUC gets 0.
const DefaultBins = 4096

// MaxBins bounds the histogram size.
const MaxBins = 1 << 16

// ROCAUC is the area under the ROC curve of a binary scorer, computed from
// histograms of the scores of positives and negatives over Bins equal-width
// bins of [0, 1] (scores are clamped into it): memory and updates are O(1)
// in the stream length, unlike the exact AUC, which needs every score.
//
// The approximation treats two examples in the same bin as tied (half a
// correctly ordered pair). Every other pair is ordered exactly, so the error
// is at most half the fraction of (positive, negative) pairs that share a
// bin; ErrorBound returns that figure, computed from the state, so the bound
// is known for the data at hand rather than assumed.
type ROCAUC struct {
	bins     int
	pos, neg []int64 // cumulative counts per bin
	np, nn   int64
	// Rolling window: ring holds bin<<1 | label of the last examples.
	ring       []uint32
	rpos, wn   int
	wpos, wneg []int64
	wnp, wnn   int64
}

// NewROCAUC returns an AUC over all examples and over the last window (0:
// no window), with bins histogram bins (0: DefaultBins).
func NewROCAUC(window, bins int) (*ROCAUC, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	if bins == 0 {
		bins = DefaultBins
	}
	if bins < 1 || bins > MaxBins {
		return nil, fmt.Errorf("metrics: bins = %d, want in [1, %d]", bins, MaxBins)
	}
	a := &ROCAUC{bins: bins, pos: make([]int64, bins), neg: make([]int64, bins), ring: make([]uint32, window)}
	if window > 0 {
		a.wpos, a.wneg = make([]int64, bins), make([]int64, bins)
	}
	return a, nil
}

func (a *ROCAUC) bin(score float64) int {
	if !(score > 0) { // NaN too
		return 0
	}
	return min(int(score*float64(a.bins)), a.bins-1)
}

// Update adds a score (P(y=1)) and the true label (y >= 0.5 is positive).
func (a *ROCAUC) Update(score, y float64) {
	b := a.bin(score)
	label := uint32(0)
	if y >= 0.5 {
		label = 1
		a.pos[b]++
		a.np++
	} else {
		a.neg[b]++
		a.nn++
	}
	if len(a.ring) == 0 {
		return
	}
	if a.wn == len(a.ring) {
		a.windowCount(a.ring[a.rpos], -1)
	} else {
		a.wn++
	}
	e := uint32(b)<<1 | label
	a.ring[a.rpos] = e
	a.windowCount(e, 1)
	if a.rpos++; a.rpos == len(a.ring) {
		a.rpos = 0
	}
}

func (a *ROCAUC) windowCount(e uint32, d int64) {
	b := int(e >> 1)
	if e&1 == 1 {
		a.wpos[b] += d
		a.wnp += d
	} else {
		a.wneg[b] += d
		a.wnn += d
	}
}

func auc(pos, neg []int64, np, nn int64) (value, bound float64) {
	if np == 0 || nn == 0 {
		return math.NaN(), math.NaN()
	}
	var below, ordered, tied float64
	for b := range pos {
		p, n := float64(pos[b]), float64(neg[b])
		ordered += p * below
		tied += p * n
		below += n
	}
	pairs := float64(np) * float64(nn)
	return (ordered + tied/2) / pairs, tied / 2 / pairs
}

// Value returns the cumulative AUC; NaN until both classes were seen.
func (a *ROCAUC) Value() float64 { v, _ := auc(a.pos, a.neg, a.np, a.nn); return v }

// ErrorBound returns the largest possible difference between Value and the
// exact AUC of the same examples.
func (a *ROCAUC) ErrorBound() float64 { _, e := auc(a.pos, a.neg, a.np, a.nn); return e }

// Window returns the AUC over the rolling window (cumulative without one).
func (a *ROCAUC) Window() float64 {
	if len(a.ring) == 0 {
		return a.Value()
	}
	v, _ := auc(a.wpos, a.wneg, a.wnp, a.wnn)
	return v
}

// WindowErrorBound is ErrorBound for Window.
func (a *ROCAUC) WindowErrorBound() float64 {
	if len(a.ring) == 0 {
		return a.ErrorBound()
	}
	_, e := auc(a.wpos, a.wneg, a.wnp, a.wnn)
	return e
}

func (a *ROCAUC) Count() int64 { return a.np + a.nn }

func (a *ROCAUC) Reset() {
	clear(a.pos)
	clear(a.neg)
	clear(a.ring)
	clear(a.wpos)
	clear(a.wneg)
	a.np, a.nn, a.rpos, a.wn, a.wnp, a.wnn = 0, 0, 0, 0, 0, 0
}

func appendHist(dst []byte, h []int64) []byte {
	n := 0
	for _, v := range h {
		if v != 0 {
			n++
		}
	}
	dst = wire.AppendUvarint(dst, uint64(n))
	prev := -1
	for i, v := range h {
		if v != 0 {
			dst = wire.AppendUvarint(dst, uint64(i-prev-1))
			dst = wire.AppendUvarint(dst, uint64(v))
			prev = i
		}
	}
	return dst
}

func readHist(r *wire.Reader, bins int) ([]int64, int64) {
	h := make([]int64, bins)
	n := r.Count("bins used", bins, 2)
	prev := -1
	var total int64
	for k := 0; k < n && r.Err() == nil; k++ {
		d := r.Uvarint()
		if r.Err() == nil && d >= uint64(bins-prev-1) {
			r.Fail("auc: bin past %d", bins)
			break
		}
		prev += int(d) + 1
		v := r.Uvarint()
		if r.Err() == nil && (v == 0 || v > math.MaxInt64/4 || total > math.MaxInt64/4) {
			r.Fail("auc: count %d", v)
			break
		}
		h[prev] = int64(v)
		total += int64(v)
	}
	return h, total
}

// AppendState writes the non-empty bins and the window ring.
func (a *ROCAUC) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 'u', 1)
	dst = wire.AppendUvarint(dst, uint64(a.bins))
	dst = appendHist(dst, a.pos)
	dst = appendHist(dst, a.neg)
	dst = wire.AppendUvarint(dst, uint64(len(a.ring)))
	dst = wire.AppendUvarint(dst, uint64(a.rpos))
	dst = wire.AppendUvarint(dst, uint64(a.wn))
	for _, e := range a.ring[:a.wn] {
		dst = wire.AppendUvarint(dst, uint64(e))
	}
	return dst
}

func (a *ROCAUC) DecodeState(b []byte) error {
	var d ROCAUC
	err := decode(b, 'u', "rocauc", func(r *wire.Reader) {
		d.bins = r.Count("bins", MaxBins, 0)
		if r.Err() == nil && d.bins < 1 {
			r.Fail("bins = 0")
			return
		}
		d.pos, d.np = readHist(r, d.bins)
		d.neg, d.nn = readHist(r, d.bins)
		size := r.Count("window", MaxWindow, 0)
		d.rpos = r.Count("pos", max(size-1, 0), 0)
		d.wn = r.Count("filled", size, 1)
		if r.Err() != nil {
			return
		}
		if d.wn < size && d.rpos != d.wn {
			r.Fail("ring position %d with %d of %d filled", d.rpos, d.wn, size)
			return
		}
		if int64(d.wn) > d.np+d.nn {
			r.Fail("window holds more examples than seen")
			return
		}
		d.ring = make([]uint32, size)
		if size > 0 {
			d.wpos, d.wneg = make([]int64, d.bins), make([]int64, d.bins)
		}
		for i := 0; i < d.wn && r.Err() == nil; i++ {
			e := r.Uvarint()
			if r.Err() == nil && e>>1 >= uint64(d.bins) {
				r.Fail("ring bin %d", e>>1)
				return
			}
			d.ring[i] = uint32(e)
			d.windowCount(uint32(e), 1)
		}
	})
	if err != nil {
		return err
	}
	*a = d
	return nil
}
