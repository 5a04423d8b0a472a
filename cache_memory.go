package imagegen

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMemoryCacheMaxBytes is the MaxBytes of a MemoryCache whose options
// leave it zero: 256 MiB.
const DefaultMemoryCacheMaxBytes = 256 << 20

// MemoryCacheOptions configures NewMemoryCache.
type MemoryCacheOptions struct {
	// MaxBytes bounds the total length of the stored keys and values. Zero
	// means DefaultMemoryCacheMaxBytes. The bookkeeping of each entry, an
	// estimated hundred bytes, is not counted.
	MaxBytes int64

	// DefaultTTL is how long an entry stored with a ttl of zero lives. Zero
	// means such entries never expire and leave only when evicted.
	DefaultTTL time.Duration
}

// MemoryCache is a Cache in process memory, bounded by the total size of its
// entries and by their TTL. When full it evicts the entries least likely to
// be read again (otter's W-TinyLFU policy, by frequency and recency). It is
// safe for concurrent use.
//
// Get returns the stored slice itself, without a copy, so callers must not
// modify it, and Set keeps the value it is given, so callers must not modify
// it afterwards.
//
// A MemoryCache runs one goroutine that removes expired entries once a
// second. Close stops it.
type MemoryCache struct {
	entries    *otter.Cache[string, memoryCacheValue]
	maxBytes   int64
	defaultTTL time.Duration
}

// memoryCacheValue is a stored value with the TTL it was stored for, which the
// cache's expiry calculator reads.
type memoryCacheValue struct {
	data []byte
	ttl  time.Duration
}

// NewMemoryCache returns an empty MemoryCache. It returns an error if
// MaxBytes or DefaultTTL is negative.
func NewMemoryCache(opts MemoryCacheOptions) (*MemoryCache, error) {
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("imagegen: invalid MemoryCacheOptions.MaxBytes %d: want 0 (default) or more", opts.MaxBytes)
	}
	if opts.DefaultTTL < 0 {
		return nil, fmt.Errorf("imagegen: invalid MemoryCacheOptions.DefaultTTL %v: want 0 (no expiry) or more", opts.DefaultTTL)
	}
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMemoryCacheMaxBytes
	}

	entries, err := otter.New(&otter.Options[string, memoryCacheValue]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       memoryCacheWeight,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memoryCacheValue]) time.Duration {
			return e.Value.ttl
		}),
		// Maintenance runs on the goroutine that calls the cache instead of
		// on new goroutines, so that no call leaves a goroutine behind.
		Executor: func(fn func()) { fn() },
		Logger:   &otter.NoopLogger{},
	})
	if err != nil {
		return nil, fmt.Errorf("imagegen: create memory cache: %w", err)
	}
	return &MemoryCache{entries: entries, maxBytes: maxBytes, defaultTTL: opts.DefaultTTL}, nil
}

func memoryCacheWeight(key string, value memoryCacheValue) uint32 {
	return uint32(min(int64(len(key))+int64(len(value.data)), math.MaxUint32))
}

// Get returns the value stored under key, or ErrCacheMiss when there is none
// or it expired. The returned slice is the cache's own: do not modify it.
func (c *MemoryCache) Get(_ context.Context, key string) ([]byte, error) {
	v, ok := c.entries.GetIfPresent(key)
	if !ok {
		return nil, ErrCacheMiss
	}
	return v.data, nil
}

// Set stores value under key for ttl, replacing any earlier value. A ttl of
// zero means the cache's DefaultTTL. The cache keeps value without copying
// it. Set returns an error, and stores nothing, when ttl is negative or the
// entry alone is larger than MaxBytes.
func (c *MemoryCache) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("imagegen: invalid cache ttl %v: want 0 (default) or more", ttl)
	}
	if ttl == 0 {
		ttl = c.defaultTTL
	}
	if ttl == 0 {
		ttl = time.Duration(math.MaxInt64)
	}
	if size := int64(len(key)) + int64(len(value)); size > c.maxBytes {
		return fmt.Errorf("imagegen: cache entry of %d bytes exceeds the memory cache's MaxBytes of %d; raise MaxBytes to cache it", size, c.maxBytes)
	}
	c.entries.Set(key, memoryCacheValue{data: value, ttl: ttl})
	return nil
}

// Close stops the goroutine that removes expired entries and waits for it to
// return. The cache stays usable afterwards: expired entries are still never
// returned, but they are then removed only when evicted or replaced. Close
// always returns nil.
func (c *MemoryCache) Close() error {
	c.entries.StopAllGoroutines()
	return nil
}
