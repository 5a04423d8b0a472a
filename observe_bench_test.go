package imagegen_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	imagegenprom "github.com/imagegen-go/imagegen/metrics/prometheus"
)

// noopHooks returns Hooks whose every field is a function that does nothing,
// so that a benchmark measures the dispatch of every event.
func noopHooks() imagegen.Hooks {
	return imagegen.Hooks{
		AttemptStart:  func(context.Context, imagegen.AttemptStartEvent) {},
		AttemptEnd:    func(context.Context, imagegen.AttemptEndEvent) {},
		Retry:         func(context.Context, imagegen.RetryEvent) {},
		Fallback:      func(context.Context, imagegen.FallbackEvent) {},
		RateLimitWait: func(context.Context, imagegen.RateLimitWaitEvent) {},
		BreakerChange: func(context.Context, imagegen.BreakerEvent) {},
		CacheHit:      func(context.Context, imagegen.CacheEvent) {},
		CacheMiss:     func(context.Context, imagegen.CacheEvent) {},
		CacheError:    func(context.Context, imagegen.CacheEvent) {},
		Done:          func(context.Context, imagegen.DoneEvent) {},
	}
}

// BenchmarkObserveOverhead measures one successful Generate through a
// Client with a fake provider: without statistics or hooks, with the
// statistics the Client always keeps, with one no-op Hooks and with the
// Prometheus hooks. BenchmarkClientOverhead/direct calls the same provider
// without a Client. The difference between stats_off and no_hooks is the
// cost of the statistics, and the difference between no_hooks and the
// others the cost of the hooks.
func BenchmarkObserveOverhead(b *testing.B) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())

	newClient := func(b *testing.B, opts ...imagegen.Option) *imagegen.Client {
		c, err := imagegen.New(append([]imagegen.Option{imagegen.WithProvider(fake)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	metrics, err := imagegenprom.New(prometheus.NewRegistry(), imagegenprom.Options{})
	if err != nil {
		b.Fatal(err)
	}
	statsOff := newClient(b)
	imagegen.DisableStatsForBenchmark(statsOff)
	clients := []struct {
		name   string
		client *imagegen.Client
	}{
		{"stats_off", statsOff},
		{"no_hooks", newClient(b)},
		{"noop_hook", newClient(b, imagegen.WithHooks(noopHooks()))},
		{"prometheus", newClient(b, imagegen.WithHooks(metrics.Hooks()))},
	}
	for _, bc := range clients {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.client.Generate(b.Context(), "a lighthouse at dawn", imagegen.GenerateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
