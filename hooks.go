package imagegen

import (
	"context"
	"time"

	"github.com/imagegen-go/imagegen/provider"
)

// Hooks are optional callbacks that observe a Client's calls, for metrics,
// tracing and tests. Every field may be nil.
//
// The Client calls hooks synchronously on the goroutine of the call that
// caused the event, never while holding a lock, in the order the events
// happen. A hook must not block: a slow hook delays that call, and only that
// call. A hook that panics is recovered, the panic is logged at Error level,
// and the call continues as if the hook had returned.
//
// Several Hooks values can be registered with WithHooks; they run in the
// order they were registered.
type Hooks struct {
	// AttemptStart runs before each provider call, after any rate-limit wait.
	AttemptStart func(ctx context.Context, e AttemptStartEvent)
	// AttemptEnd runs after each provider call, successful or not.
	AttemptEnd func(ctx context.Context, e AttemptEndEvent)
	// Retry runs when the Client decides to retry the same provider, before
	// it waits Delay.
	Retry func(ctx context.Context, e RetryEvent)
	// Fallback runs when the Client moves from one provider or model to the next.
	Fallback func(ctx context.Context, e FallbackEvent)
	// RateLimitWait runs after the Client waited for a rate limiter, when the
	// wait lasted 1 ms or more or failed.
	RateLimitWait func(ctx context.Context, e RateLimitWaitEvent)
	// BreakerChange runs when a provider's circuit breaker changes state.
	BreakerChange func(ctx context.Context, e BreakerEvent)
	// CacheHit, CacheMiss and CacheError run after a cache lookup or store.
	// A cache error never fails the call.
	CacheHit   func(ctx context.Context, e CacheEvent)
	CacheMiss  func(ctx context.Context, e CacheEvent)
	CacheError func(ctx context.Context, e CacheEvent)
	// Done runs once per Generate or Edit call with its outcome.
	Done func(ctx context.Context, e DoneEvent)
}

// AttemptStartEvent describes a provider call about to be sent.
type AttemptStartEvent struct {
	Provider string
	Model    string
	// Attempt is the 1-based number of this attempt on this provider and model.
	Attempt int
	// Images is the number of images requested.
	Images int
}

// AttemptEndEvent describes a finished provider call.
type AttemptEndEvent struct {
	Provider string
	Model    string
	Attempt  int
	// Latency is the duration of the provider call alone.
	Latency time.Duration
	// Err is nil on success. Class is its class, ClassUnknown on success.
	Err   error
	Class Class
	// Images is the number of images returned; Usage is the reported usage or nil.
	Images    int
	Usage     *provider.Usage
	RequestID string
}

// RetryEvent describes a retry of the same provider and model.
type RetryEvent struct {
	Provider string
	Model    string
	// Attempt is the number of the attempt that failed.
	Attempt int
	// Delay is how long the Client waits before the next attempt.
	Delay time.Duration
	// Err is the failure that caused the retry.
	Err   error
	Class Class
}

// FallbackEvent describes a move to the next provider or model.
type FallbackEvent struct {
	FromProvider string
	FromModel    string
	ToProvider   string
	ToModel      string
	// Err is the failure that caused the move.
	Err   error
	Class Class
}

// RateLimitWaitEvent describes a wait for a rate limiter.
type RateLimitWaitEvent struct {
	Provider string
	Model    string
	// Wait is how long the call waited.
	Wait time.Duration
	// Err is non-nil when the wait failed, for example because the wait
	// would pass the context's deadline.
	Err error
}

// BreakerEvent describes a circuit breaker state change.
type BreakerEvent struct {
	Provider string
	From     BreakerState
	To       BreakerState
	// Cause is the failure that opened the breaker, or nil.
	Cause error
}

// CacheEvent describes a cache lookup or store.
type CacheEvent struct {
	// Key is the cache key, a hash that contains no prompt text.
	Key string
	// Op is "get" or "set".
	Op string
	// Err is the cache's error for CacheError, nil otherwise.
	Err error
}

// DoneEvent describes the outcome of a Generate or Edit call.
type DoneEvent struct {
	// Provider and Model name the provider and the requested model of the
	// call's last attempt, the last request it sent. Both are empty when the
	// call sent no request: a cache hit, a shared result, a request rejected
	// before routing, or a call that open breakers or rate limiters held back.
	Provider string
	Model    string
	// Result is nil when the call failed without any image. A partial
	// result comes with a *PartialError in Err.
	Result *Result
	// Err is nil on success. Class is its class, ClassUnknown on success.
	Err   error
	Class Class
	// Latency is the wall time of the whole call.
	Latency time.Duration
}
