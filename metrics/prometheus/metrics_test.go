package imagegenprom

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
)

func newTestMetrics(t *testing.T, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts)
	require.NoError(t, err)
	return m, reg
}

func failure(class imagegen.Class) error {
	return &imagegen.Error{Provider: "p", Class: class}
}

// driveScenario sends the hook calls of five Generate calls and one breaker
// change, in the order the Client makes them.
func driveScenario(ctx context.Context, h imagegen.Hooks) {
	const gptImage, dallE = "gpt-image-1", "dall-e-3"

	// A rate-limited attempt, a retry after a limiter wait, then success.
	h.CacheMiss(ctx, imagegen.CacheEvent{Op: "get"})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "openai", Model: gptImage, Attempt: 1,
		Latency: 200 * time.Millisecond, Err: failure(imagegen.ClassRateLimited), Class: imagegen.ClassRateLimited})
	h.Retry(ctx, imagegen.RetryEvent{Provider: "openai", Model: gptImage, Attempt: 1,
		Delay: time.Second, Err: failure(imagegen.ClassRateLimited), Class: imagegen.ClassRateLimited})
	h.RateLimitWait(ctx, imagegen.RateLimitWaitEvent{Provider: "openai", Model: gptImage, Wait: 1500 * time.Millisecond})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "openai", Model: gptImage, Attempt: 2,
		Latency: 30 * time.Second, Images: 2})
	h.Done(ctx, imagegen.DoneEvent{Provider: "openai", Model: gptImage, Latency: 32 * time.Second,
		Result: &imagegen.Result{Cost: imagegen.Cost{USD: 0.17, Known: true}}})

	// A server error on azure, a fallback, then success with an estimated cost.
	h.CacheMiss(ctx, imagegen.CacheEvent{Op: "get"})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "azure", Model: gptImage, Attempt: 1,
		Latency: time.Second, Err: failure(imagegen.ClassServer), Class: imagegen.ClassServer})
	h.Fallback(ctx, imagegen.FallbackEvent{FromProvider: "azure", FromModel: gptImage,
		ToProvider: "openai", ToModel: gptImage, Err: failure(imagegen.ClassServer), Class: imagegen.ClassServer})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "openai", Model: gptImage, Attempt: 1,
		Latency: 20 * time.Second, Images: 1})
	h.Done(ctx, imagegen.DoneEvent{Provider: "openai", Model: gptImage, Latency: 22 * time.Second,
		Result: &imagegen.Result{Cost: imagegen.Cost{USD: 0.04, Known: true, Estimated: true}}})

	// A cache hit.
	h.CacheHit(ctx, imagegen.CacheEvent{Op: "get"})
	h.Done(ctx, imagegen.DoneEvent{Latency: 2 * time.Millisecond,
		Result: &imagegen.Result{Cached: true, Cost: imagegen.Cost{USD: 0.17, Known: true}}})

	// A rejected prompt.
	h.CacheMiss(ctx, imagegen.CacheEvent{Op: "get"})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "openai", Model: dallE, Attempt: 1,
		Latency: 300 * time.Millisecond, Err: failure(imagegen.ClassContentRejected), Class: imagegen.ClassContentRejected})
	h.Done(ctx, imagegen.DoneEvent{Provider: "openai", Model: dallE, Latency: 310 * time.Millisecond,
		Err: failure(imagegen.ClassContentRejected), Class: imagegen.ClassContentRejected})

	// A success whose cost is unknown, and a failed cache store.
	h.CacheMiss(ctx, imagegen.CacheEvent{Op: "get"})
	h.AttemptEnd(ctx, imagegen.AttemptEndEvent{Provider: "openai", Model: dallE, Attempt: 1,
		Latency: 10 * time.Second, Images: 1})
	h.CacheError(ctx, imagegen.CacheEvent{Op: "set", Err: fmt.Errorf("redis down")})
	h.Done(ctx, imagegen.DoneEvent{Provider: "openai", Model: dallE, Latency: 11 * time.Second,
		Result: &imagegen.Result{}})

	h.BreakerChange(ctx, imagegen.BreakerEvent{Provider: "azure", From: imagegen.BreakerClosed, To: imagegen.BreakerOpen})
}

func TestMetricsCounters(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	driveScenario(t.Context(), m.Hooks())

	want := `
# HELP imagegen_attempts_total Provider calls, by failure class (none on success).
# TYPE imagegen_attempts_total counter
imagegen_attempts_total{class="content_rejected",model="dall-e-3",provider="openai"} 1
imagegen_attempts_total{class="none",model="dall-e-3",provider="openai"} 1
imagegen_attempts_total{class="none",model="gpt-image-1",provider="openai"} 2
imagegen_attempts_total{class="rate_limited",model="gpt-image-1",provider="openai"} 1
imagegen_attempts_total{class="server_error",model="gpt-image-1",provider="azure"} 1
# HELP imagegen_breaker_state Circuit breaker state per provider: 0 closed, 1 open, 2 half open.
# TYPE imagegen_breaker_state gauge
imagegen_breaker_state{provider="azure"} 1
# HELP imagegen_cache_total Cache operations, by result (hit, miss or error).
# TYPE imagegen_cache_total counter
imagegen_cache_total{result="error"} 1
imagegen_cache_total{result="hit"} 1
imagegen_cache_total{result="miss"} 4
# HELP imagegen_cost_usd_total Cost of successful calls in US dollars, from reported usage (known) or the catalog (estimated).
# TYPE imagegen_cost_usd_total counter
imagegen_cost_usd_total{kind="estimated",model="gpt-image-1",provider="openai"} 0.04
imagegen_cost_usd_total{kind="known",model="gpt-image-1",provider="openai"} 0.17
# HELP imagegen_fallbacks_total Moves from one provider/model to the next.
# TYPE imagegen_fallbacks_total counter
imagegen_fallbacks_total{from="azure/gpt-image-1",to="openai/gpt-image-1"} 1
# HELP imagegen_images_total Images returned by successful provider calls.
# TYPE imagegen_images_total counter
imagegen_images_total{model="dall-e-3",provider="openai"} 1
imagegen_images_total{model="gpt-image-1",provider="openai"} 3
# HELP imagegen_rate_limited_total Provider calls answered with a rate limit (HTTP 429).
# TYPE imagegen_rate_limited_total counter
imagegen_rate_limited_total{model="gpt-image-1",provider="openai"} 1
# HELP imagegen_requests_total Generate and Edit calls, by the provider and model of the last attempt, result and failure class.
# TYPE imagegen_requests_total counter
imagegen_requests_total{class="content_rejected",model="dall-e-3",provider="openai",result="error"} 1
imagegen_requests_total{class="none",model="dall-e-3",provider="openai",result="success"} 1
imagegen_requests_total{class="none",model="gpt-image-1",provider="openai",result="success"} 2
imagegen_requests_total{class="none",model="none",provider="none",result="cached"} 1
# HELP imagegen_retries_total Retries of the same provider and model, by the class of the failure retried.
# TYPE imagegen_retries_total counter
imagegen_retries_total{class="rate_limited",model="gpt-image-1",provider="openai"} 1
# HELP imagegen_unknown_cost_requests_total Successful calls whose cost is unknown.
# TYPE imagegen_unknown_cost_requests_total counter
imagegen_unknown_cost_requests_total{model="dall-e-3",provider="openai"} 1
`
	err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"imagegen_attempts_total", "imagegen_breaker_state", "imagegen_cache_total",
		"imagegen_cost_usd_total", "imagegen_fallbacks_total", "imagegen_images_total",
		"imagegen_rate_limited_total", "imagegen_requests_total", "imagegen_retries_total",
		"imagegen_unknown_cost_requests_total")
	assert.NoError(t, err)
}

func TestMetricsRateLimitWaitHistogram(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	driveScenario(t.Context(), m.Hooks())

	want := `
# HELP imagegen_rate_limit_wait_seconds Time spent waiting for the client-side rate limiter, in seconds.
# TYPE imagegen_rate_limit_wait_seconds histogram
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="0.01"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="0.05"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="0.1"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="0.25"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="0.5"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="1"} 0
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="2"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="5"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="10"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="20"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="30"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="60"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="120"} 1
imagegen_rate_limit_wait_seconds_bucket{model="gpt-image-1",provider="openai",le="+Inf"} 1
imagegen_rate_limit_wait_seconds_sum{model="gpt-image-1",provider="openai"} 1.5
imagegen_rate_limit_wait_seconds_count{model="gpt-image-1",provider="openai"} 1
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "imagegen_rate_limit_wait_seconds"))
}

// histogramSamples returns the sample count and sum of each series of the
// histogram name, keyed by its label values joined with commas in label
// name order.
func histogramSamples(t *testing.T, reg prometheus.Gatherer, name string) map[string][2]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string][2]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			out[joinLabelValues(metric.GetLabel())] = [2]float64{
				float64(metric.GetHistogram().GetSampleCount()),
				metric.GetHistogram().GetSampleSum(),
			}
		}
	}
	return out
}

func joinLabelValues(labels []*dto.LabelPair) string {
	values := make([]string, len(labels))
	for i, l := range labels {
		values[i] = l.GetValue()
	}
	return strings.Join(values, ",")
}

func TestMetricsDurationHistograms(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	driveScenario(t.Context(), m.Hooks())

	attempts := histogramSamples(t, reg, "imagegen_attempt_duration_seconds")
	assert.Equal(t, map[string][2]float64{
		// Labels in name order: model, provider, result.
		"gpt-image-1,openai,error":   {1, 0.2},
		"gpt-image-1,openai,success": {2, 50},
		"gpt-image-1,azure,error":    {1, 1},
		"dall-e-3,openai,error":      {1, 0.3},
		"dall-e-3,openai,success":    {1, 10},
	}, attempts)

	requests := histogramSamples(t, reg, "imagegen_request_duration_seconds")
	require.Len(t, requests, 4)
	assert.Equal(t, [2]float64{2, 54}, requests["gpt-image-1,openai,success"])
	assert.Equal(t, [2]float64{1, 0.002}, requests["none,none,cached"])
	assert.InDelta(t, 0.31, requests["dall-e-3,openai,error"][1], 1e-9)
	assert.Equal(t, [2]float64{1, 11}, requests["dall-e-3,openai,success"])
}

func TestMetricsDefaultBuckets(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	m.Hooks().AttemptEnd(t.Context(), imagegen.AttemptEndEvent{Provider: "p", Model: "m", Latency: time.Second})

	families, err := reg.Gather()
	require.NoError(t, err)
	var bounds []float64
	for _, f := range families {
		if f.GetName() == "imagegen_attempt_duration_seconds" {
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
	}
	assert.Equal(t, DefaultDurationBuckets(), bounds)
	assert.Equal(t, 600.0, bounds[len(bounds)-1], "buckets reach 10 minutes")
}

func TestMetricsLint(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	driveScenario(t.Context(), m.Hooks())

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestMetricsLabelCap(t *testing.T) {
	m, reg := newTestMetrics(t, Options{MaxLabelValues: 2})
	h := m.Hooks()
	for i := range 4 {
		model := fmt.Sprintf("m%d", i)
		h.AttemptEnd(t.Context(), imagegen.AttemptEndEvent{Provider: "openai", Model: model, Latency: time.Second, Images: 1})
		h.Fallback(t.Context(), imagegen.FallbackEvent{FromProvider: "openai", FromModel: model, ToProvider: "azure", ToModel: model})
	}
	// A value seen before the cap was reached keeps its own series.
	h.AttemptEnd(t.Context(), imagegen.AttemptEndEvent{Provider: "openai", Model: "m1", Latency: time.Second, Images: 1})

	want := `
# HELP imagegen_images_total Images returned by successful provider calls.
# TYPE imagegen_images_total counter
imagegen_images_total{model="m0",provider="openai"} 1
imagegen_images_total{model="m1",provider="openai"} 2
imagegen_images_total{model="other",provider="openai"} 2
# HELP imagegen_fallbacks_total Moves from one provider/model to the next.
# TYPE imagegen_fallbacks_total counter
imagegen_fallbacks_total{from="openai/m0",to="azure/m0"} 1
imagegen_fallbacks_total{from="other",to="other"} 3
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "imagegen_images_total", "imagegen_fallbacks_total"))
}

func TestMetricsNamespace(t *testing.T) {
	m, reg := newTestMetrics(t, Options{Namespace: "myapp_images"})
	m.Hooks().CacheHit(t.Context(), imagegen.CacheEvent{})

	n, err := testutil.GatherAndCount(reg, "myapp_images_cache_total")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = testutil.GatherAndCount(reg, "imagegen_cache_total")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestMetricsBadInputNoPanic(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	h := m.Hooks()
	badUTF8 := "gpt\xffimage"

	require.NotPanics(t, func() {
		h.AttemptEnd(t.Context(), imagegen.AttemptEndEvent{Provider: "openai", Model: badUTF8, Latency: -time.Second, Images: -3})
		h.RateLimitWait(t.Context(), imagegen.RateLimitWaitEvent{Provider: "openai", Model: badUTF8, Wait: -time.Second})
		for _, usd := range []float64{-1, math.NaN(), math.Inf(1)} {
			h.Done(t.Context(), imagegen.DoneEvent{Provider: "openai", Model: badUTF8,
				Result: &imagegen.Result{Cost: imagegen.Cost{USD: usd, Known: true}}})
		}
		h.Done(t.Context(), imagegen.DoneEvent{Provider: "openai", Model: badUTF8})
	})

	want := `
# HELP imagegen_unknown_cost_requests_total Successful calls whose cost is unknown.
# TYPE imagegen_unknown_cost_requests_total counter
imagegen_unknown_cost_requests_total{model="gpt` + "\uFFFD" + `image",provider="openai"} 3
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "imagegen_unknown_cost_requests_total"))
	n, err := testutil.GatherAndCount(reg, "imagegen_images_total")
	require.NoError(t, err)
	assert.Zero(t, n, "negative image counts are ignored")
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		reg  prometheus.Registerer
		opts Options
		want string
	}{
		{"nil registerer", nil, Options{}, "nil prometheus.Registerer"},
		{"negative label cap", prometheus.NewRegistry(), Options{MaxLabelValues: -1}, "invalid MaxLabelValues -1"},
		{"empty buckets", prometheus.NewRegistry(), Options{DurationBuckets: []float64{}}, "invalid DurationBuckets: empty"},
		{"unsorted buckets", prometheus.NewRegistry(), Options{DurationBuckets: []float64{1, 5, 2}}, "2 follows 5"},
		{"NaN bucket", prometheus.NewRegistry(), Options{WaitBuckets: []float64{1, math.NaN()}}, "invalid WaitBuckets: bucket 1 is NaN"},
		{"infinite bucket", prometheus.NewRegistry(), Options{WaitBuckets: []float64{math.Inf(1)}}, "bounds must be finite"},
		{"namespace with dash", prometheus.NewRegistry(), Options{Namespace: "my-app"}, `invalid Namespace "my-app"`},
		{"namespace with leading digit", prometheus.NewRegistry(), Options{Namespace: "9app"}, `invalid Namespace "9app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.reg, tt.opts)

			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "imagegen: "), err.Error())
		})
	}
}

func TestNewDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := New(reg, Options{})
	require.NoError(t, err)

	second, err := New(reg, Options{})

	require.Error(t, err)
	assert.Nil(t, second)
	var already prometheus.AlreadyRegisteredError
	assert.ErrorAs(t, err, &already)
	first.Hooks().CacheHit(t.Context(), imagegen.CacheEvent{})
	assert.Equal(t, 1.0, testutil.ToFloat64(first.cache.WithLabelValues("hit")), "the first Metrics still works")
}

func TestNewUnregistersOnFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A foreign collector takes the name of the last metric New registers.
	require.NoError(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegen_breaker_state", Help: "taken"})))

	_, err := New(reg, Options{})

	require.Error(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		assert.Equal(t, "imagegen_breaker_state", f.GetName(), "New left %s registered", f.GetName())
	}
	// Every earlier registration was undone, so a retry with another
	// namespace, or after removing the foreign collector, can succeed.
	_, err = New(reg, Options{Namespace: "other_ns"})
	assert.NoError(t, err)
}

func TestNewCopiesBuckets(t *testing.T) {
	buckets := []float64{1, 10, 100}
	m, reg := newTestMetrics(t, Options{DurationBuckets: buckets})
	buckets[0] = 50

	m.Hooks().AttemptEnd(t.Context(), imagegen.AttemptEndEvent{Provider: "p", Model: "m", Latency: 2 * time.Second})

	assert.Equal(t, map[string][2]float64{"m,p,success": {1, 2}}, histogramSamples(t, reg, "imagegen_attempt_duration_seconds"))
}

func TestMetricsConcurrentHooks(t *testing.T) {
	m, reg := newTestMetrics(t, Options{MaxLabelValues: 8})
	h := m.Hooks()
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				h.AttemptEnd(context.Background(), imagegen.AttemptEndEvent{
					Provider: "openai", Model: fmt.Sprintf("m%d", (w*200+i)%16), Latency: time.Second, Images: 1,
				})
			}
		}()
	}
	for range 4 {
		<-done
	}

	families, err := reg.Gather()
	require.NoError(t, err)
	series, total := 0, 0.0
	for _, f := range families {
		if f.GetName() != "imagegen_images_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			series++
			total += metric.GetCounter().GetValue()
		}
	}
	assert.Equal(t, 9, series, "8 models and the overflow series")
	assert.Equal(t, 800.0, total)
}

func BenchmarkMetricsSuccessfulCall(b *testing.B) {
	m, err := New(prometheus.NewRegistry(), Options{})
	require.NoError(b, err)
	h := m.Hooks()
	ctx := context.Background()
	attempt := imagegen.AttemptEndEvent{Provider: "openai", Model: "gpt-image-1", Attempt: 1, Latency: 20 * time.Second, Images: 1}
	done := imagegen.DoneEvent{Provider: "openai", Model: "gpt-image-1", Latency: 21 * time.Second,
		Result: &imagegen.Result{Cost: imagegen.Cost{USD: 0.17, Known: true}}}
	b.ReportAllocs()
	for b.Loop() {
		h.CacheMiss(ctx, imagegen.CacheEvent{Op: "get"})
		h.AttemptEnd(ctx, attempt)
		h.Done(ctx, done)
	}
}
