package imagegen_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
)

// BenchmarkFailover measures the time from the moment the primary provider
// returns its failure to the moment the secondary provider is called, with
// hooks, stats and logging as configured by default.
func BenchmarkFailover(b *testing.B) {
	var failedAt time.Time
	notFound := imagegentest.FakeError(http.StatusNotFound, "invalid_request_error", "model_not_found", "no such model", nil)
	primary := &funcProvider{name: "primary", fn: func(context.Context, *provider.Request) (*provider.Response, error) {
		failedAt = time.Now()
		return nil, notFound
	}}
	var total time.Duration
	secondary := imagegentest.NewFakeProvider("secondary", imagegentest.WithTinyImages(), imagegentest.WithoutRecording(),
		imagegentest.WithFakeFunc(func(context.Context, imagegentest.FakeCall) *imagegentest.FakeResult {
			total += time.Since(failedAt)
			return nil
		}))
	c, err := imagegen.New(imagegen.WithProvider(primary), imagegen.WithProvider(secondary))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Generate(b.Context(), "x", imagegen.GenerateOptions{})
		if err != nil || res.Provider != "secondary" {
			b.Fatalf("res %+v, err %v", res, err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "failover-ns")
}

// BenchmarkOpenBreaker drives calls while the primary provider is down: once
// its breaker opens, no request may reach it, and calls go straight to the
// secondary.
func BenchmarkOpenBreaker(b *testing.B) {
	var primaryCalls atomic.Int64
	down := imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "overloaded", nil)
	primary := &funcProvider{name: "primary", fn: func(context.Context, *provider.Request) (*provider.Response, error) {
		primaryCalls.Add(1)
		return nil, down
	}}
	secondary := imagegentest.NewFakeProvider("secondary", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())
	c, err := imagegen.New(imagegen.WithProvider(primary), imagegen.WithProvider(secondary),
		imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}),
		imagegen.WithBreaker(imagegen.BreakerSettings{ConsecutiveFailures: 5, Cooldown: time.Hour}))
	if err != nil {
		b.Fatal(err)
	}
	for range 5 {
		if _, err := c.Generate(b.Context(), "x", imagegen.GenerateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	opened := primaryCalls.Load()

	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Generate(b.Context(), "x", imagegen.GenerateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(primaryCalls.Load()-opened), "calls-to-open-breaker")
}
