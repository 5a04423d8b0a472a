// Package imagegenprom exports the events of an imagegen Client as
// Prometheus metrics, using github.com/prometheus/client_golang.
//
// The package is named imagegenprom rather than after its directory so that
// it can be imported next to client_golang's prometheus package without an
// alias:
//
//	m, err := imagegenprom.New(prometheus.DefaultRegisterer, imagegenprom.Options{})
//	if err != nil {
//		return err
//	}
//	// Pass imagegen.WithHooks(m.Hooks()) to the Client's constructor.
//
// # Metrics
//
// Every name starts with Options.Namespace, "imagegen" by default:
//
//	imagegen_attempts_total{provider,model,class}           provider calls; class is "none" on success
//	imagegen_attempt_duration_seconds{provider,model,result} provider call latency; result is "success" or "error"
//	imagegen_requests_total{provider,model,result,class}    Generate and Edit calls
//	imagegen_request_duration_seconds{provider,model,result} wall time of whole calls
//	imagegen_retries_total{provider,model,class}            retries of the same provider and model
//	imagegen_fallbacks_total{from,to}                       moves to the next provider or model
//	imagegen_rate_limited_total{provider,model}             attempts answered with a rate limit (HTTP 429)
//	imagegen_rate_limit_wait_seconds{provider,model}        waits for the Client's rate limiter
//	imagegen_images_total{provider,model}                   images returned by successful attempts
//	imagegen_cost_usd_total{provider,model,kind}            cost in US dollars; kind is "known" or "estimated"
//	imagegen_unknown_cost_requests_total{provider,model}    successful calls whose cost is unknown
//	imagegen_cache_total{result}                            cache operations; result is "hit", "miss" or "error"
//	imagegen_breaker_state{provider}                        0 closed, 1 open, 2 half open
//
// In requests_total and request_duration_seconds, provider and model are
// those of the call's last attempt, or "none" for a call that used no
// provider. result is "success", "error", "cached" (served from the cache)
// or "shared" (served by an identical call in flight). class is the
// failure's imagegen.Class name, or "none" when the call did not fail. In
// fallbacks_total, from and to are "provider/model". Cost and
// unknown_cost_requests_total count only results that a provider produced
// for this call, not cached or shared ones.
//
// # Cardinality
//
// Model names, and to a lesser degree provider names, are caller data. Each
// of the provider, model and from/to labels keeps at most
// Options.MaxLabelValues distinct values (64 by default); later values are
// reported as "other". Label values that are not valid UTF-8 have the
// invalid bytes replaced by U+FFFD.
package imagegenprom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegen-go/imagegen"
)

// OverflowLabelValue replaces a provider, model or from/to label value once
// that label already has Options.MaxLabelValues distinct values.
const OverflowLabelValue = "other"

// noneLabelValue fills the provider and model of a call that used no
// provider, and the class of an event that is not a failure.
const noneLabelValue = "none"

const (
	defaultNamespace      = "imagegen"
	defaultMaxLabelValues = 64
)

// Options configures New. The zero value is ready to use.
type Options struct {
	// Namespace prefixes every metric name, followed by an underscore. It
	// may contain ASCII letters, digits and underscores and must not start
	// with a digit. Empty means "imagegen".
	Namespace string

	// MaxLabelValues caps the distinct values of each of the provider,
	// model and from/to labels; later values become OverflowLabelValue.
	// 0 means 64. Negative values are an error.
	MaxLabelValues int

	// DurationBuckets are the upper bounds, in seconds, of the buckets of
	// attempt_duration_seconds and request_duration_seconds. They must be
	// finite and strictly increasing. Nil means DefaultDurationBuckets().
	DurationBuckets []float64

	// WaitBuckets are the upper bounds, in seconds, of the buckets of
	// rate_limit_wait_seconds, under the same rules. Nil means
	// DefaultWaitBuckets().
	WaitBuckets []float64
}

// DefaultDurationBuckets returns the default buckets of attempt and request
// durations, in seconds: from 0.1 s for rejected requests to 10 minutes, the
// range of image generation calls.
func DefaultDurationBuckets() []float64 {
	return []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}
}

// DefaultWaitBuckets returns the default buckets of rate-limit waits, in
// seconds, from 10 ms to 2 minutes.
func DefaultWaitBuckets() []float64 {
	return []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120}
}

// Metrics holds the collectors that New registered. Its Hooks update them.
// It is safe for concurrent use.
type Metrics struct {
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	rateLimitWait   *prometheus.HistogramVec
	images          *prometheus.CounterVec
	cost            *prometheus.CounterVec
	unknownCost     *prometheus.CounterVec
	cache           *prometheus.CounterVec
	breaker         *prometheus.GaugeVec

	providers *labelLimiter
	models    *labelLimiter
	routes    *labelLimiter
}

// New creates the metrics described in the package documentation and
// registers them with reg. It returns an error when reg is nil, when opts is
// invalid, or when a registration fails, for example because a Metrics with
// the same Namespace is already registered with reg. After a failed
// registration it unregisters the metrics it had registered.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("imagegen: nil prometheus.Registerer; pass prometheus.DefaultRegisterer or prometheus.NewRegistry()")
	}
	ns := opts.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	if !validNamespace(ns) {
		return nil, fmt.Errorf("imagegen: invalid Namespace %q: use letters, digits and underscores, not starting with a digit", ns)
	}
	maxValues := opts.MaxLabelValues
	switch {
	case maxValues < 0:
		return nil, fmt.Errorf("imagegen: invalid MaxLabelValues %d: use 0 for the default of %d, or a positive cap", maxValues, defaultMaxLabelValues)
	case maxValues == 0:
		maxValues = defaultMaxLabelValues
	}
	durationBuckets, err := checkBuckets("DurationBuckets", opts.DurationBuckets, DefaultDurationBuckets)
	if err != nil {
		return nil, err
	}
	waitBuckets, err := checkBuckets("WaitBuckets", opts.WaitBuckets, DefaultWaitBuckets)
	if err != nil {
		return nil, err
	}

	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &Metrics{
		attempts: counter("attempts_total",
			"Provider calls, by failure class (none on success).", "provider", "model", "class"),
		attemptDuration: histogram("attempt_duration_seconds",
			"Latency of provider calls, in seconds.", durationBuckets, "provider", "model", "result"),
		requests: counter("requests_total",
			"Generate and Edit calls, by the provider and model of the last attempt, result and failure class.",
			"provider", "model", "result", "class"),
		requestDuration: histogram("request_duration_seconds",
			"Wall time of Generate and Edit calls, including waits, retries and fallbacks, in seconds.",
			durationBuckets, "provider", "model", "result"),
		retries: counter("retries_total",
			"Retries of the same provider and model, by the class of the failure retried.", "provider", "model", "class"),
		fallbacks: counter("fallbacks_total",
			"Moves from one provider/model to the next.", "from", "to"),
		rateLimited: counter("rate_limited_total",
			"Provider calls answered with a rate limit (HTTP 429).", "provider", "model"),
		rateLimitWait: histogram("rate_limit_wait_seconds",
			"Time spent waiting for the client-side rate limiter, in seconds.", waitBuckets, "provider", "model"),
		images: counter("images_total",
			"Images returned by successful provider calls.", "provider", "model"),
		cost: counter("cost_usd_total",
			"Cost of successful calls in US dollars, from reported usage (known) or the catalog (estimated).",
			"provider", "model", "kind"),
		unknownCost: counter("unknown_cost_requests_total",
			"Successful calls whose cost is unknown.", "provider", "model"),
		cache: counter("cache_total",
			"Cache operations, by result (hit, miss or error).", "result"),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "breaker_state",
			Help: "Circuit breaker state per provider: 0 closed, 1 open, 2 half open.",
		}, []string{"provider"}),
		providers: newLabelLimiter(maxValues),
		models:    newLabelLimiter(maxValues),
		routes:    newLabelLimiter(maxValues),
	}

	var registered []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, done := range registered {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("imagegen: register Prometheus metrics with namespace %q: %w", ns, err)
		}
		registered = append(registered, c)
	}
	return m, nil
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.attempts, m.attemptDuration, m.requests, m.requestDuration, m.retries, m.fallbacks,
		m.rateLimited, m.rateLimitWait, m.images, m.cost, m.unknownCost, m.cache, m.breaker,
	}
}

// validNamespace reports whether ns fits the classic metric name syntax,
// which every PromQL version accepts without quoting. client_golang itself
// accepts any UTF-8 name.
func validNamespace(ns string) bool {
	for i, r := range ns {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkBuckets returns a copy of buckets, or the defaults when buckets is
// nil, and an error when they are not finite and strictly increasing.
func checkBuckets(field string, buckets []float64, defaults func() []float64) ([]float64, error) {
	if buckets == nil {
		return defaults(), nil
	}
	if len(buckets) == 0 {
		return nil, fmt.Errorf("imagegen: invalid %s: empty; pass nil for the defaults", field)
	}
	for i, b := range buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("imagegen: invalid %s: bucket %d is %v; bounds must be finite", field, i, b)
		}
		if i > 0 && b <= buckets[i-1] {
			return nil, fmt.Errorf("imagegen: invalid %s: %v follows %v; bounds must be strictly increasing", field, b, buckets[i-1])
		}
	}
	return slices.Clone(buckets), nil
}

// Hooks returns callbacks that update the metrics, for imagegen.WithHooks.
// AttemptStart is nil; every other field is set.
func (m *Metrics) Hooks() imagegen.Hooks {
	return imagegen.Hooks{
		AttemptEnd:    m.attemptEnd,
		Retry:         m.retry,
		Fallback:      m.fallback,
		RateLimitWait: m.rateLimitWaited,
		BreakerChange: m.breakerChange,
		CacheHit:      func(context.Context, imagegen.CacheEvent) { m.cache.WithLabelValues("hit").Inc() },
		CacheMiss:     func(context.Context, imagegen.CacheEvent) { m.cache.WithLabelValues("miss").Inc() },
		CacheError:    func(context.Context, imagegen.CacheEvent) { m.cache.WithLabelValues("error").Inc() },
		Done:          m.done,
	}
}

// pair returns the capped provider and model label values.
func (m *Metrics) pair(provider, model string) (string, string) {
	return m.providers.value(provider), m.models.value(model)
}

func (m *Metrics) attemptEnd(_ context.Context, e imagegen.AttemptEndEvent) {
	provider, model := m.pair(e.Provider, e.Model)
	class, result := noneLabelValue, "success"
	if e.Err != nil {
		class, result = e.Class.String(), "error"
	}
	m.attempts.WithLabelValues(provider, model, class).Inc()
	m.attemptDuration.WithLabelValues(provider, model, result).Observe(max(e.Latency.Seconds(), 0))
	if e.Err != nil && e.Class == imagegen.ClassRateLimited {
		m.rateLimited.WithLabelValues(provider, model).Inc()
	}
	if e.Err == nil && e.Images > 0 {
		m.images.WithLabelValues(provider, model).Add(float64(e.Images))
	}
}

func (m *Metrics) retry(_ context.Context, e imagegen.RetryEvent) {
	provider, model := m.pair(e.Provider, e.Model)
	m.retries.WithLabelValues(provider, model, e.Class.String()).Inc()
}

func (m *Metrics) fallback(_ context.Context, e imagegen.FallbackEvent) {
	from := m.routes.value(e.FromProvider + "/" + e.FromModel)
	to := m.routes.value(e.ToProvider + "/" + e.ToModel)
	m.fallbacks.WithLabelValues(from, to).Inc()
}

func (m *Metrics) rateLimitWaited(_ context.Context, e imagegen.RateLimitWaitEvent) {
	provider, model := m.pair(e.Provider, e.Model)
	m.rateLimitWait.WithLabelValues(provider, model).Observe(max(e.Wait.Seconds(), 0))
}

func (m *Metrics) breakerChange(_ context.Context, e imagegen.BreakerEvent) {
	m.breaker.WithLabelValues(m.providers.value(e.Provider)).Set(float64(e.To))
}

func (m *Metrics) done(_ context.Context, e imagegen.DoneEvent) {
	provider, model := noneLabelValue, noneLabelValue
	if e.Provider != "" || e.Model != "" {
		provider, model = m.pair(e.Provider, e.Model)
	}
	result, class := "success", noneLabelValue
	switch {
	case e.Err != nil:
		result, class = "error", e.Class.String()
	case e.Result != nil && e.Result.Cached:
		result = "cached"
	case e.Result != nil && e.Result.Shared:
		result = "shared"
	}
	m.requests.WithLabelValues(provider, model, result, class).Inc()
	m.requestDuration.WithLabelValues(provider, model, result).Observe(max(e.Latency.Seconds(), 0))

	if result != "success" || e.Result == nil {
		return
	}
	cost := e.Result.Cost
	switch {
	case !cost.Known, math.IsNaN(cost.USD), math.IsInf(cost.USD, 0), cost.USD < 0:
		m.unknownCost.WithLabelValues(provider, model).Inc()
	case cost.Estimated:
		m.cost.WithLabelValues(provider, model, "estimated").Add(cost.USD)
	default:
		m.cost.WithLabelValues(provider, model, "known").Add(cost.USD)
	}
}

// labelLimiter caps the distinct values of one label. It is safe for
// concurrent use.
type labelLimiter struct {
	mu   sync.RWMutex
	max  int
	seen map[string]struct{}
}

func newLabelLimiter(maxValues int) *labelLimiter {
	return &labelLimiter{max: maxValues, seen: make(map[string]struct{})}
}

// value returns v made valid UTF-8 if it is one of the first max distinct
// values seen, and OverflowLabelValue otherwise.
func (l *labelLimiter) value(v string) string {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	l.mu.RLock()
	_, ok := l.seen[v]
	l.mu.RUnlock()
	if ok {
		return v
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return OverflowLabelValue
	}
	l.seen[v] = struct{}{}
	return v
}
