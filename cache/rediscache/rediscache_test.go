package rediscache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/cache/rediscache"
	"github.com/imagegen-go/imagegen/internal/redistest"
)

// newTestClient starts a redis-server and returns a client for it that is
// closed when the test ends.
func newTestClient(t *testing.T) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func newTestCache(t *testing.T, client redis.UniversalClient, opts rediscache.Options) *rediscache.Cache {
	t.Helper()
	c, err := rediscache.New(client, opts)
	require.NoError(t, err)
	return c
}

func TestCacheGetSet(t *testing.T) {
	client := newTestClient(t)
	c := newTestCache(t, client, rediscache.Options{})
	ctx := t.Context()

	_, err := c.Get(ctx, "missing")
	assert.ErrorIs(t, err, imagegen.ErrCacheMiss)

	value := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff, '\r', '\n'}
	require.NoError(t, c.Set(ctx, "k", value, 0))
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, value, got)

	require.NoError(t, c.Set(ctx, "k", []byte("replaced"), 0))
	got, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("replaced"), got)
}

func TestCachePrefix(t *testing.T) {
	client := newTestClient(t)
	a := newTestCache(t, client, rediscache.Options{Prefix: "tenant-a:"})
	b := newTestCache(t, client, rediscache.Options{Prefix: "tenant-b:"})
	ctx := t.Context()

	require.NoError(t, a.Set(ctx, "k", []byte("from a"), 0))
	stored, err := client.Get(ctx, "tenant-a:k").Bytes()
	require.NoError(t, err)
	assert.Equal(t, []byte("from a"), stored)

	_, err = b.Get(ctx, "k")
	assert.ErrorIs(t, err, imagegen.ErrCacheMiss, "another prefix does not see the key")
}

// setArgsRecorder is a go-redis hook that records the arguments of the last
// SET command.
type setArgsRecorder struct {
	mu   sync.Mutex
	args []any
}

func (r *setArgsRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *setArgsRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			r.mu.Lock()
			r.args = cmd.Args()
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (r *setArgsRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (r *setArgsRecorder) expiryArgs() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.args[3:]
}

func TestCacheTTL(t *testing.T) {
	client := newTestClient(t)
	recorder := &setArgsRecorder{}
	client.AddHook(recorder)
	ctx := t.Context()
	withDefault := newTestCache(t, client, rediscache.Options{DefaultTTL: time.Hour})
	noDefault := newTestCache(t, client, rediscache.Options{})

	tests := []struct {
		name       string
		cache      *rediscache.Cache
		ttl        time.Duration
		wantExpiry []any // the SET arguments after the value
	}{
		{"explicit seconds", withDefault, 90 * time.Second, []any{"ex", int64(90)}},
		{"explicit milliseconds", withDefault, 1500 * time.Millisecond, []any{"px", int64(1500)}},
		{"default", withDefault, 0, []any{"ex", int64(3600)}},
		{"no expiry", noDefault, 0, []any{}},
		{"rounded up to a millisecond", noDefault, time.Hour + time.Microsecond, []any{"px", int64(3600001)}},
		{"below a millisecond", noDefault, time.Nanosecond, []any{"px", int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "ttl:" + tt.name
			require.NoError(t, tt.cache.Set(ctx, key, []byte("v"), tt.ttl))
			assert.Equal(t, tt.wantExpiry, recorder.expiryArgs())
		})
	}

	t.Run("stored without expiry", func(t *testing.T) {
		pttl, err := client.PTTL(ctx, "ttl:no expiry").Result()
		require.NoError(t, err)
		assert.Equal(t, time.Duration(-1), pttl)
	})
	t.Run("stored with expiry", func(t *testing.T) {
		pttl, err := client.PTTL(ctx, "ttl:default").Result()
		require.NoError(t, err)
		assert.Positive(t, pttl)
		assert.LessOrEqual(t, pttl, time.Hour)
	})
}

func TestCacheExpiredKeyIsMiss(t *testing.T) {
	client := newTestClient(t)
	c := newTestCache(t, client, rediscache.Options{})
	ctx := t.Context()

	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	// Expire the key now instead of waiting for its ttl.
	require.NoError(t, client.PExpireAt(ctx, "k", time.Unix(1, 0)).Err())
	_, err := c.Get(ctx, "k")
	assert.ErrorIs(t, err, imagegen.ErrCacheMiss)
}

func TestCacheRedisFailure(t *testing.T) {
	client := newTestClient(t)
	c := newTestCache(t, client, rediscache.Options{})
	require.NoError(t, client.Close())

	_, err := c.Get(context.Background(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, imagegen.ErrCacheMiss)
	assert.Contains(t, err.Error(), "imagegen: redis cache GET failed")

	err = c.Set(context.Background(), "k", []byte("v"), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "imagegen: redis cache SET failed")
}

func TestCacheCanceledContext(t *testing.T) {
	client := newTestClient(t)
	c := newTestCache(t, client, rediscache.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := c.Get(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, c.Set(ctx, "k", []byte("v"), 0), context.Canceled)
}

func TestNewInvalidInput(t *testing.T) {
	_, err := rediscache.New(nil, rediscache.Options{})
	assert.ErrorContains(t, err, "client is nil")

	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	_, err = rediscache.New(client, rediscache.Options{DefaultTTL: -time.Second})
	assert.ErrorContains(t, err, "DefaultTTL -1s")

	c := newTestCache(t, client, rediscache.Options{})
	assert.ErrorContains(t, c.Set(t.Context(), "k", []byte("v"), -time.Second), "invalid cache ttl -1s")
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
