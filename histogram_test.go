package imagegen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// latencyHistMaxRelError is the documented bound on a percentile's relative
// error between latencyHistMin and latencyHistMax.
var latencyHistMaxRelError = (latencyHistGrowth - 1) / (latencyHistGrowth + 1)

func TestLatencyHistBucketCount(t *testing.T) {
	assert.Equal(t, 387, latencyHistBuckets)
	assert.Less(t, latencyHistMaxRelError, 0.02)
}

func TestLatencyHistIndexMatchesBounds(t *testing.T) {
	for i := 1; i < latencyHistBuckets-1; i++ {
		lo, hi := latencyHistBounds[i], latencyHistBounds[i+1]
		require.Less(t, lo, hi, "bucket %d is empty", i)
		for _, d := range []time.Duration{lo, lo + 1, (lo + hi) / 2, hi - 1} {
			if d <= latencyHistMin {
				continue
			}
			require.Equal(t, i, latencyHistIndex(d), "duration %v", d)
		}
	}
	assert.Equal(t, 0, latencyHistIndex(0))
	assert.Equal(t, 0, latencyHistIndex(latencyHistMin))
	assert.Equal(t, 1, latencyHistIndex(latencyHistMin+1))
	assert.Equal(t, latencyHistBuckets-2, latencyHistIndex(latencyHistMax-1))
	assert.Equal(t, latencyHistBuckets-1, latencyHistIndex(latencyHistMax))
	assert.Equal(t, latencyHistBuckets-1, latencyHistIndex(math.MaxInt64))
}

// exactQuantile returns the nearest-rank quantile q of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestLatencyHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name   string
		n      int
		sample func() time.Duration
	}{
		{"uniform 1s to 120s", 10000, func() time.Duration {
			return time.Second + time.Duration(rng.Int64N(int64(119*time.Second)))
		}},
		{"exponential mean 20s", 10000, func() time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(20*time.Second))
		}},
		{"lognormal median 15s", 10000, func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*0.8) * float64(15*time.Second))
		}},
		{"two modes 300ms and 40s", 5000, func() time.Duration {
			if rng.IntN(10) < 3 {
				return 300*time.Millisecond + time.Duration(rng.Int64N(int64(50*time.Millisecond)))
			}
			return 40*time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
		}},
		{"constant", 100, func() time.Duration { return 12345 * time.Millisecond }},
		{"single", 1, func() time.Duration { return 7 * time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h latencyHistogram
			values := make([]time.Duration, tt.n)
			var sum time.Duration
			for i := range values {
				values[i] = tt.sample()
				sum += values[i]
				h.observe(values[i])
			}
			slices.Sort(values)

			for _, q := range []float64{0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				want := exactQuantile(values, q)
				got := h.quantile(q)
				if want <= latencyHistMin {
					assert.InDelta(t, float64(want), float64(got), float64(latencyHistMin), "q=%v", q)
					continue
				}
				relErr := math.Abs(float64(got)-float64(want)) / float64(want)
				assert.LessOrEqual(t, relErr, latencyHistMaxRelError+1e-9, "q=%v want %v got %v", q, want, got)
			}

			s := h.summary()
			assert.Equal(t, int64(tt.n), s.Count)
			assert.Equal(t, values[len(values)-1], s.Max)
			assert.Equal(t, sum/time.Duration(tt.n), s.Mean)
		})
	}
}

func TestLatencyHistOutOfRange(t *testing.T) {
	t.Run("below minimum", func(t *testing.T) {
		var h latencyHistogram
		for _, d := range []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 900 * time.Microsecond} {
			h.observe(d)
		}
		got := h.quantile(0.5)
		assert.InDelta(t, float64(200*time.Microsecond), float64(got), float64(latencyHistMin))
		assert.GreaterOrEqual(t, got, 100*time.Microsecond, "clamped to the observed minimum")
		assert.LessOrEqual(t, got, 900*time.Microsecond, "clamped to the observed maximum")
	})
	t.Run("above maximum", func(t *testing.T) {
		var h latencyHistogram
		h.observe(time.Second)
		h.observe(2 * time.Hour)
		h.observe(3 * time.Hour)
		assert.Equal(t, 3*time.Hour, h.quantile(0.99))
		assert.Equal(t, 3*time.Hour, h.quantile(0.5), "the overflow bucket reports the maximum")
	})
	t.Run("empty", func(t *testing.T) {
		var h latencyHistogram
		assert.Zero(t, h.quantile(0.5))
		assert.Equal(t, LatencyStats{}, h.summary())
	})
}
