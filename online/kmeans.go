package online

import (
	"fmt"
	"math"
	"slices"

	"github.com/streamd/streamd/online/internal/wire"
)

// KMeans is sequential k-means with forgetting, for anomaly scoring: the
// score of x is its distance to the nearest centroid.
//
// At every example all cluster weights are multiplied by Decay, the nearest
// centroid's weight grows by 1 and the centroid moves towards x by 1/weight.
// With Decay = 1 this is MacQueen's k-means; below 1 a weight is bounded by
// 1/(1-Decay), so centroids keep following a drifting stream (the decay
// factor of Spark's streaming k-means, applied per example instead of per
// batch). The first K distinct examples become the initial centroids, which
// is deterministic, unlike random seeding.
//
// A centroid is stored as scale × v so that shrinking it towards x costs
// O(1) instead of O(Dim), and its squared norm is kept so that a distance
// costs O(len(x)): ||x-c||² = ||x||² - 2x·c + ||c||².
type KMeans struct {
	spec    KMeansSpec
	decay   float64
	k       int
	active  int // initialized centroids, the first active of k
	updates int64
	c       []centroid
}

type centroid struct {
	weight float64
	scale  float64
	norm2  float64 // ||scale*v||²
	lazy   int64   // moves since v was last rescaled
	v      []float64
}

const (
	magicKMeans   = 'K'
	versionKMeans = 1
	// renormEvery bounds the rounding drift of the incremental norm and the
	// underflow of scale: after that many moves (or when scale gets tiny) the
	// centroid is rescaled and its norm recomputed, an O(Dim) step.
	renormEvery = 1 << 14
	minScale    = 1e-100
	tinyWeight  = 1e-300
)

// KindKMeans is streaming k-means anomaly scoring (KMeansSpec, KMeans).
const KindKMeans = "kmeans"

var kmeansKind = &kindInfo{
	name: KindKMeans, code: 4,
	zero: func() Spec { return KMeansSpec{} },
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return KMeansSpec{Dim: v.Dim, K: v.K, Decay: v.Decay}
	},
}

// KMeansSpec configures kmeans. K is the number of clusters (default 8). Decay multiplies every
// cluster's weight at each example (default 0.999, a half-life of about 700 examples; 1 means no
// forgetting). With 0.99 the half-life is 69 examples and centroids chase noise.
type KMeansSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim; Dim*K at
	// most MaxParams.
	Dim   int     `yaml:"dim"`
	K     int     `yaml:"k"`
	Decay float64 `yaml:"decay"`
}

func (s KMeansSpec) Kind() string              { return KindKMeans }
func (s KMeansSpec) Task() Task                { return Anomaly }
func (s KMeansSpec) InputDim() int             { return s.Dim }
func (s KMeansSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s KMeansSpec) newLearner() Learner       { return newKMeans(s) }
func (s KMeansSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, K: s.K, Decay: s.Decay}.append(dst)
}

func (s KMeansSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	defInt(&s.K, 8)
	def(&s.Decay, 0.999)
	return s
}

func (s KMeansSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	if s.K < 1 || s.K > MaxK {
		c.bad("k", s.K, fmt.Sprintf("in [1, %d]", MaxK))
	} else if s.Dim >= 1 && s.Dim*s.K > MaxParams {
		c.bad("dim*k", s.Dim*s.K, fmt.Sprintf("<= %d", MaxParams))
	}
	if !(s.Decay > 0 && s.Decay <= 1) {
		c.bad("decay", s.Decay, "in (0, 1]")
	}
	return c.err()
}

func newKMeans(s KMeansSpec) *KMeans {
	m := &KMeans{}
	m.setSpec(s)
	m.c = make([]centroid, s.K)
	for i := range m.c {
		m.c[i] = centroid{scale: 1, v: make([]float64, s.Dim)}
	}
	return m
}

func (m *KMeans) setSpec(s KMeansSpec) {
	m.spec = s
	m.decay = s.Decay
	m.k = s.K
}

func (m *KMeans) Spec() Spec     { return m.spec }
func (m *KMeans) Task() Task     { return Anomaly }
func (m *KMeans) Updates() int64 { return m.updates }

func (m *KMeans) norm2(x Vector) float64 {
	dim := uint32(m.spec.Dim)
	s := 0.0
	for _, f := range x {
		if f.Index < dim && finite(f.Value) {
			s += f.Value * f.Value
		}
	}
	return s
}

func (c *centroid) dot(x Vector, dim uint32) float64 {
	s := 0.0
	for _, f := range x {
		if f.Index < dim && finite(f.Value) {
			s += c.v[f.Index] * f.Value
		}
	}
	return s * c.scale
}

// nearest returns the closest active centroid and the squared distance.
func (m *KMeans) nearest(x Vector, xx float64) (int, float64) {
	best, bestD := -1, math.Inf(1)
	dim := uint32(m.spec.Dim)
	for k := 0; k < m.active; k++ {
		c := &m.c[k]
		d := max(xx-2*c.dot(x, dim)+c.norm2, 0)
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best, bestD
}

func (m *KMeans) Predict(x Vector, _ []float64) (float64, int) {
	k, d := m.nearest(x, m.norm2(x))
	if k < 0 {
		return 0, -1
	}
	return math.Sqrt(d), k
}

// Learn ignores y.
func (m *KMeans) Learn(x Vector, _ float64) {
	xx := m.norm2(x)
	if !finite(xx) {
		return
	}
	k, d := m.nearest(x, xx)
	for i := 0; i < m.active; i++ {
		m.c[i].weight *= m.decay
	}
	if m.active < m.k && (k < 0 || d > 0) {
		k = m.active
		m.active++
		c := &m.c[k]
		c.weight, c.scale, c.lazy = 1, 1, 0
		m.addScaled(c, x, 1)
		c.norm2 = xx
		m.updates++
		return
	}
	c := &m.c[k]
	c.weight++
	eta := 1 / c.weight
	// c' = (1-eta) c + eta x, with ||c'||² expanded so it needs only x·c.
	xc := c.dot(x, uint32(m.spec.Dim))
	c.norm2 = max((1-eta)*(1-eta)*c.norm2+2*eta*(1-eta)*xc+eta*eta*xx, 0)
	c.scale *= 1 - eta
	c.lazy++
	if c.scale < minScale || c.lazy >= renormEvery {
		m.renorm(c)
	}
	if c.scale == 0 { // eta == 1: the centroid is x itself
		clear(c.v)
		c.scale = 1
		m.addScaled(c, x, 1)
		c.norm2 = xx
	} else {
		m.addScaled(c, x, eta/c.scale)
	}
	m.updates++
}

func (m *KMeans) addScaled(c *centroid, x Vector, a float64) {
	dim := uint32(m.spec.Dim)
	for _, f := range x {
		if f.Index < dim && finite(f.Value) {
			c.v[f.Index] += a * f.Value
		}
	}
}

func (m *KMeans) renorm(c *centroid) {
	n := 0.0
	for i, v := range c.v {
		v *= c.scale
		c.v[i] = v
		n += v * v
	}
	c.scale, c.norm2, c.lazy = 1, n, 0
}

func (m *KMeans) Reset() {
	for i := range m.c {
		c := &m.c[i]
		clear(c.v)
		c.weight, c.scale, c.norm2, c.lazy = 0, 1, 0, 0
	}
	m.active = 0
	m.updates = 0
}

// Centroid appends centroid k's coordinates to dst.
func (m *KMeans) Centroid(dst []float64, k int) []float64 {
	c := &m.c[k]
	for _, v := range c.v {
		dst = append(dst, v*c.scale)
	}
	return dst
}

// Active returns the number of initialized centroids.
func (m *KMeans) Active() int { return m.active }

func (m *KMeans) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicKMeans, versionKMeans)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	dst = wire.AppendUvarint(dst, uint64(m.active))
	for k := 0; k < m.active; k++ {
		c := &m.c[k]
		dst = wire.AppendFloat(dst, c.weight)
		dst = wire.AppendFloat(dst, c.scale)
		dst = wire.AppendFloat(dst, c.norm2)
		dst = wire.AppendVarint(dst, c.lazy)
		n := 0
		for _, v := range c.v {
			if v != 0 {
				n++
			}
		}
		dst = wire.AppendUvarint(dst, uint64(n))
		prev := -1
		for i, v := range c.v {
			if v != 0 {
				dst = wire.AppendUvarint(dst, uint64(i-prev-1))
				dst = wire.AppendFloat(dst, v)
				prev = i
			}
		}
	}
	return dst
}

type sparseCentroid struct {
	weight, scale, norm2 float64
	lazy                 int64
	idx                  []int
	val                  []float64
}

func (m *KMeans) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	r.Header(magicKMeans, "kmeans")
	s := readSpecOf[KMeansSpec](r, "kmeans")
	updates := r.Int("kmeans updates", 0, math.MaxInt64)
	active := r.Count("kmeans active", s.K, 25)
	cs := make([]sparseCentroid, active)
	for k := range cs {
		c := &cs[k]
		c.weight = r.NonNeg("kmeans weight")
		c.scale = r.Finite("kmeans scale")
		if r.Err() == nil && !(c.scale > 0) {
			r.Fail("kmeans: scale %v", c.scale)
		}
		c.norm2 = r.NonNeg("kmeans norm2")
		c.lazy = r.Int("kmeans lazy", 0, renormEvery)
		n := r.Count("kmeans nnz", s.Dim, 9)
		if r.Err() != nil {
			break
		}
		c.idx, c.val = make([]int, n), make([]float64, n)
		prev := -1
		for j := 0; j < n && r.Err() == nil; j++ {
			d := r.Uvarint()
			if r.Err() == nil && d >= uint64(s.Dim-prev-1) {
				r.Fail("kmeans: index past %d", s.Dim)
			}
			prev += int(d) + 1
			c.idx[j], c.val[j] = prev, r.Finite("kmeans value")
		}
	}
	if err := r.End("kmeans"); err != nil {
		return err
	}
	if s.Dim != m.spec.Dim || s.K != m.k {
		m.c = make([]centroid, s.K)
		for i := range m.c {
			m.c[i].v = make([]float64, s.Dim)
		}
	}
	m.setSpec(s)
	m.Reset()
	for k, sc := range cs {
		c := &m.c[k]
		c.weight, c.scale, c.norm2, c.lazy = sc.weight, sc.scale, sc.norm2, sc.lazy
		for j, i := range sc.idx {
			c.v[i] = sc.val[j]
		}
	}
	m.active = active
	m.updates = updates
	return nil
}

// Merge matches centroids and averages matched ones. The reference is the
// replica with the largest merge weight (the first on ties); each other
// replica's centroids are paired one-to-one with the reference's by
// increasing distance (greedy matching, so two centroids never collapse into
// one), and a merged centroid is the mean of its matches weighted by merge
// weight × cluster weight. A replica centroid left unmatched fills an
// slot no replica has filled yet if there is one and is dropped otherwise. Cluster
// weights become the merge-weighted mean of the matched weights.
func (m *KMeans) Merge(replicas []Learner, weights []float64) error {
	rs, a, err := mergeWeights(m, replicas, weights, func(x, y *KMeans) bool { return x.spec.Dim == y.spec.Dim && x.spec.K == y.spec.K })
	if err != nil {
		return err
	}
	updates := maxUpdates(rs)
	ref := 0
	for i := range a {
		if a[i] > a[ref] {
			ref = i
		}
	}
	dim, K := m.spec.Dim, m.k
	sum := make([][]float64, K) // sum of (merge weight × cluster weight × centroid)
	mass := make([]float64, K)  // sum of merge weight × cluster weight
	cw := make([]float64, K)    // merged cluster weight
	used := make([]bool, K)
	add := func(slot int, rep *KMeans, k int, w float64) {
		if sum[slot] == nil {
			sum[slot] = make([]float64, dim)
		}
		c := &rep.c[k]
		// tinyWeight keeps a centroid whose weight decayed to 0 from
		// vanishing into a zero vector.
		cm := w * (c.weight + tinyWeight)
		f := cm * c.scale
		for i, v := range c.v {
			sum[slot][i] += f * v
		}
		mass[slot] += cm
		cw[slot] += w * c.weight
		used[slot] = true
	}
	R := rs[ref]
	for k := 0; k < R.active; k++ {
		add(k, R, k, a[ref])
	}
	type pair struct {
		d    float64
		i, j int
	}
	for r, rep := range rs {
		if r == ref {
			continue
		}
		var pairs []pair
		for i := 0; i < R.active; i++ {
			for j := 0; j < rep.active; j++ {
				pairs = append(pairs, pair{centroidDist2(&R.c[i], &rep.c[j]), i, j})
			}
		}
		// Stable order: distance, then indexes, so the matching is deterministic.
		slices.SortStableFunc(pairs, func(x, y pair) int {
			if x.d < y.d {
				return -1
			} else if x.d > y.d {
				return 1
			}
			return 0
		})
		refTaken := make([]bool, K)
		repTaken := make([]bool, K)
		for _, p := range pairs {
			if refTaken[p.i] || repTaken[p.j] {
				continue
			}
			refTaken[p.i], repTaken[p.j] = true, true
			add(p.i, rep, p.j, a[r])
		}
		for j := 0; j < rep.active; j++ {
			if repTaken[j] {
				continue
			}
			for slot := R.active; slot < K; slot++ {
				if !used[slot] {
					add(slot, rep, j, a[r])
					break
				}
			}
		}
	}
	// Slots are filled in order, so the used ones form a prefix.
	active := 0
	for active < K && used[active] {
		active++
	}
	for k := range m.c {
		c := &m.c[k]
		clear(c.v)
		c.weight, c.scale, c.norm2, c.lazy = 0, 1, 0, 0
		if k >= active {
			continue
		}
		if mass[k] > 0 {
			for i, v := range sum[k] {
				c.v[i] = v / mass[k]
			}
		}
		c.weight = cw[k]
		m.renorm(c)
	}
	m.active = active
	m.updates = updates
	return nil
}

func centroidDist2(a, b *centroid) float64 {
	dot := 0.0
	for i, v := range a.v {
		dot += v * b.v[i]
	}
	return max(a.norm2+b.norm2-2*dot*a.scale*b.scale, 0)
}
