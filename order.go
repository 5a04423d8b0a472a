package imagegen

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Strategy is the order in which the Client tries the providers and models
// of a call. The zero value is OrderPriority. Whatever the strategy, a
// failed attempt falls back to the next candidate in the chosen order.
type Strategy int

const (
	// OrderPriority tries candidates in the order they were configured.
	OrderPriority Strategy = iota

	// OrderCost tries the candidate with the lowest estimated cost for the
	// request first. Candidates whose cost is unknown come last. Candidates
	// with equal costs keep their configured order.
	OrderCost

	// OrderLatency tries the candidate with the lowest observed latency
	// first. Latency is an exponentially weighted moving average of the
	// successful calls to each provider and model, in which the newest call
	// has weight 0.2. Candidates with equal latencies keep their configured
	// order.
	//
	// A candidate without any observation is tried first, so that it gets
	// measured, but only for its first 3 orderings: a candidate whose calls
	// keep failing would otherwise lead every call. After that it comes
	// after every measured candidate, in configured order, until one of
	// its calls succeeds.
	OrderLatency

	// OrderWeightedRandom picks the first candidate at random with a
	// probability proportional to its weight, then the second among the
	// rest the same way, and so on. This spreads load across providers.
	// Candidates with a zero or negative weight come last, in configured order.
	OrderWeightedRandom
)

// String returns "priority", "cost", "latency" or "weighted_random".
func (s Strategy) String() string {
	switch s {
	case OrderPriority:
		return "priority"
	case OrderCost:
		return "cost"
	case OrderLatency:
		return "latency"
	case OrderWeightedRandom:
		return "weighted_random"
	}
	return "strategy(" + strconv.Itoa(int(s)) + ")"
}

// orderCandidate is one provider and model that the Client may try for a call.
type orderCandidate struct {
	Provider string
	Model    string
	// Index is the candidate's position in the configured order, which
	// breaks ties between candidates of equal rank.
	Index int
	// Weight is the candidate's share for OrderWeightedRandom. Zero,
	// negative and NaN weights put it after every candidate with a positive
	// weight.
	Weight float64
	// EstimatedCost is the cost of the call on this candidate, for OrderCost.
	EstimatedCost Cost

	// orderKey is scratch space for orderCandidates: the candidate's rank,
	// lowest first.
	orderKey float64
}

// orderCandidates sorts cands in place by strategy s and returns cands. It
// allocates nothing. lat is required for OrderLatency and rnd is optional
// for OrderWeightedRandom: without lat, OrderLatency falls back to the
// configured order, and without rnd, OrderWeightedRandom uses math/rand/v2's
// goroutine-safe global source. rnd is not safe for concurrent use, so the
// caller must not share it between goroutines without a lock. An unknown
// strategy keeps the configured order.
func orderCandidates(s Strategy, cands []orderCandidate, lat *latencyTracker, rnd *rand.Rand) []orderCandidate {
	switch s {
	case OrderCost:
		for i := range cands {
			cands[i].orderKey = costOrderKey(cands[i].EstimatedCost)
		}
	case OrderLatency:
		if lat == nil {
			setPriorityOrderKeys(cands)
		} else {
			lat.setOrderKeys(cands)
		}
	case OrderWeightedRandom:
		for i := range cands {
			cands[i].orderKey = weightedOrderKey(cands[i].Weight, rnd)
		}
	default:
		setPriorityOrderKeys(cands)
	}

	slices.SortStableFunc(cands, compareCandidates)
	return cands
}

// compareCandidates orders candidates by orderKey, then by configured order.
func compareCandidates(a, b orderCandidate) int {
	if c := cmp.Compare(a.orderKey, b.orderKey); c != 0 {
		return c
	}
	return cmp.Compare(a.Index, b.Index)
}

func setPriorityOrderKeys(cands []orderCandidate) {
	for i := range cands {
		cands[i].orderKey = 0
	}
}

// costOrderKey returns the rank of a cost: its amount when known, otherwise
// +Inf so that unknown costs come last.
func costOrderKey(c Cost) float64 {
	if !c.Known || math.IsNaN(c.USD) {
		return math.Inf(1)
	}
	return min(c.USD, math.MaxFloat64)
}

// weightedOrderKey returns a random rank for a candidate of weight w such
// that sorting by it yields a weighted random order without replacement.
// The key -ln(u)/w, with u uniform in (0, 1], is exponentially distributed
// with rate w, and the minimum of independent exponential variables falls
// on each one with probability proportional to its rate. Candidates without
// a positive weight get +Inf and come last.
func weightedOrderKey(w float64, rnd *rand.Rand) float64 {
	if !(w > 0) {
		return math.Inf(1)
	}
	var u float64
	if rnd != nil {
		u = 1 - rnd.Float64()
	} else {
		u = 1 - rand.Float64()
	}
	return min(-math.Log(u)/w, math.MaxFloat64)
}

// Latency tracking constants.
const (
	// latencyAlpha is the weight of the newest observation in the moving
	// average. With 0.2 the last ten calls carry about 90 % of the weight.
	latencyAlpha = 0.2
	// latencyExplorations is how many times OrderLatency puts an unmeasured
	// candidate first before it gives up until an observation arrives.
	latencyExplorations = 3
	// latencyMaxEntries caps the number of provider and model pairs that a
	// tracker remembers, because models come from callers' requests.
	// Pairs beyond the cap are neither measured nor explored.
	latencyMaxEntries = 1024
)

type latencyKey struct {
	provider string
	model    string
}

type latencyEntry struct {
	// average is the moving average in nanoseconds, valid when samples > 0.
	average float64
	samples int64
	// explorations counts the orderings that put the pair first while it
	// had no samples.
	explorations int
}

// latencyTracker keeps an exponentially weighted moving average of the
// latency of each provider and model. It is safe for concurrent use.
type latencyTracker struct {
	mu      sync.Mutex
	entries map[latencyKey]*latencyEntry
}

// newLatencyTracker returns an empty tracker.
func newLatencyTracker() *latencyTracker {
	return &latencyTracker{entries: make(map[latencyKey]*latencyEntry)}
}

// observe adds the latency d of one successful call to provider and model.
// The caller should observe successful calls only, because a fast failure
// would make a broken provider look fast. Negative durations are ignored.
func (l *latencyTracker) observe(provider, model string, d time.Duration) {
	if d < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()

	e := l.entryLocked(latencyKey{provider, model})
	if e == nil {
		return
	}
	if e.samples == 0 {
		e.average = float64(d)
	} else {
		e.average += latencyAlpha * (float64(d) - e.average)
	}
	e.samples++
}

// ewma returns the moving average latency of provider and model, and false
// when no call to them has been observed.
func (l *latencyTracker) ewma(provider, model string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()

	e := l.entries[latencyKey{provider, model}]
	if e == nil || e.samples == 0 {
		return 0, false
	}
	return time.Duration(e.average), true
}

// setOrderKeys sets the orderKey of each candidate for OrderLatency: the
// average latency in nanoseconds when measured, -1 for an unmeasured
// candidate that is still being explored, and +Inf for one that is not.
// Each candidate put first for exploration uses up one exploration.
func (l *latencyTracker) setOrderKeys(cands []orderCandidate) {
	l.mu.Lock()
	defer l.mu.Unlock()

	for i := range cands {
		c := &cands[i]
		e := l.entryLocked(latencyKey{c.Provider, c.Model})
		switch {
		case e == nil:
			c.orderKey = math.Inf(1)
		case e.samples > 0:
			c.orderKey = e.average
		case e.explorations < latencyExplorations:
			e.explorations++
			c.orderKey = -1
		default:
			c.orderKey = math.Inf(1)
		}
	}
}

// entryLocked returns the entry for key, creating it when the tracker has
// room, or nil when it is full.
func (l *latencyTracker) entryLocked(key latencyKey) *latencyEntry {
	if e, ok := l.entries[key]; ok {
		return e
	}
	if len(l.entries) >= latencyMaxEntries {
		return nil
	}
	e := &latencyEntry{}
	l.entries[key] = e
	return e
}
