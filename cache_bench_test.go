package imagegen

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

// benchCacheEntry returns an encoded entry with one image of size random
// bytes, the shape of a cached 1024x1024 PNG.
func benchCacheEntry(b *testing.B, size int) []byte {
	b.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	e := fullCacheEntry(b)
	e.Response.Images = []provider.Image{{Data: data, MediaType: "image/png", RevisedPrompt: "a red fox in the snow, detailed"}}
	return encodeCacheEntry(e)
}

// BenchmarkMemoryCacheHit measures a hit the way the Client reads it: Get plus
// decodeCacheEntry, which returns slices of the stored bytes.
func BenchmarkMemoryCacheHit(b *testing.B) {
	c, err := NewMemoryCache(MemoryCacheOptions{})
	require.NoError(b, err)
	defer c.Close()
	key := CacheKey("tenant", baseKeyRequest())
	require.NoError(b, c.Set(b.Context(), key, benchCacheEntry(b, 2<<20), 0))

	b.ReportAllocs()
	benchCacheHits(b, c, key)
}

// benchCacheHits runs the benchmark loop of a hit: Get and decodeCacheEntry.
func benchCacheHits(b *testing.B, c Cache, key string) {
	for b.Loop() {
		value, err := c.Get(b.Context(), key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeCacheEntry(value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskCacheHit2MB measures a hit of a 2 MiB entry: reading the file,
// checking its CRC, updating its access time and decoding the entry. The
// file is in the page cache after the first read.
func BenchmarkDiskCacheHit2MB(b *testing.B) {
	c, err := NewDiskCache(b.TempDir(), DiskCacheOptions{})
	require.NoError(b, err)
	key := CacheKey("tenant", baseKeyRequest())
	require.NoError(b, c.Set(b.Context(), key, benchCacheEntry(b, 2<<20), 0))

	b.ReportAllocs()
	b.SetBytes(2 << 20)
	benchCacheHits(b, c, key)
}

func BenchmarkDiskCacheSet2MB(b *testing.B) {
	c, err := NewDiskCache(b.TempDir(), DiskCacheOptions{})
	require.NoError(b, err)
	key := CacheKey("tenant", baseKeyRequest())
	value := benchCacheEntry(b, 2<<20)

	b.ReportAllocs()
	b.SetBytes(2 << 20)
	for b.Loop() {
		if err := c.Set(b.Context(), key, value, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheKey(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		req := &provider.Request{Prompt: "a red fox in the snow, watercolor", Model: "gpt-image-1", Size: "1024x1024"}
		b.ReportAllocs()
		for b.Loop() {
			_ = CacheKey("tenant", req)
		}
	})
	b.Run("all fields", func(b *testing.B) {
		req := baseKeyRequest()
		b.ReportAllocs()
		for b.Loop() {
			_ = CacheKey("tenant", req)
		}
	})
	b.Run("edit 2MB", func(b *testing.B) {
		req := baseEditRequest()
		req.Images = []provider.File{{MediaType: "image/png", Data: make([]byte, 2<<20)}}
		b.ReportAllocs()
		for b.Loop() {
			_ = CacheKeyEdit("tenant", req)
		}
	})
}

func BenchmarkEncodeCacheEntry2MB(b *testing.B) {
	value := benchCacheEntry(b, 2<<20)
	e, err := decodeCacheEntry(value)
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(2 << 20)
	for b.Loop() {
		_ = encodeCacheEntry(e)
	}
}

func BenchmarkVerifyCacheablePNG(b *testing.B) {
	resp := &provider.Response{Images: []provider.Image{{Data: testPNG(b), MediaType: "image/png"}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyCacheable(resp, 1); err != nil {
			b.Fatal(err)
		}
	}
}
