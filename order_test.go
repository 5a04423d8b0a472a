package imagegen

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// candidateNames returns "provider/model" for each candidate, in order.
func candidateNames(cands []orderCandidate) []string {
	names := make([]string, len(cands))
	for i, c := range cands {
		names[i] = c.Provider + "/" + c.Model
	}
	return names
}

func estimatedCost(usd float64) Cost { return Cost{USD: usd, Known: true, Estimated: true} }

func TestOrderPriority(t *testing.T) {
	cands := []orderCandidate{
		{Provider: "c", Model: "m", Index: 2, EstimatedCost: estimatedCost(0.01)},
		{Provider: "a", Model: "m", Index: 0, EstimatedCost: estimatedCost(0.5)},
		{Provider: "b", Model: "m", Index: 1},
	}
	got := orderCandidates(OrderPriority, cands, newLatencyTracker(), nil)
	assert.Equal(t, []string{"a/m", "b/m", "c/m"}, candidateNames(got))

	unknown := orderCandidates(Strategy(99), got, nil, nil)
	assert.Equal(t, []string{"a/m", "b/m", "c/m"}, candidateNames(unknown), "unknown strategy keeps priority")
}

func TestOrderCost(t *testing.T) {
	tests := []struct {
		name  string
		costs []Cost // candidate i has Index i and provider "p<i>"
		want  []string
	}{
		{
			name:  "cheapest first",
			costs: []Cost{estimatedCost(0.19), estimatedCost(0.04), estimatedCost(0.07)},
			want:  []string{"p1/m", "p2/m", "p0/m"},
		},
		{
			name:  "unknown last",
			costs: []Cost{{}, estimatedCost(0.2), {}, estimatedCost(0.1)},
			want:  []string{"p3/m", "p1/m", "p0/m", "p2/m"},
		},
		{
			name:  "ties keep priority",
			costs: []Cost{estimatedCost(0.05), estimatedCost(0.01), estimatedCost(0.05), estimatedCost(0.01)},
			want:  []string{"p1/m", "p3/m", "p0/m", "p2/m"},
		},
		{
			name:  "free before paid",
			costs: []Cost{estimatedCost(0.02), estimatedCost(0)},
			want:  []string{"p1/m", "p0/m"},
		},
		{
			name:  "NaN counts as unknown",
			costs: []Cost{{USD: math.NaN(), Known: true}, estimatedCost(3)},
			want:  []string{"p1/m", "p0/m"},
		},
		{
			name:  "all unknown keep priority",
			costs: []Cost{{}, {}, {}},
			want:  []string{"p0/m", "p1/m", "p2/m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands := make([]orderCandidate, len(tt.costs))
			// Feed them in reverse so that the test proves the sort uses Index.
			for i, c := range tt.costs {
				cands[len(cands)-1-i] = orderCandidate{Provider: "p" + strconv.Itoa(i), Model: "m", Index: i, EstimatedCost: c}
			}
			got := orderCandidates(OrderCost, cands, nil, nil)
			assert.Equal(t, tt.want, candidateNames(got))
		})
	}
}

func TestOrderLatency(t *testing.T) {
	t.Run("fastest first", func(t *testing.T) {
		lat := newLatencyTracker()
		lat.observe("a", "m", 40*time.Second)
		lat.observe("b", "m", 10*time.Second)
		lat.observe("c", "m", 20*time.Second)
		cands := []orderCandidate{{Provider: "a", Model: "m", Index: 0}, {Provider: "b", Model: "m", Index: 1}, {Provider: "c", Model: "m", Index: 2}}
		got := orderCandidates(OrderLatency, cands, lat, nil)
		assert.Equal(t, []string{"b/m", "c/m", "a/m"}, candidateNames(got))
	})

	t.Run("per model", func(t *testing.T) {
		lat := newLatencyTracker()
		lat.observe("a", "slow", 50*time.Second)
		lat.observe("a", "fast", 5*time.Second)
		lat.observe("b", "m", 20*time.Second)
		cands := []orderCandidate{{Provider: "a", Model: "slow", Index: 0}, {Provider: "b", Model: "m", Index: 1}, {Provider: "a", Model: "fast", Index: 2}}
		got := orderCandidates(OrderLatency, cands, lat, nil)
		assert.Equal(t, []string{"a/fast", "b/m", "a/slow"}, candidateNames(got))
	})

	t.Run("ties keep priority", func(t *testing.T) {
		lat := newLatencyTracker()
		lat.observe("a", "m", time.Second)
		lat.observe("b", "m", time.Second)
		cands := []orderCandidate{{Provider: "b", Model: "m", Index: 1}, {Provider: "a", Model: "m", Index: 0}}
		got := orderCandidates(OrderLatency, cands, lat, nil)
		assert.Equal(t, []string{"a/m", "b/m"}, candidateNames(got))
	})

	t.Run("unmeasured explored then last", func(t *testing.T) {
		lat := newLatencyTracker()
		lat.observe("a", "m", 30*time.Second)
		lat.observe("c", "m", 10*time.Second)
		order := func() []string {
			cands := []orderCandidate{{Provider: "a", Model: "m", Index: 0}, {Provider: "b", Model: "m", Index: 1}, {Provider: "c", Model: "m", Index: 2}}
			return candidateNames(orderCandidates(OrderLatency, cands, lat, nil))
		}
		for i := range latencyExplorations {
			assert.Equal(t, []string{"b/m", "c/m", "a/m"}, order(), "exploration %d", i+1)
		}
		assert.Equal(t, []string{"c/m", "a/m", "b/m"}, order(), "explorations used up")

		lat.observe("b", "m", 20*time.Second)
		assert.Equal(t, []string{"c/m", "b/m", "a/m"}, order(), "measured at last")
	})

	t.Run("nil tracker keeps priority", func(t *testing.T) {
		cands := []orderCandidate{{Provider: "b", Model: "m", Index: 1}, {Provider: "a", Model: "m", Index: 0}}
		got := orderCandidates(OrderLatency, cands, nil, nil)
		assert.Equal(t, []string{"a/m", "b/m"}, candidateNames(got))
	})
}

func TestOrderWeightedRandomDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		// wantFirst is the expected share of orderings that start with each candidate.
		wantFirst []float64
	}{
		{"three to one", []float64{3, 1}, []float64{0.75, 0.25}},
		{"five three two", []float64{5, 3, 2}, []float64{0.5, 0.3, 0.2}},
		{"equal", []float64{1, 1, 1, 1}, []float64{0.25, 0.25, 0.25, 0.25}},
		{"zero weight never first", []float64{0, 2, 2}, []float64{0, 0.5, 0.5}},
	}
	const rounds = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, 2))
			firsts := make([]int, len(tt.weights))
			cands := make([]orderCandidate, len(tt.weights))
			for range rounds {
				for i, w := range tt.weights {
					cands[i] = orderCandidate{Provider: "p" + strconv.Itoa(i), Index: i, Weight: w}
				}
				got := orderCandidates(OrderWeightedRandom, cands, nil, rnd)
				firsts[got[0].Index]++
			}
			for i, want := range tt.wantFirst {
				share := float64(firsts[i]) / rounds
				assert.InDelta(t, want, share, 0.015, "candidate %d first in %.3f of orderings", i, share)
			}
		})
	}
}

func TestOrderWeightedRandomSecondPlace(t *testing.T) {
	// With weights 6, 3, 1 the second place goes to candidate 1 with
	// probability 0.6*(3/4) + 0.1*(3/9) = 0.4833…, computed by hand from
	// drawing without replacement.
	rnd := rand.New(rand.NewPCG(7, 7))
	const rounds = 20000
	second := 0
	cands := make([]orderCandidate, 3)
	for range rounds {
		for i, w := range []float64{6, 3, 1} {
			cands[i] = orderCandidate{Index: i, Weight: w}
		}
		if orderCandidates(OrderWeightedRandom, cands, nil, rnd)[1].Index == 1 {
			second++
		}
	}
	assert.InDelta(t, 0.6*0.75+0.1*(3.0/9.0), float64(second)/rounds, 0.015)
}

func TestOrderWeightedRandomDeterministic(t *testing.T) {
	run := func() [][]string {
		rnd := rand.New(rand.NewPCG(42, 0))
		var orders [][]string
		for range 20 {
			cands := []orderCandidate{{Provider: "a", Index: 0, Weight: 1}, {Provider: "b", Index: 1, Weight: 1}, {Provider: "c", Index: 2, Weight: 1}}
			orders = append(orders, candidateNames(orderCandidates(OrderWeightedRandom, cands, nil, rnd)))
		}
		return orders
	}
	assert.Equal(t, run(), run())
}

func TestOrderWeightedRandomUnweightedLast(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		cands := []orderCandidate{
			{Provider: "zero", Index: 0, Weight: 0},
			{Provider: "a", Index: 1, Weight: 1},
			{Provider: "negative", Index: 2, Weight: -1},
			{Provider: "nan", Index: 3, Weight: math.NaN()},
			{Provider: "b", Index: 4, Weight: 1e-300},
		}
		got := candidateNames(orderCandidates(OrderWeightedRandom, cands, nil, rnd))
		assert.ElementsMatch(t, []string{"a/", "b/"}, got[:2])
		assert.Equal(t, []string{"zero/", "negative/", "nan/"}, got[2:])
	}
}

func TestOrderWeightedRandomGlobalSource(t *testing.T) {
	cands := []orderCandidate{{Provider: "a", Index: 0, Weight: 1}, {Provider: "b", Index: 1, Weight: 0}}
	got := orderCandidates(OrderWeightedRandom, cands, nil, nil)
	assert.Equal(t, []string{"a/", "b/"}, candidateNames(got))
}

func TestLatencyTrackerEWMA(t *testing.T) {
	lat := newLatencyTracker()
	_, ok := lat.ewma("p", "m")
	assert.False(t, ok, "nothing observed")

	lat.observe("p", "m", 10*time.Second)
	got, ok := lat.ewma("p", "m")
	require.True(t, ok)
	assert.Equal(t, 10*time.Second, got, "first observation is the average")

	lat.observe("p", "m", 20*time.Second)
	got, _ = lat.ewma("p", "m")
	assert.Equal(t, 12*time.Second, got, "10s + 0.2*(20s-10s)")

	lat.observe("p", "m", 2*time.Second)
	got, _ = lat.ewma("p", "m")
	assert.Equal(t, 10*time.Second, got, "12s + 0.2*(2s-12s)")

	lat.observe("p", "m", -time.Second)
	got, _ = lat.ewma("p", "m")
	assert.Equal(t, 10*time.Second, got, "negative ignored")

	_, ok = lat.ewma("p", "other")
	assert.False(t, ok, "models are tracked apart")
}

func TestLatencyTrackerConverges(t *testing.T) {
	lat := newLatencyTracker()
	lat.observe("p", "m", time.Minute)
	for range 50 {
		lat.observe("p", "m", 5*time.Second)
	}
	got, _ := lat.ewma("p", "m")
	assert.InDelta(t, float64(5*time.Second), float64(got), float64(10*time.Millisecond))
}

func TestLatencyTrackerBounded(t *testing.T) {
	lat := newLatencyTracker()
	for i := range latencyMaxEntries + 10 {
		lat.observe("p", "m"+strconv.Itoa(i), time.Second)
	}
	assert.Len(t, lat.entries, latencyMaxEntries)
	_, ok := lat.ewma("p", "m"+strconv.Itoa(latencyMaxEntries))
	assert.False(t, ok, "pairs beyond the cap are not tracked")

	cands := []orderCandidate{{Provider: "p", Model: "new", Index: 0}, {Provider: "p", Model: "m0", Index: 1}}
	got := orderCandidates(OrderLatency, cands, lat, nil)
	assert.Equal(t, []string{"p/m0", "p/new"}, candidateNames(got), "untracked pair comes last")
}

func TestLatencyTrackerConcurrent(t *testing.T) {
	lat := newLatencyTracker()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			model := "m" + strconv.Itoa(g%2)
			for i := range 1000 {
				lat.observe("p", model, time.Duration(i)*time.Millisecond)
				lat.ewma("p", model)
				cands := []orderCandidate{{Provider: "p", Model: "m0", Index: 0}, {Provider: "p", Model: "m1", Index: 1}, {Provider: "q", Model: "m", Index: 2}}
				orderCandidates(OrderLatency, cands, lat, nil)
			}
		})
	}
	wg.Wait()
	_, ok := lat.ewma("p", "m0")
	assert.True(t, ok)
}

func TestOrderCandidatesAllocs(t *testing.T) {
	lat := newLatencyTracker()
	lat.observe("a", "m", time.Second)
	lat.observe("b", "m", 2*time.Second)
	lat.observe("c", "m", 3*time.Second)
	rnd := rand.New(rand.NewPCG(1, 1))
	cands := benchmarkCandidates()
	for _, s := range []Strategy{OrderPriority, OrderCost, OrderLatency, OrderWeightedRandom} {
		allocs := testing.AllocsPerRun(100, func() {
			orderCandidates(s, cands, lat, rnd)
		})
		assert.Zero(t, allocs, "strategy %s", s)
	}
}

func TestStrategyString(t *testing.T) {
	assert.Equal(t, "priority", OrderPriority.String())
	assert.Equal(t, "cost", OrderCost.String())
	assert.Equal(t, "latency", OrderLatency.String())
	assert.Equal(t, "weighted_random", OrderWeightedRandom.String())
	assert.Equal(t, "strategy(7)", Strategy(7).String())
}

func benchmarkCandidates() []orderCandidate {
	return []orderCandidate{
		{Provider: "c", Model: "m", Index: 2, Weight: 1, EstimatedCost: estimatedCost(0.04)},
		{Provider: "a", Model: "m", Index: 0, Weight: 3, EstimatedCost: estimatedCost(0.19)},
		{Provider: "b", Model: "m", Index: 1, Weight: 2},
	}
}

func BenchmarkOrderCandidates(b *testing.B) {
	lat := newLatencyTracker()
	lat.observe("a", "m", 3*time.Second)
	lat.observe("b", "m", 2*time.Second)
	lat.observe("c", "m", time.Second)
	for _, s := range []Strategy{OrderPriority, OrderCost, OrderLatency, OrderWeightedRandom} {
		b.Run(s.String(), func(b *testing.B) {
			rnd := rand.New(rand.NewPCG(1, 1))
			cands := benchmarkCandidates()
			b.ReportAllocs()
			for b.Loop() {
				orderCandidates(s, cands, lat, rnd)
			}
		})
	}
}
