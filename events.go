package imagegen

import "context"

// The Client reports each event to the registered hooks and then to its own
// statistics, never while holding a lock.

func (c *Client) onAttemptStart(ctx context.Context, e AttemptStartEvent) {
	c.hooks.attemptStart(ctx, c.logger, e)
}

func (c *Client) onAttemptEnd(ctx context.Context, e AttemptEndEvent) {
	c.hooks.attemptEnd(ctx, c.logger, e)
	c.stats.recordAttemptEnd(e)
}

func (c *Client) onRetry(ctx context.Context, e RetryEvent) {
	c.hooks.retry(ctx, c.logger, e)
	c.stats.recordRetry(e)
}

func (c *Client) onFallback(ctx context.Context, e FallbackEvent) {
	c.hooks.fallback(ctx, c.logger, e)
	c.stats.recordFallback(e)
}

func (c *Client) onRateLimitWait(ctx context.Context, e RateLimitWaitEvent) {
	c.hooks.rateLimitWait(ctx, c.logger, e)
	c.stats.recordRateLimitWait(e)
}

func (c *Client) onBreakerChange(ctx context.Context, e BreakerEvent) {
	c.hooks.breakerChange(ctx, c.logger, e)
}

func (c *Client) onCacheHit(ctx context.Context, e CacheEvent) {
	c.hooks.cacheHit(ctx, c.logger, e)
	c.stats.recordCacheHit()
}

func (c *Client) onCacheMiss(ctx context.Context, e CacheEvent) {
	c.hooks.cacheMiss(ctx, c.logger, e)
	c.stats.recordCacheMiss()
}

func (c *Client) onCacheError(ctx context.Context, e CacheEvent) {
	c.hooks.cacheError(ctx, c.logger, e)
	c.stats.recordCacheError()
}

func (c *Client) onDone(ctx context.Context, e DoneEvent) {
	c.hooks.done(ctx, c.logger, e)
	c.stats.recordDone(e)
}

// Stats returns a consistent snapshot of the Client's statistics since it
// was created: per provider and model, and in total.
func (c *Client) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return c.stats.snapshot()
}
