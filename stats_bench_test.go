package imagegen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// recordSuccessfulCall records the events the Client reports for a call that
// misses the cache and succeeds on its first attempt.
func recordSuccessfulCall(r *statsRecorder, res *Result) {
	r.recordCacheMiss()
	r.recordAttemptEnd(AttemptEndEvent{Provider: "openai", Model: "gpt-image-1", Attempt: 1, Latency: 20 * time.Second, Images: 1})
	r.recordDone(DoneEvent{Provider: "openai", Model: "gpt-image-1", Result: res, Latency: 21 * time.Second})
}

func BenchmarkStatsRecordSuccessfulCall(b *testing.B) {
	r := newStatsRecorder(time.Time{})
	res := &Result{Cost: Cost{USD: 0.17, Known: true}}
	recordSuccessfulCall(r, res)
	b.ReportAllocs()
	for b.Loop() {
		recordSuccessfulCall(r, res)
	}
}

func BenchmarkStatsRecordSuccessfulCallParallel(b *testing.B) {
	r := newStatsRecorder(time.Time{})
	res := &Result{Cost: Cost{USD: 0.17, Known: true}}
	recordSuccessfulCall(r, res)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			recordSuccessfulCall(r, res)
		}
	})
}

func BenchmarkHookDispatch(b *testing.B) {
	ctx := context.Background()
	e := AttemptEndEvent{Provider: "openai", Model: "gpt-image-1", Attempt: 1, Latency: time.Second, Images: 1}
	var counted int
	for _, n := range []int{0, 1} {
		hs := make(hookList, n)
		for i := range hs {
			hs[i].AttemptEnd = func(context.Context, AttemptEndEvent) { counted++ }
		}
		b.Run(fmt.Sprintf("hooks=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hs.attemptEnd(ctx, nil, e)
			}
		})
	}
}

func BenchmarkLatencyHistQuantile(b *testing.B) {
	var h latencyHistogram
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		h.observe(time.Duration(rng.ExpFloat64() * float64(20*time.Second)))
	}
	b.Run("p99", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = h.quantile(0.99)
		}
	})
	b.Run("summary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = h.summary()
		}
	})
}

func BenchmarkLatencyHistObserve(b *testing.B) {
	var h latencyHistogram
	d := 17 * time.Second
	b.ReportAllocs()
	for b.Loop() {
		h.observe(d)
	}
}

func BenchmarkStatsSnapshot(b *testing.B) {
	for _, series := range []int{4, statsMaxSeries} {
		r := newStatsRecorder(time.Time{})
		for i := range series {
			for j := range 100 {
				r.recordAttemptEnd(AttemptEndEvent{Provider: "p", Model: fmt.Sprintf("m%d", i), Latency: time.Duration(j+1) * time.Second})
			}
		}
		b.Run(fmt.Sprintf("series=%d", series), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.snapshot()
			}
		})
	}
}
