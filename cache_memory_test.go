package imagegen

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func newTestMemoryCache(t *testing.T, opts MemoryCacheOptions) *MemoryCache {
	t.Helper()
	c, err := NewMemoryCache(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testCacheGetSet checks the behaviour that every Cache shares: a miss,
// a hit, a replacement and an empty value.
func testCacheGetSet(t *testing.T, c Cache) {
	t.Helper()
	ctx := t.Context()

	_, err := c.Get(ctx, "missing")
	assert.ErrorIs(t, err, ErrCacheMiss)

	require.NoError(t, c.Set(ctx, "k", []byte("first"), 0))
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("first"), got)

	require.NoError(t, c.Set(ctx, "k", []byte("second"), time.Hour))
	got, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("second"), got)

	require.NoError(t, c.Set(ctx, "empty", nil, 0))
	got, err = c.Get(ctx, "empty")
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestMemoryCacheGetSet(t *testing.T) {
	testCacheGetSet(t, newTestMemoryCache(t, MemoryCacheOptions{}))
}

func TestMemoryCacheTTL(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		c, err := NewMemoryCache(MemoryCacheOptions{DefaultTTL: 10 * time.Minute})
		require.NoError(t, err)
		defer c.Close()
		ctx := t.Context()

		require.NoError(t, c.Set(ctx, "explicit", []byte("a"), time.Minute))
		require.NoError(t, c.Set(ctx, "default", []byte("b"), 0))

		time.Sleep(59 * time.Second)
		_, err = c.Get(ctx, "explicit")
		assert.NoError(t, err, "explicit ttl before expiry")

		time.Sleep(2 * time.Second)
		_, err = c.Get(ctx, "explicit")
		assert.ErrorIs(t, err, ErrCacheMiss, "explicit ttl after expiry")
		_, err = c.Get(ctx, "default")
		assert.NoError(t, err, "default ttl before expiry")

		time.Sleep(9 * time.Minute)
		_, err = c.Get(ctx, "default")
		assert.ErrorIs(t, err, ErrCacheMiss, "default ttl after expiry")
	})
}

func TestMemoryCacheNoExpiry(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		c, err := NewMemoryCache(MemoryCacheOptions{})
		require.NoError(t, err)
		defer c.Close()

		require.NoError(t, c.Set(t.Context(), "k", []byte("v"), 0))
		// The clean-up goroutine wakes once a second of fake time, so a long
		// sleep is slow. A day shows the entry survives, and its expiry time
		// shows it would survive for good.
		time.Sleep(24 * time.Hour)
		got, err := c.Get(t.Context(), "k")
		require.NoError(t, err)
		assert.Equal(t, []byte("v"), got)

		entry, ok := c.entries.GetEntryQuietly("k")
		require.True(t, ok)
		assert.Greater(t, entry.ExpiresAtNano, time.Now().Add(100*365*24*time.Hour).UnixNano())
	})
}

func TestMemoryCacheBoundedByBytes(t *testing.T) {
	const maxBytes = 10_000
	c := newTestMemoryCache(t, MemoryCacheOptions{MaxBytes: maxBytes})
	value := bytes.Repeat([]byte{'x'}, 996) // 1000 bytes with a 4-byte key

	for i := range 100 {
		require.NoError(t, c.Set(t.Context(), fmt.Sprintf("k%03d", i), value, 0))
	}
	c.entries.CleanUp()

	assert.LessOrEqual(t, c.entries.WeightedSize(), uint64(maxBytes))
	hits := 0
	for i := range 100 {
		if _, err := c.Get(t.Context(), fmt.Sprintf("k%03d", i)); err == nil {
			hits++
		}
	}
	assert.LessOrEqual(t, hits, 10)
	assert.Positive(t, hits)
}

func TestMemoryCacheEntryTooLarge(t *testing.T) {
	c := newTestMemoryCache(t, MemoryCacheOptions{MaxBytes: 100})
	err := c.Set(t.Context(), "k", make([]byte, 100), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds the memory cache's MaxBytes of 100")

	_, err = c.Get(t.Context(), "k")
	assert.ErrorIs(t, err, ErrCacheMiss)
}

func TestMemoryCacheInvalidInput(t *testing.T) {
	_, err := NewMemoryCache(MemoryCacheOptions{MaxBytes: -1})
	assert.ErrorContains(t, err, "MaxBytes -1")
	_, err = NewMemoryCache(MemoryCacheOptions{DefaultTTL: -time.Second})
	assert.ErrorContains(t, err, "DefaultTTL -1s")

	c := newTestMemoryCache(t, MemoryCacheOptions{})
	assert.ErrorContains(t, c.Set(t.Context(), "k", []byte("v"), -time.Second), "invalid cache ttl -1s")
}

func TestMemoryCacheConcurrentUse(t *testing.T) {
	c := newTestMemoryCache(t, MemoryCacheOptions{MaxBytes: 50_000})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("k%d", (i*7+w)%64)
				value := []byte(key + "-value")
				assert.NoError(t, c.Set(t.Context(), key, value, time.Hour))
				if got, err := c.Get(t.Context(), key); err == nil {
					assert.Equal(t, key, string(got[:len(key)]))
				}
			}
		})
	}
	wg.Wait()
}

func TestMemoryCacheCloseStopsGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := NewMemoryCache(MemoryCacheOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Set(t.Context(), "k", []byte("v"), 0))
	require.NoError(t, c.Close())

	got, err := c.Get(t.Context(), "k")
	require.NoError(t, err, "the cache stays usable after Close")
	assert.Equal(t, []byte("v"), got)
}
