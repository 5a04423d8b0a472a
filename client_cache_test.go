package imagegen_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
)

func newMemoryCache(t *testing.T) *imagegen.MemoryCache {
	t.Helper()
	mc, err := imagegen.NewMemoryCache(imagegen.MemoryCacheOptions{MaxBytes: 64 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Close() })
	return mc
}

func TestCacheOptIn(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake))
	require.NoError(t, err)

	for range 2 {
		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.False(t, res.Cached)
	}
	assert.Equal(t, 2, fake.Calls(), "without a cache every call reaches the provider")
}

func TestCacheHit(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)

	first, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{Size: "1024x1024"})
	require.NoError(t, err)
	second, err := c.Generate(t.Context(), "  a   lighthouse ", imagegen.GenerateOptions{Size: "1024x1024"})
	require.NoError(t, err)

	assert.Equal(t, 1, fake.Calls())
	assert.False(t, first.Cached)
	assert.True(t, second.Cached)
	assert.Zero(t, second.Attempts)
	assert.Equal(t, "fake", second.Provider)
	assert.Equal(t, first.Model, second.Model)
	require.Len(t, second.Images, 1)
	assert.True(t, bytes.Equal(first.Images[0].Data, second.Images[0].Data))
	assert.True(t, second.Cost.Known)
	assert.Zero(t, second.Cost.USD, "a cached image costs nothing")
	assert.Equal(t, int64(1), c.Stats().Cache.Hits)
	assert.Equal(t, int64(1), c.Stats().Cache.Misses)
}

func TestCacheKeepsCase(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "a sign that says OPEN", imagegen.GenerateOptions{})
	require.NoError(t, err)
	res, err := c.Generate(t.Context(), "a sign that says open", imagegen.GenerateOptions{})
	require.NoError(t, err)

	assert.False(t, res.Cached, "image models render text, so case makes another image")
	assert.Equal(t, 2, fake.Calls())
}

func TestCacheNeverStoresErrors(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.ModerationBlocked()))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
	require.Error(t, err)
	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
	require.NoError(t, err)

	assert.False(t, res.Cached)
	assert.Equal(t, 2, fake.Calls())
}

func TestCacheNeverStoresUndecodableImages(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeImage([]byte("not an image"), "image/png"))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)

	for range 2 {
		res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.False(t, res.Cached)
	}
	assert.Equal(t, 2, fake.Calls())
}

func TestCachePolicies(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)
	generate := func(p imagegen.CachePolicy, ns string) bool {
		res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{Cache: p, CacheNamespace: ns})
		require.NoError(t, err)
		return res.Cached
	}

	assert.False(t, generate(imagegen.CacheBypass, ""), "bypass neither reads")
	assert.False(t, generate(imagegen.CacheReadOnly, ""), "nor writes: read-only misses")
	assert.False(t, generate(imagegen.CacheReadOnly, ""), "read-only stores nothing")
	assert.False(t, generate(imagegen.CacheRefresh, ""), "refresh skips the read")
	assert.True(t, generate(imagegen.CacheUse, ""), "refresh stored its result")
	assert.True(t, generate(imagegen.CacheReadOnly, ""))
	assert.False(t, generate(imagegen.CacheUse, "tenant-b"), "another namespace shares nothing")
	assert.Equal(t, 5, fake.Calls())

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Cache: imagegen.CachePolicy(9)})
	assert.ErrorIs(t, err, imagegen.ErrInvalidRequest)
}

// failingCache fails every operation.
type failingCache struct{}

func (failingCache) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("cache backend unreachable")
}

func (failingCache) Set(context.Context, string, []byte, time.Duration) error {
	return errors.New("cache backend unreachable")
}

func TestFailingCacheNeverFailsGenerate(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	var ops []string
	c, err := imagegen.New(
		imagegen.WithProvider(imagegentest.NewFakeProvider("fake")),
		imagegen.WithCache(failingCache{}, imagegen.CacheOptions{}),
		imagegen.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		imagegen.WithHooks(imagegen.Hooks{CacheError: func(_ context.Context, e imagegen.CacheEvent) {
			mu.Lock()
			ops = append(ops, e.Op)
			mu.Unlock()
		}}))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Len(t, res.Images, 1)
	assert.Equal(t, []string{"get", "set"}, ops)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "cache backend unreachable")
	assert.Equal(t, int64(2), c.Stats().Cache.Errors)
}

func TestDiskCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	newClient := func(fake *imagegentest.FakeProvider) *imagegen.Client {
		dc, err := imagegen.NewDiskCache(dir, imagegen.DiskCacheOptions{})
		require.NoError(t, err)
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(dc, imagegen.CacheOptions{TTL: time.Hour}))
		require.NoError(t, err)
		return c
	}

	first := imagegentest.NewFakeProvider("fake")
	_, err := newClient(first).Generate(t.Context(), "x", imagegen.GenerateOptions{})
	require.NoError(t, err)

	second := imagegentest.NewFakeProvider("fake")
	res, err := newClient(second).Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.True(t, res.Cached)
	assert.Zero(t, second.Calls())
}

func TestDeduplicationOneUpstreamCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeDelay(10*time.Second))
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDeduplication(0))
		require.NoError(t, err)

		const callers = 100
		var wg sync.WaitGroup
		var shared, own int
		var mu sync.Mutex
		for range callers {
			wg.Go(func() {
				res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if res.Shared {
					shared++
				} else {
					own++
				}
			})
		}
		wg.Wait()

		assert.Equal(t, 1, fake.Calls())
		assert.Equal(t, 1, own)
		assert.Equal(t, callers-1, shared)
	})
}

func TestDeduplicationWaiterLeavesAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeDelay(10*time.Second))
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDeduplication(time.Minute))
		require.NoError(t, err)

		leaving, leave := context.WithCancel(t.Context())
		firstErr := make(chan error)
		go func() {
			_, err := c.Generate(leaving, "x", imagegen.GenerateOptions{})
			firstErr <- err
		}()
		synctest.Wait()

		secondRes := make(chan *imagegen.Result)
		go func() {
			res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
			assert.NoError(t, err)
			secondRes <- res
		}()
		synctest.Wait()

		leave() // The caller that started the shared call leaves.
		assert.ErrorIs(t, <-firstErr, context.Canceled)
		res := <-secondRes
		require.NotNil(t, res)
		assert.True(t, res.Shared)
		assert.Len(t, res.Images, 1)
		assert.Equal(t, 1, fake.Calls())
	})
}

func TestCacheSkipsChangedRequests(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.SetFunc(func(_ context.Context, call imagegentest.FakeCall) *imagegentest.FakeResult {
		return &imagegentest.FakeResult{Response: &provider.Response{
			Images:   []provider.Image{{Data: imagegentest.TinyPNG(), MediaType: "image/png"}},
			Model:    call.Request.Model,
			Warnings: []string{"style dropped: the endpoint has no style field"},
		}}
	})
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)

	for range 2 {
		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.False(t, res.Cached, "an image for a changed request is not stored under the original one")
		assert.Contains(t, res.Warnings, "style dropped: the endpoint has no style field")
	}
	assert.Equal(t, 2, fake.Calls())
}

func TestDeduplicationRespectsFreshPolicies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeDelay(time.Second))
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDeduplication(0))
		require.NoError(t, err)

		var wg sync.WaitGroup
		for _, p := range []imagegen.CachePolicy{imagegen.CacheUse, imagegen.CacheBypass, imagegen.CacheRefresh} {
			wg.Go(func() {
				res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{Cache: p})
				if assert.NoError(t, err) && p != imagegen.CacheUse {
					assert.False(t, res.Shared, "policy %v wants a fresh image", p)
				}
			})
		}
		wg.Wait()

		assert.Equal(t, 3, fake.Calls())
	})
}
