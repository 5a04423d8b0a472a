// Package rediscache implements imagegen.Cache on Redis, so that several
// processes or hosts share one cache of generated images.
//
// Each entry is one Redis string set with SET and an expiry in milliseconds
// or seconds, and read with GET. Redis evicts and expires entries itself: bound
// its memory with maxmemory and an eviction policy such as allkeys-lru.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/imagegen-go/imagegen"
)

// Options configures New.
type Options struct {
	// Prefix is prepended to every key, such as "imagegen:", to keep the
	// cache's keys apart from others in the same database. Empty means no
	// prefix.
	Prefix string

	// DefaultTTL is how long an entry stored with a ttl of zero lives. Zero
	// means such entries never expire and leave only when Redis evicts them.
	DefaultTTL time.Duration
}

// Cache is an imagegen.Cache on a Redis client. It is safe for concurrent
// use, as the client is.
type Cache struct {
	client     redis.UniversalClient
	prefix     string
	defaultTTL time.Duration
}

var _ imagegen.Cache = (*Cache)(nil)

// New returns a Cache that stores entries through client, which the caller
// keeps and closes. It returns an error if client is nil or DefaultTTL is
// negative.
func New(client redis.UniversalClient, opts Options) (*Cache, error) {
	if client == nil {
		return nil, errors.New("imagegen: redis cache client is nil: pass a redis.UniversalClient")
	}
	if opts.DefaultTTL < 0 {
		return nil, fmt.Errorf("imagegen: invalid rediscache.Options.DefaultTTL %v: want 0 (no expiry) or more", opts.DefaultTTL)
	}
	return &Cache{client: client, prefix: opts.Prefix, defaultTTL: opts.DefaultTTL}, nil
}

// Get returns the value stored under key, or an error that matches
// imagegen.ErrCacheMiss when there is none. Other errors come from Redis or
// the connection to it. The returned slice is the caller's own.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	value, err := c.client.Get(ctx, c.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, imagegen.ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("imagegen: redis cache GET failed: %w", err)
	}
	return value, nil
}

// Set stores value under key for ttl, replacing any earlier value. A ttl of
// zero means DefaultTTL. Redis counts expiry in whole milliseconds, so ttl is
// rounded up to the next millisecond. Set returns an error if ttl is negative
// or Redis fails.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("imagegen: invalid cache ttl %v: want 0 (default) or more", ttl)
	}
	if ttl == 0 {
		ttl = c.defaultTTL
	}
	if rem := ttl % time.Millisecond; rem != 0 && ttl < math.MaxInt64-time.Millisecond {
		ttl += time.Millisecond - rem
	}
	if err := c.client.Set(ctx, c.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("imagegen: redis cache SET failed: %w", err)
	}
	return nil
}
