package imagegen

import (
	"math"
	"time"
)

// The latency histogram has fixed, logarithmic buckets. Bucket 0 holds
// durations up to latencyHistMin. Each bucket after it is latencyHistGrowth
// times wider than the one before, up to latencyHistMax; the last bucket
// holds everything at or above latencyHistMax.
//
// A percentile is reported as the harmonic mean of its bucket's bounds,
// clamped to the observed minimum and maximum. For a value v inside
// [latencyHistMin, latencyHistMax) that estimate is within a relative error
// of (growth-1)/(growth+1), under 2% for growth 1.04, of the exact
// nearest-rank percentile. Below latencyHistMin the error is at most
// latencyHistMin in absolute terms; at or above latencyHistMax the estimate
// is the observed maximum.
const (
	latencyHistMin    = time.Millisecond
	latencyHistMax    = time.Hour
	latencyHistGrowth = 1.04
)

// latencyHistBuckets is the number of buckets: one for values up to
// latencyHistMin, ceil(log(max/min)/log(growth)) between the two, and one
// for values at or above latencyHistMax.
var latencyHistBuckets = 2 + int(math.Ceil(math.Log(float64(latencyHistMax)/float64(latencyHistMin))/math.Log(latencyHistGrowth)))

// latencyHistBounds[i] is the lower bound of bucket i, which holds
// [latencyHistBounds[i], latencyHistBounds[i+1]) for i >= 1. Bucket 0 holds
// [0, latencyHistMin]. The slice is filled once and only read afterwards.
var latencyHistBounds = makeLatencyHistBounds()

var latencyHistInvLogGrowth = 1 / math.Log(latencyHistGrowth)

func makeLatencyHistBounds() []time.Duration {
	bounds := make([]time.Duration, latencyHistBuckets+1)
	bounds[0] = 0
	for i := 1; i < latencyHistBuckets; i++ {
		bounds[i] = time.Duration(float64(latencyHistMin) * math.Pow(latencyHistGrowth, float64(i-1)))
	}
	bounds[latencyHistBuckets-1] = latencyHistMax
	bounds[latencyHistBuckets] = math.MaxInt64
	return bounds
}

// latencyHistogram counts durations in logarithmic buckets. Its memory is
// fixed (one uint64 per bucket, about 3 KiB) whatever the number of
// observations. The zero value is empty and ready to use. It is not safe for
// concurrent use: statsRecorder guards it with its mutex.
type latencyHistogram struct {
	counts []uint64
	count  int64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// observe adds one duration. Negative durations count as 0.
func (h *latencyHistogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, latencyHistBuckets)
	}
	h.counts[latencyHistIndex(d)]++
	if h.count == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.count++
	h.sum += d
}

// latencyHistIndex returns the bucket that holds d.
func latencyHistIndex(d time.Duration) int {
	if d <= latencyHistMin {
		return 0
	}
	if d >= latencyHistMax {
		return latencyHistBuckets - 1
	}
	i := 1 + int(math.Log(float64(d)/float64(latencyHistMin))*latencyHistInvLogGrowth)
	// The logarithm can round across a bucket bound; the bounds table decides.
	if i > latencyHistBuckets-2 {
		i = latencyHistBuckets - 2
	}
	if d < latencyHistBounds[i] {
		i--
	} else if d >= latencyHistBounds[i+1] {
		i++
	}
	return i
}

// quantile returns the estimated nearest-rank quantile q (0 < q <= 1) of the
// observed durations, or 0 when there are none.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	var out [1]time.Duration
	h.quantiles([]float64{q}, out[:])
	return out[0]
}

// quantiles sets out[i] to the estimated nearest-rank quantile qs[i] in one
// pass over the buckets. qs must be ascending, each in (0, 1]. Every out[i]
// is 0 when the histogram is empty.
func (h *latencyHistogram) quantiles(qs []float64, out []time.Duration) {
	if h.count == 0 {
		clear(out)
		return
	}
	next := 0
	rank := latencyHistRank(qs[0], h.count)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		for seen >= rank {
			out[next] = h.clampToObserved(latencyHistEstimate(i))
			next++
			if next == len(qs) {
				return
			}
			rank = latencyHistRank(qs[next], h.count)
		}
	}
	for ; next < len(out); next++ {
		out[next] = h.max
	}
}

// latencyHistRank returns the 1-based rank of quantile q among count values.
func latencyHistRank(q float64, count int64) uint64 {
	return max(uint64(math.Ceil(q*float64(count))), 1)
}

// latencyHistEstimate returns the value reported for bucket i: the harmonic
// mean of its bounds, which bounds the relative error on both ends alike.
func latencyHistEstimate(i int) time.Duration {
	switch i {
	case 0:
		return latencyHistMin / 2
	case latencyHistBuckets - 1:
		return math.MaxInt64
	}
	lo := float64(latencyHistBounds[i])
	hi := float64(latencyHistBounds[i+1])
	return time.Duration(2 * lo * hi / (lo + hi))
}

func (h *latencyHistogram) clampToObserved(d time.Duration) time.Duration {
	return min(max(d, h.min), h.max)
}

// summary returns the histogram's figures as a LatencyStats.
func (h *latencyHistogram) summary() LatencyStats {
	if h.count == 0 {
		return LatencyStats{}
	}
	var p [3]time.Duration
	h.quantiles([]float64{0.50, 0.95, 0.99}, p[:])
	return LatencyStats{
		Count: h.count,
		Mean:  h.sum / time.Duration(h.count),
		P50:   p[0],
		P95:   p[1],
		P99:   p[2],
		Max:   h.max,
	}
}
