// Package redislimit implements imagegen.Limiter on Redis, so that several
// processes or hosts that share one provider quota pace their requests
// together instead of each needing its own share of the quota.
//
// # Buckets
//
// The requests-per-minute and images-per-minute limits are GCRA buckets
// (the generic cell rate algorithm, a token bucket kept as one timestamp)
// from github.com/go-redis/redis_rate/v10, which runs the algorithm in a Lua
// script on Redis's clock. A request takes one request token and one image
// token per image. As with imagegen.LocalLimiter, RequestBurst and
// ImageBurst (1 by default) set how many tokens a full bucket holds, and a
// bucket starts full.
//
// # Pauses and in-flight leases
//
// Redis also holds what redis_rate lacks. A 429 observed by one process
// pauses the key for every process: Observe stores "paused until T" in
// Redis, and Acquire waits until T. An optional cap on requests in flight
// (Limits.MaxInFlight) is kept as a sorted set of leases scored by their
// expiry, so that the slots of a process that crashes return after
// Options.LeaseTTL.
//
// # Keys
//
// For a LimitKey the limiter uses these Redis keys, where P is
// Options.Prefix and K is the key's String, "provider" or "provider/model":
//
//	P{K}:pause         string: end of the pause, in Unix milliseconds
//	P{K}:flight        sorted set: in-flight lease ids, scored by expiry
//	rate:P{K}:requests redis_rate's request bucket
//	rate:P{K}:images   redis_rate's image bucket
//
// The braces make K a Redis Cluster hash tag, so that the keys of one
// LimitKey share a slot and one script may use them together. redis_rate
// prepends "rate:" to the bucket keys itself. No key contains a secret.
//
// Every process that shares a quota must use the same prefix and the same
// Limits for each key: the buckets store no rate, and a process applies its
// own Limits to the shared state.
package redislimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/imagegen-go/imagegen"
)

// Defaults and bounds of the Limiter.
const (
	// DefaultPrefix is the key prefix when Options.Prefix is empty.
	DefaultPrefix = "imagegen:limit:"

	// DefaultLeaseTTL is the lease lifetime when Options.LeaseTTL is zero. It
	// is longer than the Client's default attempt timeout of 10 minutes.
	DefaultLeaseTTL = 15 * time.Minute

	// maxImages matches LocalLimiter's limit on the images one request may
	// charge.
	maxImages = 10_000

	// defaultPause is the pause after a 429 that names no wait, and
	// maxPause the longest pause, as in LocalLimiter.
	defaultPause = time.Second
	maxPause     = 10 * time.Minute

	// backgroundTimeout bounds the Redis calls of Observe and of release,
	// which have no caller context.
	backgroundTimeout = 5 * time.Second
)

// Options configures New. The zero value is ready to use.
type Options struct {
	// Prefix is prepended to every Redis key. Empty means DefaultPrefix.
	Prefix string

	// LeaseTTL is how long an in-flight lease lives when it is not released,
	// as after a crash, counted from the moment Acquire lets the request go.
	// It must be longer than any request, or the cap lets more requests in
	// flight than Limits.MaxInFlight. Zero means
	// DefaultLeaseTTL; negative values are rejected. It is rounded up to a
	// whole millisecond.
	LeaseTTL time.Duration

	// Logger receives pauses at Debug and Redis failures that Observe and
	// release drop at Warn. Nil logs nothing.
	Logger *slog.Logger
}

// Limiter is an imagegen.Limiter whose state lives in Redis, shared by every
// Limiter that uses the same Redis and prefix. Pass it to the Client with
// imagegen.WithLimiter.
//
// # Acquire
//
// Acquire repeats one round until the request may go. For each limit entry
// of the key, a round checks the pause and takes an in-flight lease in one
// Lua script. Then it takes tokens from the image bucket and the request
// bucket of each entry with redis_rate's AllowN. When a step must wait,
// Acquire sleeps for the wait that Redis returned and starts the next round.
// What a round took, leases and tokens, it keeps: a later round does not
// take them again.
//
// Images are taken before the request token. A request that has its images
// may then wait for a request token, and is sent later than its images were
// counted. redis_rate cannot give tokens back, so a request that gives up
// after taking some tokens, at its deadline or on cancellation, wastes them.
// Taking the request token first would hold it for the image wait, which is
// the longer one for image models.
//
// A request for more images than ImageBurst is allowed once the image bucket
// is full, and leaves the bucket in debt by the excess, so the requests after
// it wait. LocalLimiter instead makes such a request wait for the excess
// before it goes.
//
// If a wait would reach the context's deadline, Acquire returns at once an
// *imagegen.Error of class ClassRateLimited with RetryAfter set to the wait,
// as LocalLimiter does. If the context ends first, Acquire returns an error
// that wraps ctx.Err(). Either way it gives back its leases. Acquire starts
// no goroutine.
//
// If Redis fails or cannot be reached, Acquire returns an *imagegen.Error
// of class ClassNetwork, since nothing was sent to the provider, that wraps
// the go-redis error. It does not fall back to letting requests through
// unlimited.
//
// # Fairness and stampedes
//
// Waiters are not served first in, first out, within a process or across
// processes: each waiter polls Redis, and whichever asks first after tokens
// accrue gets them. A waiter makes two or more round trips each time it
// wakes, so N waiters on an exhausted bucket cost about 2N round trips per
// token.
//
// A waiter that meets a pause sleeps until the pause ends plus a random
// jitter of up to a quarter of the remaining pause, at most 1 second and
// never past the context's deadline, so that the waiters of all processes do
// not all return at the same instant.
// The buckets refill during a pause, so with bursts above 1 up to a burst of
// requests may go when the pause ends. LocalLimiter drains its buckets to
// one token instead.
//
// A waiter for an in-flight slot polls: first after 10 milliseconds, then
// doubling to at most 500 milliseconds, with each wait shortened by a random
// 0 to 50%, and never past the expiry of the oldest lease.
//
// # Feedback
//
// Observe pauses a key as LocalLimiter does: a ClassRateLimited or
// ClassServer failure with RetryAfter, or rate-limit headers with a
// Remaining of 0 and a Reset, pause it until the longest of those waits,
// capped at 10 minutes, and a ClassRateLimited failure with neither pauses
// it for 1 second. ClassQuotaExceeded and ClassNotEntitled failures never
// pause. A pause only ever extends the current one. Feedback goes to the
// provider+model entry when this Limiter configured one, and to the
// provider-wide entry otherwise.
//
// Unlike LocalLimiter, repeated 429s do not slow the rates down:
// Limits.MinRateFraction is validated and otherwise ignored.
//
// # Keys and entries
//
// As with LocalLimiter, a key with a Model is limited by the provider-wide
// entry (SetLimits with Model "") and, if this Limiter configured one, by the
// provider+model entry. Keys that were never configured are unlimited but
// still honour pauses, so each Acquire makes at least one round trip.
//
// A Limiter is safe for concurrent use. Its configuration is local: every
// process calls SetLimits itself.
type Limiter struct {
	client   redis.UniversalClient
	buckets  *redis_rate.Limiter
	prefix   string
	leaseTTL time.Duration
	logger   *slog.Logger

	// leasePrefix makes this Limiter's lease ids unique among processes and
	// leaseSeq among its own requests.
	leasePrefix string
	leaseSeq    atomic.Uint64

	mu sync.RWMutex
	// entries holds the configured keys and the provider-wide entries
	// created for feedback or pauses of unconfigured providers. Entries are
	// never modified: SetLimits replaces them.
	entries map[imagegen.LimitKey]*limitEntry
}

var _ imagegen.Limiter = (*Limiter)(nil)

// New returns a Limiter that keeps its state in Redis through client, which
// the caller keeps and closes. It returns an error if client is nil or
// opts.LeaseTTL is negative.
func New(client redis.UniversalClient, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("imagegen: redislimit client is nil: pass a redis.UniversalClient")
	}
	if opts.LeaseTTL < 0 {
		return nil, fmt.Errorf("imagegen: invalid redislimit.Options.LeaseTTL %v: use 0 for the default (%v) or a positive duration longer than any request", opts.LeaseTTL, DefaultLeaseTTL)
	}

	l := &Limiter{
		client:      client,
		buckets:     redis_rate.NewLimiter(client),
		prefix:      opts.Prefix,
		leaseTTL:    opts.LeaseTTL,
		logger:      opts.Logger,
		leasePrefix: rand.Text() + ":",
		entries:     make(map[imagegen.LimitKey]*limitEntry),
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.leaseTTL == 0 {
		l.leaseTTL = DefaultLeaseTTL
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// SetLimits configures the limits of key in this Limiter. A key with Model ""
// sets the provider-wide limits. A key with a Model sets limits that apply in
// addition to the provider-wide ones, and makes that model a separate target
// of feedback, even with zero Limits. Zero fields mean no limit.
//
// SetLimits returns an error, and changes nothing, if key.Provider is empty
// or a field of lim is invalid, checked as LocalLimiter.SetLimits checks
// them. It makes no Redis call: the limits apply to this Limiter's later
// Acquire calls, and the state in Redis is kept.
func (l *Limiter) SetLimits(key imagegen.LimitKey, lim imagegen.Limits) error {
	// A throwaway LocalLimiter validates exactly as LocalLimiter does.
	if err := imagegen.NewLocalLimiter().SetLimits(key, lim); err != nil {
		return err
	}
	e := l.newEntry(key, lim)
	l.mu.Lock()
	l.entries[key] = e
	l.mu.Unlock()
	return nil
}

// Acquire blocks until a request for images images may be sent under key,
// as described on Limiter. images below 1 count as 1; more than 10,000 is
// rejected with an *imagegen.ValidationError. On success the caller must call
// release once the request finishes; extra calls do nothing. release makes a
// Redis call, bounded by 5 seconds, only when the key has an in-flight cap.
func (l *Limiter) Acquire(ctx context.Context, key imagegen.LimitKey, images int) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(key, err)
	}
	if images > maxImages {
		return nil, &imagegen.ValidationError{
			Field:  "n",
			Value:  strconv.Itoa(images),
			Reason: "the rate limiter charges at most " + strconv.Itoa(maxImages) + " images per request; split the request",
		}
	}

	a := &acquisition{limiter: l, key: key, images: max(images, 1)}
	a.entries, a.n = l.entriesFor(key)
	return a.run(ctx)
}

// Observe feeds back what the provider reported after a call under key, as
// described on Limiter. It makes a Redis call, bounded by 5 seconds, only
// when the feedback pauses the key. Redis failures are logged at Warn and
// dropped.
func (l *Limiter) Observe(key imagegen.LimitKey, fb imagegen.LimitFeedback) {
	pause := pauseFor(fb)
	if pause <= 0 {
		return
	}
	e := l.feedbackEntry(key)

	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()
	extended, err := pauseScript.Run(ctx, l.client, []string{e.pauseKey}, ceilMilliseconds(pause)).Int()
	if err != nil {
		l.logger.Warn("imagegen: redis limiter could not store a pause; other processes will not wait for it",
			"provider", e.key.Provider, "model", e.key.Model, "pause", pause, "error", err)
		return
	}
	if extended == 1 {
		l.logger.Debug("imagegen: rate limiter paused",
			"provider", e.key.Provider, "model", e.key.Model, "pause", pause,
			"success", fb.Success, "class", fb.Class.String())
	}
}

// pauseFor returns how long every process must wait after fb: the longest of
// RetryAfter (for rate limits and server errors) and the reset of any
// rate-limit window with nothing remaining, capped at maxPause. A 429 with
// neither gets defaultPause. Quota and entitlement failures get none. These
// are LocalLimiter's rules.
func pauseFor(fb imagegen.LimitFeedback) time.Duration {
	if !fb.Success && (fb.Class == imagegen.ClassQuotaExceeded || fb.Class == imagegen.ClassNotEntitled) {
		return 0
	}
	var pause time.Duration
	if !fb.Success && (fb.Class == imagegen.ClassRateLimited || fb.Class == imagegen.ClassServer) {
		pause = fb.RetryAfter
	}
	for _, q := range [...]struct {
		known     bool
		remaining int64
		reset     time.Duration
	}{
		{fb.RateLimit.Requests.Known, fb.RateLimit.Requests.Remaining, fb.RateLimit.Requests.Reset},
		{fb.RateLimit.Tokens.Known, fb.RateLimit.Tokens.Remaining, fb.RateLimit.Tokens.Reset},
	} {
		if q.known && q.remaining == 0 && q.reset > 0 {
			pause = max(pause, q.reset)
		}
	}
	if pause <= 0 && !fb.Success && fb.Class == imagegen.ClassRateLimited {
		pause = defaultPause
	}
	return min(pause, maxPause)
}

// limitEntry is the Redis keys and limits of one LimitKey.
type limitEntry struct {
	key    imagegen.LimitKey
	limits imagegen.Limits

	pauseKey, flightKey, requestsKey, imagesKey string

	// requests and images are the bucket limits, zero when unlimited.
	requests, images redis_rate.Limit
}

func (l *Limiter) newEntry(key imagegen.LimitKey, lim imagegen.Limits) *limitEntry {
	base := l.prefix + "{" + key.String() + "}:"
	return &limitEntry{
		key:         key,
		limits:      lim,
		pauseKey:    base + "pause",
		flightKey:   base + "flight",
		requestsKey: base + "requests",
		imagesKey:   base + "images",
		requests:    bucketLimit(lim.RequestsPerMinute, lim.RequestBurst),
		images:      bucketLimit(lim.ImagesPerMinute, lim.ImageBurst),
	}
}

// bucketLimit expresses perMinute as one token per interval, since
// redis_rate counts whole tokens per period and the rate may be fractional.
func bucketLimit(perMinute float64, burst int) redis_rate.Limit {
	if perMinute <= 0 {
		return redis_rate.Limit{}
	}
	interval := max(time.Duration(float64(time.Minute)/perMinute), time.Nanosecond)
	return redis_rate.Limit{Rate: 1, Period: interval, Burst: max(burst, 1)}
}

// entriesFor returns the entries that limit key: the provider+model entry,
// if configured, then the provider-wide entry.
func (l *Limiter) entriesFor(key imagegen.LimitKey) (entries [2]*limitEntry, n int) {
	providerKey := imagegen.LimitKey{Provider: key.Provider}
	l.mu.RLock()
	if key.Model != "" {
		if e := l.entries[key]; e != nil {
			entries[n] = e
			n++
		}
	}
	providerEntry := l.entries[providerKey]
	l.mu.RUnlock()

	if providerEntry == nil {
		providerEntry = l.ensureProviderEntry(providerKey)
	}
	entries[n] = providerEntry
	n++
	return entries, n
}

// feedbackEntry returns the entry that receives key's feedback.
func (l *Limiter) feedbackEntry(key imagegen.LimitKey) *limitEntry {
	entries, _ := l.entriesFor(key)
	return entries[0]
}

// ensureProviderEntry returns the provider-wide entry of key, creating an
// unconfigured one if SetLimits never configured it.
func (l *Limiter) ensureProviderEntry(key imagegen.LimitKey) *limitEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[key]; e != nil {
		return e
	}
	e := l.newEntry(key, imagegen.Limits{})
	l.entries[key] = e
	return e
}

// newLeaseID returns an id unique among the leases of every process.
func (l *Limiter) newLeaseID() string {
	return l.leasePrefix + strconv.FormatUint(l.leaseSeq.Add(1), 10)
}

// ceilMilliseconds returns d in whole milliseconds, rounded up, at least 1.
func ceilMilliseconds(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

func contextError(key imagegen.LimitKey, err error) error {
	return fmt.Errorf("imagegen: %s: waiting for the rate limiter: %w", key, err)
}

// redisError reports that the limiter's Redis failed, for Acquire.
func redisError(key imagegen.LimitKey, err error) error {
	return &imagegen.Error{
		Provider: key.Provider,
		Model:    key.Model,
		Class:    imagegen.ClassNetwork,
		Message:  "rate limiter's Redis is unreachable or failed, so no request is sent: " + imagegen.Redact(err.Error()),
		Err:      err,
	}
}
