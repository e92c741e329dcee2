package agg

import "math"

// moments is the state of one field's count/sum/mean/min/max/stddev. Only the parts the layout's flags
// name are kept up to date and encoded.
type moments struct {
	n        int64   // finite numbers seen
	sum      float64 // plain running sum (what Sum reports; Mean is sum/n)
	m2       float64 // Σ(x−mean)², by Welford's update and Chan et al.'s pairwise merge
	min, max float64
}

func (m *moments) add(x float64, flags uint8) {
	if x == 0 {
		x = 0 // -0 → +0, so that min/max never return -0 and encodings do not depend on the sign of zero
	}
	m.n++
	if m.n == 1 {
		m.sum, m.m2, m.min, m.max = x, 0, x, x
		return
	}
	if flags&momM2 != 0 {
		// Welford: M2 += (x − mean_before)·(x − mean_after). Squaring deviations from a running mean
		// instead of subtracting Σx² − (Σx)²/n avoids catastrophic cancellation for data with a large
		// offset (timestamps, prices around 1e6), where the textbook formula loses every digit.
		before := m.sum / float64(m.n-1)
		m.sum += x
		m.m2 += (x - before) * (x - m.sum/float64(m.n))
	} else {
		m.sum += x
	}
	if x < m.min {
		m.min = x
	}
	if x > m.max {
		m.max = x
	}
}

func (m *moments) merge(o *moments, flags uint8) {
	if o.n == 0 {
		return
	}
	if m.n == 0 {
		*m = *o
		return
	}
	if flags&momM2 != 0 {
		na, nb := float64(m.n), float64(o.n)
		d := o.sum/nb - m.sum/na
		m.m2 += o.m2 + d*d*(na*nb/(na+nb))
	}
	m.n += o.n
	m.sum += o.sum
	m.min = math.Min(m.min, o.min)
	m.max = math.Max(m.max, o.max)
}

func (m *moments) result(k Kind) (float64, bool) {
	if m.n == 0 {
		if k == Sum {
			return 0, true // the empty sum; pandas and most feature stores say 0, SQL says NULL
		}
		return 0, false
	}
	switch k {
	case Sum:
		return m.sum, true
	case Mean:
		return m.sum / float64(m.n), true
	case Min:
		return m.min, true
	case Max:
		return m.max, true
	case StdDev:
		// Population standard deviation, √(M2/n): Flink's and SQL's STDDEV_POP, numpy's std default.
		// pandas' default (ddof=1, sample) divides by n−1 instead; multiply by √(n/(n−1)) for it.
		return math.Sqrt(math.Max(m.m2, 0) / float64(m.n)), true
	}
	return 0, false
}
