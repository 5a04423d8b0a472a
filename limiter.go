package imagegen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/imagegen-go/imagegen/provider"
)

// Limiter decides when a request may be sent to a provider.
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Acquire blocks until a request for images images may be sent under
	// key, or returns an error. The caller must call release once the
	// request finishes, successful or not, to free its in-flight slot. A
	// nil release is allowed and means there is nothing to free. The Client
	// classifies errors like a provider's: return an *Error of class
	// ClassRateLimited, with RetryAfter, when the wait would pass ctx's
	// deadline, and an error wrapping ctx.Err() when ctx ends.
	Acquire(ctx context.Context, key LimitKey, images int) (release func(), err error)

	// Observe feeds back what the provider reported after a call, on
	// success and on failure.
	Observe(key LimitKey, fb LimitFeedback)
}

// LimitKey names the quota that a request counts against: a provider and,
// optionally, one of its models. Provider is the provider's Name.
type LimitKey struct {
	Provider, Model string
}

// String returns "provider" or "provider/model", for errors and logs.
func (k LimitKey) String() string {
	if k.Model == "" {
		return k.Provider
	}
	return k.Provider + "/" + k.Model
}

// LimitFeedback is the quota information that one provider call returned.
type LimitFeedback struct {
	// Class is the failure class. It is ignored when Success is true.
	Class Class

	// Success reports whether the call succeeded.
	Success bool

	// RetryAfter is the wait that the provider requested, such as a
	// Retry-After header, or 0 if none.
	RetryAfter time.Duration

	// RateLimit is the x-ratelimit-* state from the response, on success and
	// on error.
	RateLimit provider.RateLimit

	// Images is the number of images the call requested. LocalLimiter does
	// not use it, but implementations that count usage may.
	Images int
}

// Limits is the quota of one provider, or of one model of a provider. Every
// zero field means "no limit" or the documented default, so the zero Limits
// value limits nothing.
type Limits struct {
	// RequestsPerMinute is the sustained request rate. Zero means unlimited.
	// Non-zero values below 0.01 are rejected.
	RequestsPerMinute float64

	// ImagesPerMinute is the sustained image rate: a request for n images
	// takes n tokens. Zero means unlimited. Non-zero values below 0.01 are
	// rejected.
	ImagesPerMinute float64

	// MaxInFlight caps the requests sent and not yet released. Zero means
	// unlimited.
	MaxInFlight int

	// RequestBurst is the number of requests that may be sent at once after
	// an idle period. Zero means 1: requests are spaced 60/RequestsPerMinute
	// seconds apart from the first one on, so a fresh quota is never spent
	// in one burst at start-up.
	RequestBurst int

	// ImageBurst is the number of image tokens the bucket holds when full.
	// Zero means 1. A request for more images than ImageBurst is still
	// allowed: it waits until its images have accrued one by one, as if the
	// burst were that large for this request only.
	ImageBurst int

	// MinRateFraction is the lowest fraction of the configured rates that
	// repeated 429s may slow the key down to, in (0, 1]. Zero means 1/8.
	// 1 turns the slow-down off, but pauses still apply.
	MinRateFraction float64
}

// Defaults and bounds of LocalLimiter. They are documented on LocalLimiter.
const (
	limiterDefaultFloor      = 1.0 / 8
	limiterMinRatePerMinute  = 0.01
	limiterMaxImages         = 10_000
	limiterDefaultPause      = time.Second
	limiterMaxPause          = 10 * time.Minute
	limiterStrikeCoalesce    = 2 * time.Second
	limiterStrikeWindow      = time.Minute
	limiterRecoveryStep      = 15 * time.Second
	limiterRecoveryIncrement = 1.0 / 16
)

// validate returns an error naming the first invalid field of lim.
func (lim Limits) validate(key LimitKey) error {
	rates := []struct {
		name  string
		value float64
	}{
		{"RequestsPerMinute", lim.RequestsPerMinute},
		{"ImagesPerMinute", lim.ImagesPerMinute},
	}
	for _, r := range rates {
		if math.IsNaN(r.value) || math.IsInf(r.value, 0) || r.value < 0 || (r.value > 0 && r.value < limiterMinRatePerMinute) {
			return fmt.Errorf("imagegen: invalid limits for %s: %s is %v; use 0 for no limit or a rate of at least %v per minute",
				key, r.name, r.value, limiterMinRatePerMinute)
		}
	}

	counts := []struct {
		name  string
		value int
	}{
		{"MaxInFlight", lim.MaxInFlight},
		{"RequestBurst", lim.RequestBurst},
		{"ImageBurst", lim.ImageBurst},
	}
	for _, c := range counts {
		if c.value < 0 {
			return fmt.Errorf("imagegen: invalid limits for %s: %s is %d; use 0 for the default or a positive count",
				key, c.name, c.value)
		}
	}

	if math.IsNaN(lim.MinRateFraction) || lim.MinRateFraction < 0 || lim.MinRateFraction > 1 {
		return fmt.Errorf("imagegen: invalid limits for %s: MinRateFraction is %v; use a fraction from 0 (default 1/8) to 1 (no slow-down)",
			key, lim.MinRateFraction)
	}
	return nil
}

// openAIImagesPerMinute contains OpenAI's images-per-minute limits for GPT
// Image models, indexed by usage tier. Source: OpenAI's published usage-tier
// rate limits for GPT Image models, as collected in December 2026.
// OpenAI applies them per organisation and model. Its tokens-per-minute
// limits (100k at tier 1 to 8M at tier 5) can run out first, and Limits does
// not model them.
var openAIImagesPerMinute = [...]float64{1: 5, 2: 20, 3: 50, 4: 150, 5: 250}

// OpenAITier returns the Limits of an OpenAI organisation at usage tier 1 to
// 5 for GPT Image models: 5, 20, 50, 150 or 250 images per minute, with the
// default bursts. It returns an error for any other tier.
//
// NOTE: OpenAI changes these limits over time and may grant an organisation
// others; the organisation's limits page is authoritative.
func OpenAITier(tier int) (Limits, error) {
	if tier < 1 || tier >= len(openAIImagesPerMinute) {
		return Limits{}, fmt.Errorf("imagegen: invalid OpenAI usage tier %d: use 1 to %d", tier, len(openAIImagesPerMinute)-1)
	}
	return Limits{ImagesPerMinute: openAIImagesPerMinute[tier]}, nil
}

// LimitState is a snapshot of the state that governs one key's feedback.
type LimitState struct {
	// Limits are the limits configured with SetLimits; zero for a key that
	// was never configured.
	Limits Limits

	// RateFraction is the fraction of the configured rates in force, in
	// (0, 1]. It is below 1 while the key recovers from repeated 429s.
	RateFraction float64

	// PausedUntil is the end of the latest feedback pause. It is zero or in
	// the past when the key is not paused.
	PausedUntil time.Time
}

// LocalLimiter is the default Limiter. It paces the requests of one process;
// processes that share a quota each need their share in Limits.
//
// For each key configured with SetLimits it keeps a token bucket of requests,
// a token bucket of images and a cap on requests in flight. The buckets are
// golang.org/x/time/rate limiters refilled at RequestsPerMinute/60 and
// ImagesPerMinute/60 tokens per second, holding at most RequestBurst and
// ImageBurst tokens (1 by default) and full at start. A request takes one
// request token and one image token per image. With the default bursts the
// requests sent conform to a token bucket of the configured rate and a
// capacity of one. A provider that enforces a token bucket of the same rate
// therefore does not reject them with 429, as long as its bucket has room
// for the largest request plus one token for timer and network jitter.
//
// A key with a Model waits for the provider-wide entry (SetLimits with Model
// "") and, if one was configured, for the provider+model entry too. Keys
// that were never configured are unlimited but still honour pauses.
//
// Acquire first takes an in-flight slot from a FIFO semaphore, then reserves
// its tokens and sleeps until they are due. Reservations are made in the
// order in which callers get their slot, so waiters are served first in,
// first out. If the wait would reach the context's deadline, Acquire returns
// an *Error of class ClassRateLimited at once, with RetryAfter set to the
// wait. If the context ends first, Acquire returns an error that wraps
// ctx.Err(). Either way its tokens that are not yet due go back to the
// bucket as far as no later reservation already counts on them (see
// rate.Reservation.CancelAt): the next caller to arrive gets them, and
// waiters already queued keep their place and time. Tokens that were due
// while the waiter was held back by its other entry, by that entry's pause
// or queue, stay spent.
//
// Feedback goes to the provider+model entry when one was configured and to
// the provider-wide entry otherwise. A ClassRateLimited or ClassServer
// failure with RetryAfter, or rate-limit headers with a Remaining of 0 and a
// Reset, pause that entry for every caller until the longest of those waits,
// capped at 10 minutes. A ClassRateLimited failure with neither pauses it
// for 1 second. During a pause the entry's buckets stand still, so queued
// requests move back together and then resume one at a time at the bucket's
// rate; each bucket keeps at most one token for the end of the pause,
// whatever its burst. An entry without rates has no pace to resume at, so
// its waiters all go when the pause ends. ClassQuotaExceeded and
// ClassNotEntitled failures are not rate limits and are ignored.
//
// Repeated 429s slow an entry down. A 429 is counted unless it arrives
// within 2 seconds of the previous counted one, which it most likely shares
// a cause with. A counted 429 within a minute of the previous counted one
// halves the entry's rates, down to MinRateFraction (1/8 by default). The
// rates then climb back by 1/16 of the configured rates every 15 seconds
// without a halving, so a halved rate is whole again after 2 minutes. The
// slow-down also stretches the waits of requests already queued.
//
// NOTE: when both a provider-wide and a provider+model entry limit a key,
// a request held back by one entry uses its token in the other late, so the
// other entry may briefly send more than its burst.
//
// Acquire charges at most 10,000 images per request. A waiting caller costs
// about 1 KB of heap besides its own goroutine, and the limiter starts no
// goroutines.
//
// The zero value is an unlimited limiter with no logger. A LocalLimiter is
// safe for concurrent use and must not be copied after first use.
type LocalLimiter struct {
	logger *slog.Logger

	mu     sync.RWMutex
	groups map[string]*limitGroup // by provider name
}

// LocalLimiterOption configures a LocalLimiter.
type LocalLimiterOption func(*LocalLimiter)

// WithLimiterLogger makes the limiter log pauses at Debug and rate
// slow-downs at Info. A nil logger, the default, logs nothing.
func WithLimiterLogger(logger *slog.Logger) LocalLimiterOption {
	return func(l *LocalLimiter) { l.logger = logger }
}

// NewLocalLimiter returns a LocalLimiter with no limits configured. Call
// SetLimits to configure keys.
func NewLocalLimiter(opts ...LocalLimiterOption) *LocalLimiter {
	l := &LocalLimiter{}
	for _, opt := range opts {
		if opt != nil {
			opt(l)
		}
	}
	return l
}

// limitGroup holds the entries of one provider. Its mutex guards every
// entry's state and every reservation in its buckets, so that a request
// reserves in all its buckets at one instant.
type limitGroup struct {
	mu       sync.Mutex
	provider *limitEntry            // provider-wide entry, never nil
	models   map[string]*limitEntry // provider+model entries configured with SetLimits
}

// limitEntry is the state of one configured key, or of an unconfigured
// provider that received feedback.
type limitEntry struct {
	key        LimitKey
	configured bool
	limits     Limits
	floor      float64 // lowest clock speed after 429s

	requests *rate.Limiter       // nil when unlimited
	images   *rate.Limiter       // nil when unlimited
	inFlight *semaphore.Weighted // nil when unlimited

	clock      limitClock
	pauseUntil time.Time

	lastStrike  time.Time // latest counted 429
	decreasedAt time.Time // latest halving; zero once the rates are whole again
	decreasedTo float64   // clock speed set at decreasedAt

	// wake is closed when the clock speeds up, so that sleeping waiters
	// recompute their due time. It is nil until a waiter needs it.
	wake chan struct{}

	// head and tail list the waiters whose reservations in this entry's
	// buckets are not due yet, in reservation order, which is also due order.
	head, tail *limitWaitPart
	queued     int
}

func newLimitEntry(key LimitKey, now time.Time) *limitEntry {
	return &limitEntry{
		key:   key,
		floor: limiterDefaultFloor,
		clock: limitClock{anchorReal: now, anchorVirtual: now, last: now, speed: 1},
	}
}

// limitClock maps real time to an entry's virtual time. The entry's token
// buckets run in virtual time at their configured rates. After repeated 429s
// the clock runs slower than real time, and during a pause it stops, which
// delays every queued reservation without reordering them.
type limitClock struct {
	anchorReal    time.Time
	anchorVirtual time.Time
	speed         float64   // virtual seconds per real second, in (0, 1]
	last          time.Time // latest virtual time handed out: the clock never goes back
}

// virtualAt returns the virtual time at real time t.
func (c *limitClock) virtualAt(t time.Time) time.Time {
	elapsed := t.Sub(c.anchorReal)
	if c.speed != 1 {
		elapsed = time.Duration(float64(elapsed) * c.speed)
	}
	v := c.anchorVirtual.Add(elapsed)
	if v.Before(c.last) {
		return c.last
	}
	c.last = v
	return v
}

// realAt returns the real time at which the clock reaches v. v must be after
// the latest virtual time handed out.
func (c *limitClock) realAt(v time.Time) time.Time {
	d := v.Sub(c.anchorVirtual)
	if c.speed != 1 {
		// Saturate: at a tiny speed the real wait may not fit a Duration.
		scaled := float64(d) / c.speed
		if scaled >= float64(limiterMaxWait) {
			return c.anchorReal.Add(limiterMaxWait)
		}
		d = time.Duration(scaled)
	}
	return c.anchorReal.Add(d)
}

// limiterMaxWait bounds a computed wait, so that time arithmetic on it
// cannot overflow.
const limiterMaxWait = 100 * 365 * 24 * time.Hour

// setSpeed changes the clock's speed from now on. An anchor in the future,
// set by a pause, stays where it is.
func (c *limitClock) setSpeed(now time.Time, speed float64) {
	if now.After(c.anchorReal) {
		c.anchorVirtual = c.virtualAt(now)
		c.anchorReal = now
	}
	c.speed = speed
}

// holdUntil makes the clock reach v, which must not be before the latest
// virtual time handed out, no earlier than real time until. Until then the
// clock stops at its latest value.
func (c *limitClock) holdUntil(until, v time.Time) {
	if c.realAt(v).Before(until) {
		c.anchorReal = until
		c.anchorVirtual = v
	}
}

// limitWaitPart is one waiter's reservation in one entry.
type limitWaitPart struct {
	entry      *limitEntry
	requests   *rate.Reservation
	images     *rate.Reservation
	dueV       time.Time // virtual time at which all reserved tokens are due
	queued     bool
	prev, next *limitWaitPart
}

// limitWaiter is one Acquire call.
type limitWaiter struct {
	key      LimitKey
	group    *limitGroup
	parts    [2]limitWaitPart // model entry first, then provider-wide entry
	n        int
	slots    [2]*semaphore.Weighted
	released atomic.Bool
}

// limitNoRelease is the release function of a request that took no slot.
func limitNoRelease() {}

// SetLimits configures the limits of key. A key with Model "" sets the
// provider-wide limits. A key with a Model sets limits that apply in
// addition to the provider-wide ones, and makes that model a separate target
// of feedback, even with zero Limits.
//
// Calling SetLimits again replaces the limits. Requests already waiting keep
// their place and time, new rates and bursts apply to later reservations,
// and a new MaxInFlight applies to requests admitted after the call.
// Requests in flight or queued under the old cap do not count against it.
// SetLimits returns an error, and changes nothing, if key.Provider is empty
// or a field of lim is invalid.
func (l *LocalLimiter) SetLimits(key LimitKey, lim Limits) error {
	if key.Provider == "" {
		return fmt.Errorf("imagegen: invalid limit key %q: the provider name is empty; use the provider's Name", key)
	}
	if err := lim.validate(key); err != nil {
		return err
	}

	now := time.Now()
	g := l.ensureGroup(key.Provider, now)
	g.mu.Lock()
	defer g.mu.Unlock()

	e := g.provider
	if key.Model != "" {
		e = g.models[key.Model]
		if e == nil {
			e = newLimitEntry(key, now)
			if g.models == nil {
				g.models = make(map[string]*limitEntry)
			}
			g.models[key.Model] = e
		}
	}
	e.applyLimitsLocked(now, lim)
	return nil
}

// Acquire blocks until a request for images images may be sent under key,
// as described on LocalLimiter. images below 1 count as 1; more than 10,000
// is rejected with a *ValidationError. On success the caller must call
// release once the request finishes; extra calls do nothing.
func (l *LocalLimiter) Acquire(ctx context.Context, key LimitKey, images int) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, limiterContextError(key, err)
	}
	if images > limiterMaxImages {
		return nil, &ValidationError{
			Field:  "n",
			Value:  strconv.Itoa(images),
			Reason: "the rate limiter charges at most " + strconv.Itoa(limiterMaxImages) + " images per request; split the request",
		}
	}
	images = max(images, 1)

	g := l.lookupGroup(key.Provider)
	if g == nil {
		return limitNoRelease, nil
	}

	g.mu.Lock()
	entries, n := g.entriesLocked(key)
	if limitEntriesIdle(entries[:n]) {
		g.mu.Unlock()
		return limitNoRelease, nil
	}

	w := &limitWaiter{key: key, group: g, n: n}
	for i, e := range entries[:n] {
		w.parts[i].entry = e
		w.slots[i] = e.inFlight
	}
	release = limitNoRelease
	if w.slots[0] != nil || w.slots[1] != nil {
		release = w.release
		g.mu.Unlock()
		if err := w.acquireSlots(ctx); err != nil {
			return nil, limiterContextError(key, err)
		}
		g.mu.Lock()
	}
	now := time.Now()
	w.reserveLocked(now, images)
	if due, _, _ := w.dueLocked(now); !due.After(now) {
		w.finishLocked()
		g.mu.Unlock()
		return release, nil
	}
	g.mu.Unlock()

	if err := w.wait(ctx); err != nil {
		w.release()
		return nil, err
	}
	return release, nil
}

// Observe feeds back what the provider reported after a call under key, as
// described on LocalLimiter.
func (l *LocalLimiter) Observe(key LimitKey, fb LimitFeedback) {
	l.ObserveAt(time.Now(), key, fb)
}

// ObserveAt is Observe for feedback received at time t, which must not be
// later than the current time: the key's buckets cannot run before t.
func (l *LocalLimiter) ObserveAt(t time.Time, key LimitKey, fb LimitFeedback) {
	if !fb.Success && (fb.Class == ClassQuotaExceeded || fb.Class == ClassNotEntitled) {
		return
	}
	rateLimited := !fb.Success && fb.Class == ClassRateLimited
	pause := limiterPauseFor(fb)
	if pause <= 0 && !rateLimited {
		return
	}

	g := l.ensureGroup(key.Provider, t)
	g.mu.Lock()
	e := g.feedbackEntryLocked(key)
	e.refreshLocked(t)
	slowed := false
	if rateLimited {
		slowed = e.strikeLocked(t)
	}
	paused := e.pauseLocked(t, t.Add(pause))
	speed := e.clock.speed
	target := e.key
	g.mu.Unlock()

	if l.logger == nil {
		return
	}
	if slowed {
		l.logger.Info("imagegen: rate limiter slowed down after repeated 429s",
			"provider", target.Provider, "model", target.Model, "rate_fraction", speed)
	}
	if paused {
		l.logger.Debug("imagegen: rate limiter paused",
			"provider", target.Provider, "model", target.Model, "pause", pause,
			"success", fb.Success, "class", fb.Class.String())
	}
}

// State returns the state that governs the feedback of key: its configured
// limits, the fraction of its rates in force and the end of its latest pause.
func (l *LocalLimiter) State(key LimitKey) LimitState {
	g := l.lookupGroup(key.Provider)
	if g == nil {
		return LimitState{RateFraction: 1}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.feedbackEntryLocked(key)
	e.refreshLocked(time.Now())
	return LimitState{Limits: e.limits, RateFraction: e.clock.speed, PausedUntil: e.pauseUntil}
}

func (l *LocalLimiter) lookupGroup(providerName string) *limitGroup {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.groups[providerName]
}

func (l *LocalLimiter) ensureGroup(providerName string, now time.Time) *limitGroup {
	if g := l.lookupGroup(providerName); g != nil {
		return g
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if g := l.groups[providerName]; g != nil {
		return g
	}
	if l.groups == nil {
		l.groups = make(map[string]*limitGroup)
	}
	g := &limitGroup{provider: newLimitEntry(LimitKey{Provider: providerName}, now)}
	l.groups[providerName] = g
	return g
}

// entriesLocked returns the entries that limit key: the model entry, if
// configured, then the provider-wide entry.
func (g *limitGroup) entriesLocked(key LimitKey) (entries [2]*limitEntry, n int) {
	if key.Model != "" {
		if e := g.models[key.Model]; e != nil {
			entries[n] = e
			n++
		}
	}
	entries[n] = g.provider
	n++
	return entries, n
}

// feedbackEntryLocked returns the entry that receives key's feedback.
func (g *limitGroup) feedbackEntryLocked(key LimitKey) *limitEntry {
	if key.Model != "" {
		if e := g.models[key.Model]; e != nil {
			return e
		}
	}
	return g.provider
}

// limitEntriesIdle reports whether entries neither limit nor pause a request
// now. It reads the clock only if an entry was ever paused.
func limitEntriesIdle(entries []*limitEntry) bool {
	var now time.Time
	for _, e := range entries {
		if e.requests != nil || e.images != nil || e.inFlight != nil {
			return false
		}
		if e.pauseUntil.IsZero() {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		if e.pauseUntil.After(now) {
			return false
		}
	}
	return true
}

// limiterPauseFor returns how long every caller must wait after fb: the
// longest of RetryAfter (for rate limits and server errors) and the reset of
// any rate-limit window with nothing remaining, capped at limiterMaxPause.
func limiterPauseFor(fb LimitFeedback) time.Duration {
	var pause time.Duration
	if !fb.Success && (fb.Class == ClassRateLimited || fb.Class == ClassServer) {
		pause = fb.RetryAfter
	}
	for _, q := range []provider.Quota{fb.RateLimit.Requests, fb.RateLimit.Tokens} {
		if q.Known && q.Remaining == 0 && q.Reset > 0 {
			pause = max(pause, q.Reset)
		}
	}
	if pause <= 0 && !fb.Success && fb.Class == ClassRateLimited {
		pause = limiterDefaultPause
	}
	return min(pause, limiterMaxPause)
}

func limiterContextError(key LimitKey, err error) error {
	return fmt.Errorf("imagegen: %s: waiting for the rate limiter: %w", key, err)
}

// applyLimitsLocked installs lim, keeping the tokens and reservations of
// buckets that exist already.
func (e *limitEntry) applyLimitsLocked(now time.Time, lim Limits) {
	v := e.clock.virtualAt(now)
	e.requests = limitBucket(e.requests, v, lim.RequestsPerMinute, lim.RequestBurst)
	e.images = limitBucket(e.images, v, lim.ImagesPerMinute, lim.ImageBurst)

	if !e.configured || lim.MaxInFlight != e.limits.MaxInFlight {
		e.inFlight = nil
		if lim.MaxInFlight > 0 {
			e.inFlight = semaphore.NewWeighted(int64(lim.MaxInFlight))
		}
	}

	e.floor = limiterDefaultFloor
	if lim.MinRateFraction > 0 {
		e.floor = lim.MinRateFraction
	}
	switch {
	case !e.hasRates():
		e.setSpeedLocked(now, 1) // nothing left to slow down
		e.decreasedAt = time.Time{}
	case e.clock.speed < e.floor:
		e.setSpeedLocked(now, e.floor)
	}
	e.configured = true
	e.limits = lim
}

// limitBucket returns bucket set to perMinute and burst at virtual time v,
// a new full bucket if bucket is nil, or nil for no limit.
func limitBucket(bucket *rate.Limiter, v time.Time, perMinute float64, burst int) *rate.Limiter {
	if perMinute <= 0 {
		return nil
	}
	burst = max(burst, 1)
	r := rate.Limit(perMinute / 60)
	if bucket == nil {
		return rate.NewLimiter(r, burst)
	}
	bucket.SetLimitAt(v, r)
	bucket.SetBurstAt(v, burst)
	return bucket
}

// limitReserve reserves n tokens of bucket at virtual time v. A request for
// more than the burst is reserved as if the burst were n at that instant,
// so it waits until the missing tokens accrue.
func limitReserve(bucket *rate.Limiter, v time.Time, n int) *rate.Reservation {
	burst := bucket.Burst()
	if n <= burst {
		return bucket.ReserveN(v, n)
	}
	bucket.SetBurstAt(v, n)
	r := bucket.ReserveN(v, n)
	bucket.SetBurstAt(v, burst)
	return r
}

func (e *limitEntry) hasRates() bool {
	return e.requests != nil || e.images != nil
}

// refreshLocked lets the entry's rates recover after a slow-down: one step
// for every limiterRecoveryStep since the latest halving.
func (e *limitEntry) refreshLocked(now time.Time) {
	if e.decreasedAt.IsZero() || e.clock.speed >= 1 {
		return
	}
	steps := now.Sub(e.decreasedAt) / limiterRecoveryStep
	speed := min(1, e.decreasedTo+float64(steps)*limiterRecoveryIncrement)
	if speed <= e.clock.speed {
		return
	}
	e.setSpeedLocked(now, speed)
	if speed >= 1 {
		e.decreasedAt = time.Time{}
	}
}

// setSpeedLocked sets the clock speed and, when it rises, wakes the waiters
// so that they move their due times forward.
func (e *limitEntry) setSpeedLocked(now time.Time, speed float64) {
	faster := speed > e.clock.speed
	e.clock.setSpeed(now, speed)
	if faster {
		e.wakeLocked()
	}
}

// wakeLocked wakes the waiters sleeping on the entry.
func (e *limitEntry) wakeLocked() {
	if e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
}

// strikeLocked counts a 429 at time now and halves the rates when it is a
// repeated one. It reports whether the rates went down.
func (e *limitEntry) strikeLocked(now time.Time) bool {
	if !e.hasRates() {
		return false
	}
	if !e.lastStrike.IsZero() && now.Sub(e.lastStrike) < limiterStrikeCoalesce {
		return false // the same burst of 429s, from requests sent before the first one
	}
	previous := e.lastStrike
	e.lastStrike = now
	if previous.IsZero() || now.Sub(previous) > limiterStrikeWindow {
		return false
	}

	speed := max(e.floor, e.clock.speed/2)
	if speed >= e.clock.speed {
		return false
	}
	e.setSpeedLocked(now, speed)
	e.decreasedAt = now
	e.decreasedTo = speed
	return true
}

// pauseLocked stops the entry until real time until, for every caller. It
// reports whether the pause was extended.
//
// The bucket clock is held so that the first queued reservation, or the next
// token when none is queued, falls due exactly at until, and the rest follow
// at the bucket's pace. A bucket holding more than one token is drained down
// to one first, so the end of the pause releases one request, not a burst.
func (e *limitEntry) pauseLocked(now, until time.Time) bool {
	if !until.After(now) || !until.After(e.pauseUntil) {
		return false
	}
	e.pauseUntil = until
	// Sleeping waiters recompute their due time, so that those whose
	// deadline now falls inside the pause give up at once.
	e.wakeLocked()
	if !e.hasRates() {
		return true
	}

	v := e.clock.virtualAt(now)
	target := v
	if e.head != nil {
		target = limitLater(target, e.head.dueV)
	} else {
		target = limitLater(target, limitDrain(e.requests, v))
		target = limitLater(target, limitDrain(e.images, v))
	}
	e.clock.holdUntil(until, target)
	return true
}

// limitDrain takes tokens from bucket until it holds at most one at virtual
// time v, and returns the virtual time at which it holds one.
func limitDrain(bucket *rate.Limiter, v time.Time) time.Time {
	if bucket == nil {
		return v
	}
	tokens := bucket.TokensAt(v)
	if tokens > 1 {
		excess := int(math.Ceil(tokens - 1))
		bucket.ReserveN(v, excess)
		tokens -= float64(excess)
	}
	if tokens >= 1 {
		return v
	}
	missing := (1 - tokens) / float64(bucket.Limit())
	return v.Add(time.Duration(missing * float64(time.Second)))
}

func limitLater(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (e *limitEntry) pushLocked(p *limitWaitPart) {
	p.prev, p.next = e.tail, nil
	if e.tail != nil {
		e.tail.next = p
	} else {
		e.head = p
	}
	e.tail = p
	p.queued = true
	e.queued++
}

func (e *limitEntry) unlinkLocked(p *limitWaitPart) {
	if !p.queued {
		return
	}
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		e.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		e.tail = p.prev
	}
	p.prev, p.next, p.queued = nil, nil, false
	e.queued--
}

// acquireSlots takes an in-flight slot in each entry, model entry first, and
// gives back those it took if ctx ends.
func (w *limitWaiter) acquireSlots(ctx context.Context) error {
	for i, slot := range w.slots {
		if slot == nil {
			continue
		}
		if err := slot.Acquire(ctx, 1); err != nil {
			for _, held := range w.slots[:i] {
				if held != nil {
					held.Release(1)
				}
			}
			return err
		}
	}
	return nil
}

// release frees the waiter's in-flight slots once.
func (w *limitWaiter) release() {
	if w.released.Swap(true) {
		return
	}
	for _, slot := range w.slots {
		if slot != nil {
			slot.Release(1)
		}
	}
}

// reserveLocked reserves the request's tokens in every bucket of its entries
// at real time now and queues the waiter in the entries that have buckets.
func (w *limitWaiter) reserveLocked(now time.Time, images int) {
	for i := range w.parts[:w.n] {
		p := &w.parts[i]
		e := p.entry
		e.refreshLocked(now)
		if !e.hasRates() {
			continue
		}

		v := e.clock.virtualAt(now)
		due := v
		if e.requests != nil {
			p.requests = limitReserve(e.requests, v, 1)
			due = limitLater(due, v.Add(p.requests.DelayFrom(v)))
		}
		if e.images != nil {
			p.images = limitReserve(e.images, v, images)
			due = limitLater(due, v.Add(p.images.DelayFrom(v)))
		}
		// A rate raised by SetLimits can make a new reservation fall due
		// before older ones; keep the queue first in, first out.
		if e.tail != nil {
			due = limitLater(due, e.tail.dueV)
		}
		p.dueV = due
		if due.After(v) {
			e.pushLocked(p)
		}
	}
}

// dueLocked refreshes the waiter's entries at real time now and returns the
// real time at which the waiter may go. It also returns the channels that
// announce an earlier time, and recheck: the next recovery step of a slowed
// entry, when the due time must be computed again (zero if none).
func (w *limitWaiter) dueLocked(now time.Time) (due, recheck time.Time, wake [2]chan struct{}) {
	due = now
	for i := range w.parts[:w.n] {
		p := &w.parts[i]
		e := p.entry
		e.refreshLocked(now)
		due = limitLater(due, e.pauseUntil)
		if e.wake == nil {
			e.wake = make(chan struct{})
		}
		wake[i] = e.wake
		if !p.queued {
			continue
		}
		if p.dueV.After(e.clock.virtualAt(now)) {
			due = limitLater(due, e.clock.realAt(p.dueV))
		}
		if e.clock.speed < 1 {
			if !e.decreasedAt.IsZero() {
				// The rate recovers at each step whether or not other
				// calls come in, so a sleeping waiter wakes to follow it.
				steps := now.Sub(e.decreasedAt)/limiterRecoveryStep + 1
				next := e.decreasedAt.Add(steps * limiterRecoveryStep)
				if recheck.IsZero() || next.Before(recheck) {
					recheck = next
				}
			}
		}
	}
	return due, recheck, wake
}

// finishLocked dequeues a waiter whose tokens are due.
func (w *limitWaiter) finishLocked() {
	for i := range w.parts[:w.n] {
		p := &w.parts[i]
		p.entry.unlinkLocked(p)
	}
}

// cancelLocked dequeues a waiter that gives up at real time now and gives
// its tokens back to the buckets.
func (w *limitWaiter) cancelLocked(now time.Time) {
	for i := range w.parts[:w.n] {
		p := &w.parts[i]
		if p.requests == nil && p.images == nil {
			continue
		}
		v := p.entry.clock.virtualAt(now)
		if p.requests != nil {
			p.requests.CancelAt(v)
		}
		if p.images != nil {
			p.images.CancelAt(v)
		}
		p.entry.unlinkLocked(p)
	}
}

// wait sleeps until the waiter's tokens are due, rechecking whenever a pause
// may have moved them, and gives the tokens back if it cannot go.
func (w *limitWaiter) wait(ctx context.Context) error {
	deadline, hasDeadline := ctx.Deadline()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	for {
		w.group.mu.Lock()
		now := time.Now()
		due, recheck, wake := w.dueLocked(now)
		if !due.After(now) {
			w.finishLocked()
			w.group.mu.Unlock()
			return nil
		}
		if hasDeadline && !due.Before(deadline) {
			w.cancelLocked(now)
			w.group.mu.Unlock()
			wait := due.Sub(now)
			return &Error{
				Provider:   w.key.Provider,
				Model:      w.key.Model,
				Class:      ClassRateLimited,
				RetryAfter: wait,
				Message:    "local limiter: no send slot before the context deadline",
			}
		}
		w.group.mu.Unlock()

		sleepUntil := due
		if !recheck.IsZero() && recheck.Before(due) {
			sleepUntil = recheck
		}
		if timer == nil {
			timer = time.NewTimer(sleepUntil.Sub(now))
		} else {
			timer.Reset(sleepUntil.Sub(now))
		}
		select {
		case <-timer.C:
		case <-wake[0]:
		case <-wake[1]:
		case <-ctx.Done():
			w.group.mu.Lock()
			w.cancelLocked(time.Now())
			w.group.mu.Unlock()
			return limiterContextError(w.key, ctx.Err())
		}
	}
}

// WithLimiter replaces the Client's rate limiter, for example with one
// shared by several processes (package limiter/redislimit). Default: a
// LocalLimiter. WithLimits and WithModelLimits configure the default
// limiter or a *LocalLimiter given here. New rejects them next to any other
// Limiter, whose limits are set on it directly.
func WithLimiter(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("imagegen: WithLimiter: nil limiter")
		}
		c.limiter = l
		return nil
	}
}

// WithLimits sets the provider's quota, such as the result of OpenAITier.
// Without it the provider is not paced, but the waits that its 429
// responses request still hold back every caller. The limits are checked by New.
func WithLimits(lim Limits) ProviderOption {
	return func(pc *providerConfig) error {
		pc.limits = &lim
		return nil
	}
}

// WithModelLimits sets a quota for one model of the provider, applied in
// addition to the provider's own. Rate limit responses for that model then
// pause only that model.
func WithModelLimits(model string, lim Limits) ProviderOption {
	return func(pc *providerConfig) error {
		if model == "" {
			return errors.New("WithModelLimits: empty model name")
		}
		if pc.modelLimits == nil {
			pc.modelLimits = make(map[string]Limits)
		}
		pc.modelLimits[model] = lim
		return nil
	}
}

// configureLimits applies a provider's WithLimits and WithModelLimits to
// the Client's local limiter.
func configureLimits(local *LocalLimiter, isLocal bool, name string, pc *providerConfig) error {
	if pc.limits == nil && len(pc.modelLimits) == 0 {
		return nil
	}
	if !isLocal {
		return fmt.Errorf("imagegen: provider %q: WithLimits and WithModelLimits configure the built-in limiter; set limits on the Limiter given to WithLimiter instead", name)
	}
	// SetLimits's errors name the provider and model already.
	if pc.limits != nil {
		if err := local.SetLimits(LimitKey{Provider: name}, *pc.limits); err != nil {
			return err
		}
	}
	for model, lim := range pc.modelLimits {
		if err := local.SetLimits(LimitKey{Provider: name, Model: model}, lim); err != nil {
			return err
		}
	}
	return nil
}
