// Package imagegen is a client for AI image generation services that keeps
// each service inside its rate limits, retries only what can succeed, falls
// back across providers and models, and reports what every image cost.
//
// A [Client] wraps one or more providers (see package provider and its
// subpackages) and exposes [Client.Generate] and [Client.Edit]:
//
//	p, err := openai.New(openai.Options{APIKey: key})
//	...
//	c, err := imagegen.New(imagegen.WithProvider(p))
//	...
//	res, err := c.Generate(ctx, "a lighthouse at dawn", imagegen.GenerateOptions{Size: "1536x1024"})
//
// # Providers
//
// A provider.Provider makes one call to one service and nothing more.
// Package provider/openai speaks OpenAI's Images API and any compatible
// gateway. Custom providers implement provider.Provider in their own
// packages; package imagegentest has a fake provider and a local
// OpenAI-compatible server for tests.
//
// # Retries
//
// Every failure is classified (see [Class]). Rate limits, server errors,
// timeouts and network failures are retried on the same provider with
// exponential backoff and jitter. A wait the service requests with
// Retry-After replaces the computed delay, and a wait longer than
// [RetryPolicy.MaxWait] moves the call to the next provider instead of
// sleeping. Quota, entitlement, authentication and not-found failures move
// to the next provider at once; invalid requests and content rejections stop
// the call, because they would fail everywhere. A client-wide retry budget
// keeps an outage from multiplying traffic. See [RetryPolicy].
//
// # Rate limiting
//
// Each attempt waits for the provider's [Limiter] first. The default
// [LocalLimiter] paces requests and images per minute with token buckets
// (golang.org/x/time/rate) configured by [WithLimits], for example from
// [OpenAITier], and caps requests in flight. A 429 or a spent quota reported
// in rate-limit headers pauses that provider for every caller until the
// reset, and repeated 429s lower the rate until it recovers. When a wait
// would pass the context's deadline, the wait fails at once with a rate
// limited error. Package limiter/redislimit shares one quota between
// processes.
//
// # Fallback
//
// Providers are tried in the order given to [WithProvider], or by estimated
// cost, observed latency or weight (see [WithStrategy]); [WithModels] gives a
// provider a chain of models. A model that does not accept a size, quality
// or format gets the nearest value it accepts, and the change is listed in
// [Result.Warnings]. Each provider has a circuit breaker (see
// [BreakerSettings]): after repeated failures no request reaches it until a
// cooldown ends and a probe succeeds. See [FallbackPolicy] for which failures
// move a call on.
//
// # Caching
//
// With [WithCache], the images of successful calls are stored under a key
// derived from every parameter that changes the output ([CacheKey]) and
// identical later calls are answered from the cache: [MemoryCache],
// [DiskCache] or package cache/rediscache. [WithDeduplication] makes
// identical calls in flight share one upstream call. Both are off by
// default, because many callers want a fresh image for the same prompt.
//
// # Cost
//
// A [Catalog] holds each model's sizes, qualities, formats, limits, prices
// and retirement date as data; [DefaultCatalog] has OpenAI's models as of
// December 2026 and [WithCatalog] replaces it. Requests are validated against
// it before any network call. [Result.Cost] comes from the usage the service
// reports, else from the catalog's estimate, and is marked unknown when a
// price is not published. Where the catalog has prices but no tokens per
// image, the Client estimates a call from the output tokens the service
// last reported for the same model, quality and size.
// [GenerateOptions.Preset], AspectRatio and MaxCostPerImage pick size and
// quality; [WithBudget] caps spending per window, reserving each call's
// estimate before it is sent.
//
// # Observability
//
// [Hooks] observe attempts, retries, fallbacks, rate-limit waits, breaker
// changes and cache use; [Client.Stats] returns per-provider and per-model
// success rates, latency percentiles, 429s and cost; [WithLogger] logs
// retries, fallbacks, breaker changes and swallowed errors with slog. Package
// metrics/prometheus exports the same figures to Prometheus.
//
// # Errors
//
// Failed attempts are *[Error] values with the provider, model, HTTP status,
// class, code, message, request id and requested wait; test their class with
// errors.Is and a sentinel such as [ErrRateLimited]. A call whose attempts
// all failed returns an *[AttemptsError] that explains the last failure and
// keeps every attempt's error reachable. Bad input returns a
// *[ValidationError] before any network call. No error text or log line
// contains an API key.
//
// # Concurrency
//
// A Client is safe for concurrent use. It never calls hooks while holding a
// lock, and every wait it makes (rate limits, backoff, HTTP) ends when the
// caller's context does.
package imagegen
