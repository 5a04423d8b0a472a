package imagegen

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func BenchmarkLocalLimiterAcquire(b *testing.B) {
	benchmarks := []struct {
		name   string
		limits *Limits // nil leaves the key unconfigured
	}{
		{"unconfigured", nil},
		{"configured unlimited", &Limits{}},
		{"rates", &Limits{RequestsPerMinute: 1e12, RequestBurst: 1 << 30, ImagesPerMinute: 1e12, ImageBurst: 1 << 30}},
		{"rates and in-flight cap", &Limits{RequestsPerMinute: 1e12, RequestBurst: 1 << 30, ImagesPerMinute: 1e12, ImageBurst: 1 << 30, MaxInFlight: 1 << 20}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			l := NewLocalLimiter()
			if bm.limits != nil {
				if err := l.SetLimits(testKey, *bm.limits); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				release, err := l.Acquire(ctx, testKey, 1)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

func BenchmarkLocalLimiterAcquireParallel(b *testing.B) {
	l := NewLocalLimiter()
	err := l.SetLimits(testKey, Limits{RequestsPerMinute: 1e12, RequestBurst: 1 << 30, ImagesPerMinute: 1e12, ImageBurst: 1 << 30, MaxInFlight: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := l.Acquire(context.Background(), testKey, 1)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}

// BenchmarkLocalLimiterWaiters measures what 10,000 callers waiting on one
// key cost while they wait: heap bytes and goroutine stack bytes per
// waiter. It then cancels them all and checks that every one returned with
// context.Canceled and that no goroutine is left.
func BenchmarkLocalLimiterWaiters(b *testing.B) {
	const waiters = 10_000
	benchmarks := []struct {
		name   string
		limits Limits
		hold   bool // take the only in-flight slot first
	}{
		{"queued for tokens", Limits{RequestsPerMinute: 1, ImagesPerMinute: 1}, false},
		{"queued for a slot", Limits{MaxInFlight: 1}, true},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			var heapTotal, stackTotal float64
			b.ReportAllocs()
			for b.Loop() {
				heap, stack := measureLimiterWaiters(b, bm.limits, bm.hold, waiters)
				heapTotal += heap
				stackTotal += stack
			}
			b.ReportMetric(heapTotal/float64(b.N)/waiters, "heap-B/waiter")
			b.ReportMetric(stackTotal/float64(b.N)/waiters, "stack-B/waiter")
		})
	}
}

// measureLimiterWaiters starts n callers that wait on one key, and returns
// the growth of the live heap and of goroutine stacks while they wait.
func measureLimiterWaiters(b *testing.B, lim Limits, hold bool, n int) (heap, stack float64) {
	b.Helper()
	l := NewLocalLimiter()
	if err := l.SetLimits(testKey, lim); err != nil {
		b.Fatal(err)
	}
	release, err := l.Acquire(context.Background(), testKey, 1)
	if err != nil {
		b.Fatal(err)
	}
	if !hold {
		release()
	}
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The buffer for goroutine stacks is allocated before the first
	// measurement so that it does not count as the waiters' memory.
	var stacks []byte
	if hold {
		stacks = make([]byte, 64<<20)
	}
	before := limiterMemStats()
	var (
		wg       sync.WaitGroup
		canceled atomic.Int64
	)
	for range n {
		wg.Go(func() {
			if _, err := l.Acquire(ctx, testKey, 1); errors.Is(err, context.Canceled) {
				canceled.Add(1)
			}
		})
	}
	waitForLimiterWaiters(b, l, stacks, n)
	during := limiterMemStats()
	runtime.KeepAlive(stacks)

	cancel()
	wg.Wait()
	if hold {
		release()
	}
	if got := canceled.Load(); got != int64(n) {
		b.Fatalf("%d of %d waiters returned context.Canceled", got, n)
	}
	if err := goleak.Find(ignore); err != nil {
		b.Fatal(err)
	}
	g := l.lookupGroup(testKey.Provider)
	g.mu.Lock()
	queued := g.provider.queued
	g.mu.Unlock()
	if queued != 0 {
		b.Fatalf("%d cancelled waiters are still queued", queued)
	}
	return float64(during.HeapAlloc) - float64(before.HeapAlloc),
		float64(during.StackInuse) - float64(before.StackInuse)
}

// waitForLimiterWaiters yields until n callers are blocked in l. With a nil
// stacks buffer it counts the callers queued in the key's buckets. Otherwise
// it counts, in a dump of all goroutine stacks, those blocked in the
// in-flight semaphore.
func waitForLimiterWaiters(b *testing.B, l *LocalLimiter, stacks []byte, n int) {
	b.Helper()
	g := l.lookupGroup(testKey.Provider)
	for {
		var blocked int
		if stacks != nil {
			dump := stacks[:runtime.Stack(stacks, true)]
			blocked = bytes.Count(dump, []byte("semaphore.(*Weighted).Acquire"))
		} else {
			g.mu.Lock()
			blocked = g.provider.queued
			g.mu.Unlock()
		}
		if blocked >= n {
			return
		}
		runtime.Gosched()
	}
}

func limiterMemStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
