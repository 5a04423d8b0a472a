package redislimit_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/limiter/redislimit"
)

// roundTripHook counts the commands and pipelines that a client sends, each
// one round trip to Redis.
type roundTripHook struct {
	count atomic.Int64
}

func (h *roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkAcquireRelease measures one Acquire and its release when no wait
// is needed, and reports the Redis round trips per operation.
func BenchmarkAcquireRelease(b *testing.B) {
	// A token every 10 µs and a burst of 1000: one caller, which needs
	// three round trips per request, never waits.
	buckets := imagegen.Limits{RequestsPerMinute: 6e6, ImagesPerMinute: 6e6, RequestBurst: 1000, ImageBurst: 1000}
	withInFlight := buckets
	withInFlight.MaxInFlight = 100
	cases := []struct {
		name string
		lim  *imagegen.Limits // nil leaves the key unconfigured
	}{
		{"unlimited", nil},
		{"buckets", &buckets},
		{"buckets_and_in_flight", &withInFlight},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			client := newTestClient(b)
			hook := &roundTripHook{}
			client.AddHook(hook)
			l, err := redislimit.New(client, redislimit.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if bc.lim != nil {
				if err := l.SetLimits(testKey, *bc.lim); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			// Load the scripts, so that the loop counts no NOSCRIPT retry.
			release, err := l.Acquire(ctx, testKey, 1)
			if err != nil {
				b.Fatal(err)
			}
			release()

			hook.count.Store(0)
			b.ReportAllocs()
			for b.Loop() {
				release, err := l.Acquire(ctx, testKey, 1)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
			b.ReportMetric(float64(hook.count.Load())/float64(b.N), "roundtrips/op")
		})
	}
}
