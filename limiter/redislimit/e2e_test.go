package redislimit_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/limiter/redislimit"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// TestTwoClientsShareServerQuota simulates two processes: two Clients,
// each with its own Limiter on one Redis, send to one server that enforces a
// quota. Together they stay within it.
//
// The server's quota is 10 images per 250 ms: a bucket of 10 that refills at
// 40 per second. Paced at 40 per second together, 60 requests take about
// 1.5 s and the bucket never runs out. Limiters that did not share their
// buckets would send 80 per second and empty it. The server's rate-limit
// headers would then report nothing remaining and pause them, so the test
// also checks that no pause was needed.
func TestTwoClientsShareServerQuota(t *testing.T) {
	const (
		perClient  = 30
		quotaBurst = 10
		quotaTime  = 250 * time.Millisecond
	)
	srv := imagegentest.NewServer(imagegentest.WithQuota(imagegentest.Quota{ImagesPerMinute: quotaBurst, Minute: quotaTime}))
	t.Cleanup(srv.Close)
	redisClient := newTestClient(t)
	// The same rate in the limiter's per-minute terms: 2400 per minute.
	lim := imagegen.Limits{ImagesPerMinute: quotaBurst * float64(time.Minute/quotaTime)}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	clients := make([]*imagegen.Client, 2)
	for i := range clients {
		p, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: srv.URL, HTTPClient: srv.Client()})
		require.NoError(t, err)
		l := newTestLimiter(t, redisClient, redislimit.Options{Logger: logger}, lim, imagegen.LimitKey{Provider: p.Name()})
		clients[i], err = imagegen.New(imagegen.WithProvider(p), imagegen.WithLimiter(l))
		require.NoError(t, err)
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*perClient)
	for i := range 2 * perClient {
		c := clients[i%2]
		wg.Go(func() {
			_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{Model: "gpt-image-1", Quality: "low"})
			errs <- err
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)

	for err := range errs {
		assert.NoError(t, err)
	}
	stats := srv.Stats()
	assert.Equal(t, 2*perClient, stats.Succeeded)
	assert.Zero(t, stats.RateLimited, "the shared limiter keeps both clients within the quota")
	assert.NotContains(t, logs.String(), "rate limiter paused", "the buckets alone kept the pace")
	assert.GreaterOrEqual(t, elapsed, (2*perClient-1)*quotaTime/quotaBurst)
}
