package imagegen

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"
)

// StatsOverflowName is the Provider and Model of the series that collects
// the events of every provider and model pair seen after the first 256
// distinct pairs. It bounds the memory that Stats uses when callers pass
// many distinct model names.
const StatsOverflowName = "other"

// statsMaxSeries caps the distinct provider and model pairs that get their
// own series. Each series costs about 3.5 KiB, so the cap bounds the
// collector to about 1 MiB.
const statsMaxSeries = 256

// Stats is a copy of the figures a Client collected since Since. All counts
// are cumulative. The zero value is an empty report.
//
// Two units are counted. A call is one Generate or Edit call. An attempt is
// one request sent to a provider; a call makes one attempt or more, across
// one provider and model or more.
//
// json.Marshal encodes Stats as {"since", "providers", "totals", "cache"}:
// since as RFC 3339 text, every duration as float milliseconds under a key
// ending in "_ms", every other key in snake_case. The MarshalJSON methods of
// ProviderStats, TotalStats, LatencyStats and ClassCounts list their keys.
type Stats struct {
	// Since is when collection started.
	Since time.Time `json:"since"`
	// Providers has one entry per provider and model that was tried, sorted
	// by Provider, then Model.
	Providers []ProviderStats `json:"providers"`
	// Totals are the figures for all calls together.
	Totals TotalStats `json:"totals"`
	// Cache counts cache lookups and errors. The cache is consulted before a
	// provider is chosen, so these figures belong to no provider.
	Cache CacheStats `json:"cache"`
}

// ProviderStats are the figures of one provider and model pair.
//
// Calls counts the part of a Generate or Edit call spent on this pair: from
// its first attempt here until it succeeds here, falls back to another pair
// or ends with an error while on this pair. A call that falls back from A to
// B counts as a failed call on A and a call on B. So when fallbacks happen,
// the Calls of all pairs add up to more than Totals.Calls. Cache hits count
// on no pair. Calls is always Successes plus Failures.
type ProviderStats struct {
	// Provider is the provider's name and Model the requested model, both as
	// the Client passed them, or StatsOverflowName for the overflow series.
	Provider string
	Model    string

	// Calls, Successes and Failures count calls as described above.
	Calls     int64
	Successes int64
	Failures  int64
	// FailuresByClass counts failed calls by the class of the error that
	// made them leave this pair. It adds up to Failures.
	FailuresByClass ClassCounts

	// AttemptStats are the figures of the attempts sent to this pair.
	AttemptStats

	// Latency is the latency of successful attempts, the provider call
	// alone. Failed attempts are left out because a rejected request returns
	// in milliseconds and would hide how long the model takes to generate.
	Latency LatencyStats
}

// SuccessRate returns Successes divided by Calls, between 0 and 1, or 0 when
// Calls is 0.
func (p ProviderStats) SuccessRate() float64 {
	return statsRatio(p.Successes, p.Calls)
}

// TotalStats are the figures of all calls together.
type TotalStats struct {
	// Calls counts Generate and Edit calls that ended, Successes those that
	// returned images and Failures those that returned an error.
	Calls     int64
	Successes int64
	Failures  int64
	// FailuresByClass counts failed calls by the class of their error. It
	// adds up to Failures.
	FailuresByClass ClassCounts
	// CachedCalls and SharedCalls count the successful calls served from the
	// cache or from an identical call in flight.
	CachedCalls int64
	SharedCalls int64
	// Latency is the latency of successful calls, the wall time of the whole
	// call including rate-limit waits, retries, fallbacks and cache lookups.
	Latency LatencyStats

	// AttemptStats are the sums of the same figures over all providers.
	AttemptStats
}

// SuccessRate returns Successes divided by Calls, between 0 and 1, or 0 when
// Calls is 0.
func (t TotalStats) SuccessRate() float64 {
	return statsRatio(t.Successes, t.Calls)
}

// AttemptStats are the figures of the attempts sent to providers: attempts
// and their failures, retries, fallbacks, rate limits, images and cost.
// Cost is billed for the successful attempt that ends a call, and is
// recorded on that attempt's provider and model.
type AttemptStats struct {
	// Attempts counts requests sent to providers, and FailedAttempts those
	// that returned an error.
	Attempts       int64
	FailedAttempts int64
	// AttemptFailuresByClass counts failed attempts by class. It adds up to
	// FailedAttempts.
	AttemptFailuresByClass ClassCounts
	// RateLimited counts attempts rejected with a rate limit (HTTP 429,
	// ClassRateLimited). It equals AttemptFailuresByClass.Count(ClassRateLimited).
	RateLimited int64

	// Retries counts retries of the same pair after a failed attempt.
	Retries int64
	// Fallbacks counts moves from one pair to another.
	Fallbacks int64

	// RateLimitWaits counts the rate limiter's waits that lasted 1 ms or
	// more or failed. RateLimitWait is their total duration, and
	// RateLimitWaitErrors counts the waits that failed.
	RateLimitWaits      int64
	RateLimitWait       time.Duration
	RateLimitWaitErrors int64

	// Images counts images returned by successful attempts.
	Images int64

	// CostUSD is the total cost, in US dollars, of the successful calls
	// whose cost came from the usage the service reported.
	// EstimatedCostUSD is the total of those whose cost the catalog
	// estimated. UnknownCostCalls counts successful calls whose cost is
	// unknown and is in neither total. Results from the cache or shared with
	// another caller cost nothing and are not counted.
	CostUSD          float64
	EstimatedCostUSD float64
	UnknownCostCalls int64
}

// CacheStats counts cache operations. Hits and Misses count lookups; Errors
// counts failed lookups and stores, which never fail a call.
type CacheStats struct {
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	Errors int64 `json:"errors"`
}

// HitRate returns Hits divided by Hits plus Misses, or 0 when there were no
// lookups.
func (c CacheStats) HitRate() float64 {
	return statsRatio(c.Hits, c.Hits+c.Misses)
}

// LatencyStats summarizes a latency distribution. Percentiles are estimates
// from a logarithmic histogram: within 2% of the exact nearest-rank value
// between 1 ms and 1 h, within 1 ms below 1 ms, and reported as Max at or
// above 1 h. Mean and Max are exact. Every field is 0 when Count is 0.
type LatencyStats struct {
	Count int64
	Mean  time.Duration
	P50   time.Duration
	P95   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// ClassCounts holds one count per error Class, indexed by Class: cc[c] is
// the count of class c, for every c that Classes returns.
type ClassCounts [numClasses]int64

// Count returns the count of class c, or 0 for a value outside Classes().
func (cc ClassCounts) Count(c Class) int64 {
	if c < 0 || int(c) >= len(cc) {
		return 0
	}
	return cc[c]
}

// Total returns the sum of all counts.
func (cc ClassCounts) Total() int64 {
	var n int64
	for _, v := range cc {
		n += v
	}
	return n
}

func (cc *ClassCounts) add(c Class) {
	if c < 0 || int(c) >= len(cc) {
		c = ClassUnknown
	}
	cc[c]++
}

func (cc *ClassCounts) addAll(other ClassCounts) {
	for i, v := range other {
		cc[i] += v
	}
}

func statsRatio(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// statsRecorder collects the figures behind Stats. The Client calls its
// record methods with the same events it passes to Hooks. It is safe for
// concurrent use. One mutex guards everything, so snapshot includes each
// record call either wholly or not at all. A record call holds the mutex for a map
// lookup and a few additions and allocates only when it creates a series.
// A nil *statsRecorder records nothing.
type statsRecorder struct {
	mu        sync.Mutex
	since     time.Time
	maxSeries int
	series    map[statsKey]*statsSeries
	calls     statsCallTotals
	cache     CacheStats
}

type statsKey struct {
	provider string
	model    string
}

// statsSeries accumulates one provider and model pair. Its stats.Latency is
// filled from latency at snapshot time.
type statsSeries struct {
	stats   ProviderStats
	latency latencyHistogram
}

// statsCallTotals are the call-level totals, which come from DoneEvent.
type statsCallTotals struct {
	calls, successes, failures int64
	failuresByClass            ClassCounts
	cached, shared             int64
	latency                    latencyHistogram
}

// newStatsRecorder returns an empty recorder whose Stats.Since is since.
func newStatsRecorder(since time.Time) *statsRecorder {
	return &statsRecorder{
		since:     since,
		maxSeries: statsMaxSeries,
		series:    make(map[statsKey]*statsSeries),
	}
}

// seriesLocked returns the series of provider and model, creating it, or
// the overflow series once maxSeries pairs exist. r.mu must be held.
func (r *statsRecorder) seriesLocked(provider, model string) *statsSeries {
	key := statsKey{provider, model}
	if s, ok := r.series[key]; ok {
		return s
	}
	if len(r.series) >= r.maxSeries {
		key = statsKey{StatsOverflowName, StatsOverflowName}
		if s, ok := r.series[key]; ok {
			return s
		}
	}
	s := &statsSeries{}
	s.stats.Provider = key.provider
	s.stats.Model = key.model
	r.series[key] = s
	return s
}

// recordAttemptEnd records one provider call. A successful attempt also ends
// the call's stay on its pair as a success.
func (r *statsRecorder) recordAttemptEnd(e AttemptEndEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	s := r.seriesLocked(e.Provider, e.Model)
	s.stats.Attempts++
	if e.Err == nil {
		s.stats.Calls++
		s.stats.Successes++
		s.stats.Images += int64(e.Images)
		s.latency.observe(e.Latency)
		return
	}
	s.stats.FailedAttempts++
	s.stats.AttemptFailuresByClass.add(e.Class)
	if e.Class == ClassRateLimited {
		s.stats.RateLimited++
	}
}

// recordRetry records a retry of the same pair.
func (r *statsRecorder) recordRetry(e RetryEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	r.seriesLocked(e.Provider, e.Model).stats.Retries++
}

// recordFallback records a move away from a pair, which ends the call's stay
// on that pair as a failure of class e.Class.
func (r *statsRecorder) recordFallback(e FallbackEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	s := r.seriesLocked(e.FromProvider, e.FromModel)
	s.stats.Fallbacks++
	s.stats.Calls++
	s.stats.Failures++
	s.stats.FailuresByClass.add(e.Class)
}

// recordRateLimitWait records a wait for a pair's rate limiter.
func (r *statsRecorder) recordRateLimitWait(e RateLimitWaitEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	s := r.seriesLocked(e.Provider, e.Model)
	s.stats.RateLimitWaits++
	s.stats.RateLimitWait += e.Wait
	if e.Err != nil {
		s.stats.RateLimitWaitErrors++
	}
}

// recordCacheHit records a cache lookup that found the result.
func (r *statsRecorder) recordCacheHit() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.cache.Hits++
	r.mu.Unlock()
}

// recordCacheMiss records a cache lookup that found nothing.
func (r *statsRecorder) recordCacheMiss() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.cache.Misses++
	r.mu.Unlock()
}

// recordCacheError records a failed cache lookup or store.
func (r *statsRecorder) recordCacheError() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.cache.Errors++
	r.mu.Unlock()
}

// recordDone records the end of a call. A failure also ends the call's stay
// on e.Provider and e.Model as a failure. A success adds the result's cost
// to that pair, unless the result came from the cache or another caller.
func (r *statsRecorder) recordDone(e DoneEvent) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	t := &r.calls
	t.calls++
	if e.Err != nil {
		t.failures++
		t.failuresByClass.add(e.Class)
		if e.Provider != "" || e.Model != "" {
			s := r.seriesLocked(e.Provider, e.Model)
			s.stats.Calls++
			s.stats.Failures++
			s.stats.FailuresByClass.add(e.Class)
		}
		return
	}

	t.successes++
	t.latency.observe(e.Latency)
	res := e.Result
	switch {
	case res == nil:
		return
	case res.Cached:
		t.cached++
		return
	case res.Shared:
		t.shared++
		return
	}

	s := r.seriesLocked(e.Provider, e.Model)
	switch {
	case !res.Cost.Known, math.IsNaN(res.Cost.USD), math.IsInf(res.Cost.USD, 0):
		s.stats.UnknownCostCalls++
	case res.Cost.Estimated:
		s.stats.EstimatedCostUSD += res.Cost.USD
	default:
		s.stats.CostUSD += res.Cost.USD
	}
}

// snapshot returns a copy of the figures recorded so far.
func (r *statsRecorder) snapshot() Stats {
	if r == nil {
		return Stats{}
	}
	r.mu.Lock()
	out := Stats{
		Since:     r.since,
		Providers: make([]ProviderStats, 0, len(r.series)),
		Cache:     r.cache,
	}
	for _, s := range r.series {
		p := s.stats
		p.Latency = s.latency.summary()
		out.Providers = append(out.Providers, p)
	}
	t := &out.Totals
	t.Calls = r.calls.calls
	t.Successes = r.calls.successes
	t.Failures = r.calls.failures
	t.FailuresByClass = r.calls.failuresByClass
	t.CachedCalls = r.calls.cached
	t.SharedCalls = r.calls.shared
	t.Latency = r.calls.latency.summary()
	r.mu.Unlock()

	// Sorting before summing keeps the float sums the same from one
	// snapshot to the next.
	slices.SortFunc(out.Providers, func(a, b ProviderStats) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model))
	})
	for _, p := range out.Providers {
		t.AttemptStats.add(p.AttemptStats)
	}
	return out
}

// add adds every figure of other to a.
func (a *AttemptStats) add(other AttemptStats) {
	a.Attempts += other.Attempts
	a.FailedAttempts += other.FailedAttempts
	a.AttemptFailuresByClass.addAll(other.AttemptFailuresByClass)
	a.RateLimited += other.RateLimited
	a.Retries += other.Retries
	a.Fallbacks += other.Fallbacks
	a.RateLimitWaits += other.RateLimitWaits
	a.RateLimitWait += other.RateLimitWait
	a.RateLimitWaitErrors += other.RateLimitWaitErrors
	a.Images += other.Images
	a.CostUSD += other.CostUSD
	a.EstimatedCostUSD += other.EstimatedCostUSD
	a.UnknownCostCalls += other.UnknownCostCalls
}
