package imagegen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/imagegen-go/imagegen/provider"
)

// CacheOptions configure how a Client uses its cache.
type CacheOptions struct {
	// TTL is how long stored images stay valid. Zero means the cache's own
	// default. GenerateOptions.CacheTTL overrides it per call.
	TTL time.Duration

	// Namespace scopes keys, for example per tenant, so that tenants never
	// share images. GenerateOptions.CacheNamespace overrides it per call.
	Namespace string
}

// DefaultDedupTimeout bounds a shared call when WithDeduplication is given
// no timeout.
const DefaultDedupTimeout = 15 * time.Minute

// WithCache stores the images of successful calls in cache and serves
// identical later calls from it. Without it the Client never reuses an
// image, because many callers want a fresh image for the same prompt. Only
// verified successes are stored (every requested image present and
// decodable), never errors or partial results. A failing cache never fails a
// call: its errors are logged at Warn and reported to the CacheError hook.
func WithCache(cache Cache, opts CacheOptions) Option {
	return func(c *config) error {
		if cache == nil {
			return errors.New("imagegen: WithCache: nil cache")
		}
		if opts.TTL < 0 {
			return fmt.Errorf("imagegen: WithCache: invalid TTL %v: must not be negative", opts.TTL)
		}
		c.cache, c.cacheOpts = cache, opts
		return nil
	}
}

// WithDeduplication makes identical calls that run at the same time share
// one upstream call. Calls are identical when their cache keys are: same
// namespace, prompt (up to white space) and parameters. Calls with the
// CacheBypass or CacheRefresh policy want a fresh image and never share. The shared call runs
// detached from any one caller's context, bounded by timeout (zero means
// DefaultDedupTimeout), so each caller can leave on its own context without
// canceling it for the others. Off by default.
func WithDeduplication(timeout time.Duration) Option {
	return func(c *config) error {
		if timeout < 0 {
			return fmt.Errorf("imagegen: WithDeduplication: invalid timeout %v: must not be negative", timeout)
		}
		if timeout == 0 {
			timeout = DefaultDedupTimeout
		}
		c.dedup, c.dedupTimeout = true, timeout
		return nil
	}
}

// generateShared serves a call from the cache, from an identical call in
// flight, or with a new upstream call, as the Client's cache and
// deduplication settings allow.
func (c *Client) generateShared(ctx context.Context, cl *call) (*Result, error) {
	useCache := c.cache != nil && cl.cachePolicy != CacheBypass
	if !useCache && !c.dedup {
		return c.generate(ctx, cl)
	}

	namespace := c.cacheOpts.Namespace
	if cl.cacheNamespace != "" {
		namespace = cl.cacheNamespace
	}
	var key string
	if cl.edit != nil {
		key = CacheKeyEdit(namespace, cl.edit)
	} else {
		key = CacheKey(namespace, &cl.req)
	}

	if useCache && cl.cachePolicy.readsCache() {
		if res := c.cacheGet(ctx, key, cl.choice); res != nil {
			return res, nil
		}
	}

	generate := func(ctx context.Context, cl *call) (*Result, error) {
		res, err := c.generate(ctx, cl)
		if err == nil && useCache && cl.cachePolicy.writesCache() {
			c.cacheSet(ctx, key, cl, res)
		}
		return res, err
	}
	// Callers that asked for a fresh image never join another call.
	if !c.dedup || cl.cachePolicy == CacheBypass || cl.cachePolicy == CacheRefresh {
		return generate(ctx, cl)
	}
	flightKey := key
	if useCache && !cl.cachePolicy.writesCache() {
		// A read-only call stores nothing, so it must not stand in for a
		// caller whose result would be stored.
		flightKey += "|read-only"
	}

	// The shared call may outlive this caller, so it runs on its own copy of
	// the call and hands back where it ended with its result.
	shared := *cl
	out, joined, err := c.flight.Do(ctx, flightKey, c.dedupTimeout, func(ctx context.Context) (*flightOutcome, error) {
		res, err := generate(ctx, &shared)
		return &flightOutcome{res: res, provider: shared.lastProvider, model: shared.lastModel}, err
	})
	if out == nil || out.res == nil {
		return nil, err
	}
	if !joined {
		cl.lastProvider, cl.lastModel = out.provider, out.model
	}

	// Every caller, the one that started the call too, gets its own Result
	// to set Latency on. The image bytes stay shared and read-only.
	cp := *out.res
	cp.Images = slices.Clone(out.res.Images)
	cp.Warnings = slices.Clone(out.res.Warnings)
	if joined {
		cp.Shared, cp.Attempts, cp.Cost = true, 0, Cost{Known: true}
	}
	return &cp, err
}

// flightOutcome is the result of a shared call and where it ended.
type flightOutcome struct {
	res             *Result
	provider, model string
}

// cacheGet returns the cached result under key, or nil on a miss or a cache
// error.
func (c *Client) cacheGet(ctx context.Context, key string, choice *Choice) *Result {
	data, err := c.cache.Get(ctx, key)
	if err == nil {
		var entry *cacheEntry
		entry, err = decodeCacheEntry(data)
		if err == nil {
			c.onCacheHit(ctx, CacheEvent{Key: key, Op: "get"})
			resp := &entry.Response
			return &Result{
				Images:    resp.Images,
				Provider:  entry.Provider,
				Model:     resp.Model,
				Size:      resp.Size,
				Quality:   resp.Quality,
				Usage:     resp.Usage,
				RequestID: resp.RequestID,
				Cost:      Cost{Known: true}, // A cached image costs nothing.
				Cached:    true,
				Choice:    choice,
			}
		}
	}

	if errors.Is(err, ErrCacheMiss) {
		c.onCacheMiss(ctx, CacheEvent{Key: key, Op: "get"})
		return nil
	}
	c.onCacheError(ctx, CacheEvent{Key: key, Op: "get", Err: err})
	c.logger.LogAttrs(ctx, slog.LevelWarn, "imagegen: cache read failed; calling the provider",
		slog.String("key", key), slog.Any("error", err))
	return nil
}

// cacheSet stores a verified result under key. Errors are logged, never
// returned.
func (c *Client) cacheSet(ctx context.Context, key string, cl *call, res *Result) {
	if res.altered {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "imagegen: result not cached: it was made for a changed request",
			slog.String("key", key), slog.Any("warnings", res.Warnings))
		return
	}
	resp := provider.Response{
		Images:    res.Images,
		Usage:     res.Usage,
		Model:     res.Model,
		RequestID: res.RequestID,
		Size:      res.Size,
		Quality:   res.Quality,
	}
	if err := verifyCacheable(&resp, cl.req.N); err != nil {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "imagegen: result not cached",
			slog.String("key", key), slog.Any("reason", err))
		return
	}

	ttl := c.cacheOpts.TTL
	if cl.cacheTTL > 0 {
		ttl = cl.cacheTTL
	}
	data := encodeCacheEntry(&cacheEntry{Provider: res.Provider, Response: resp, CreatedAt: time.Now()})
	if err := c.cache.Set(ctx, key, data, ttl); err != nil {
		c.onCacheError(ctx, CacheEvent{Key: key, Op: "set", Err: err})
		c.logger.LogAttrs(ctx, slog.LevelWarn, "imagegen: cache write failed",
			slog.String("key", key), slog.Any("error", err))
	}
}
