package imagegen

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// BreakerState is the state of a provider's circuit breaker.
type BreakerState int

const (
	// BreakerClosed lets every request through.
	BreakerClosed BreakerState = iota
	// BreakerOpen rejects requests until its cooldown ends.
	BreakerOpen
	// BreakerHalfOpen lets one probe request through to decide whether to close.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half_open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Default breaker settings, used for the zero fields of BreakerSettings.
const (
	defaultBreakerConsecutiveFailures = 5
	defaultBreakerFailureRate         = 0.5
	defaultBreakerMinRequests         = 20
	defaultBreakerWindow              = 60 * time.Second
	defaultBreakerCooldown            = 30 * time.Second
	defaultBreakerLongCooldown        = 10 * time.Minute
	defaultBreakerHalfOpenProbes      = 1
	defaultBreakerProbeTimeout        = 5 * time.Minute
)

// breakerBuckets is the number of slots of the rolling failure-rate window.
// Calls age out of the window one slot, Window/breakerBuckets, at a time.
const breakerBuckets = 10

// BreakerSettings configures the circuit breaker that a Client keeps for each
// provider. The zero value of every field selects its default, so the zero
// BreakerSettings is a working configuration.
//
// A closed breaker opens when either rule trips: ConsecutiveFailures failures
// in a row, or a failure rate of at least FailureRate over the last Window
// once that window holds MinRequests calls. An account-level failure opens it
// at once for LongCooldown. An open breaker rejects calls until its cooldown
// ends, then turns half-open and lets HalfOpenProbes calls through: if they
// all succeed it closes, and if one fails it opens again.
//
// Failure classes count as follows:
//
//   - ClassServer, ClassTimeout, ClassNetwork, ClassOutcomeUnknown and
//     ClassUnknown are failures. They show that the service is down,
//     overloaded or not responding as expected.
//   - ClassQuotaExceeded, ClassNotEntitled and ClassAuthentication are
//     account-level failures. Retrying does not fix them before someone acts,
//     so they open the breaker at once for LongCooldown.
//   - ClassRateLimited is neutral. A 429 shows that the service is up and
//     that this account sends too much. The Client's rate limiter paces calls
//     with the exact wait that the service reports (Retry-After and the
//     rate-limit headers). A breaker could only guess that wait with its fixed
//     cooldown, which is too long for a one-second window, too short for a
//     daily one, and would trip when a burst of callers meets one full window.
//   - ClassInvalidRequest, ClassContentRejected, ClassNotFound and
//     ClassCanceled are neutral. They depend on the request, the model or the
//     caller, not on the health of the service. ClassNotFound is neutral
//     because the breaker covers a whole provider and an unknown model must
//     not block the provider's other models.
//
// A neutral outcome neither counts as a failure nor as a success, and it
// does not reset the run of consecutive failures. A neutral outcome of a
// half-open probe frees the probe's slot without deciding anything, so the
// next call probes again.
type BreakerSettings struct {
	// ConsecutiveFailures is the number of failures in a row that opens the
	// breaker. Zero means 5. It must not be negative.
	ConsecutiveFailures int

	// FailureRate is the fraction of failed calls, from 0 to 1, over Window
	// that opens the breaker, once the window holds at least MinRequests
	// counted calls. Neutral outcomes are not counted. Zero means 0.5, and 1
	// opens it only when every counted call in the window failed.
	FailureRate float64

	// MinRequests is the number of counted calls that Window must hold
	// before FailureRate applies. Zero means 20. It must not be negative.
	MinRequests int

	// Window is the length of the rolling window for FailureRate. Calls leave
	// it in steps of a tenth of its length. Zero means 60 seconds. It must
	// not be negative.
	Window time.Duration

	// Cooldown is how long the breaker stays open after ordinary failures
	// before it lets a probe through. Zero means 30 seconds. It must not be
	// negative.
	Cooldown time.Duration

	// LongCooldown is how long the breaker stays open after an account-level
	// failure (ClassQuotaExceeded, ClassNotEntitled, ClassAuthentication).
	// Zero means 10 minutes. It must not be negative.
	LongCooldown time.Duration

	// HalfOpenProbes is the number of calls that a half-open breaker lets
	// through at once, and the number of successes in a row that close it.
	// Zero means 1. It must not be negative.
	HalfOpenProbes int

	// ProbeTimeout is how long a half-open breaker waits for its probes to
	// report before it takes their slots back, so that a probe whose caller
	// vanished cannot keep the breaker half-open forever. Set it above the
	// longest time one provider call may take. Zero means 5 minutes. It must
	// not be negative.
	ProbeTimeout time.Duration
}

// withDefaults returns s with every zero field set to its default, or an
// error that names the first invalid field.
func (s BreakerSettings) withDefaults() (BreakerSettings, error) {
	if s.ConsecutiveFailures < 0 {
		return s, fmt.Errorf("imagegen: invalid BreakerSettings.ConsecutiveFailures %d: must be 0 (default 5) or more", s.ConsecutiveFailures)
	}
	if math.IsNaN(s.FailureRate) || s.FailureRate < 0 || s.FailureRate > 1 {
		return s, fmt.Errorf("imagegen: invalid BreakerSettings.FailureRate %v: must be between 0 (default 0.5) and 1", s.FailureRate)
	}
	if s.MinRequests < 0 {
		return s, fmt.Errorf("imagegen: invalid BreakerSettings.MinRequests %d: must be 0 (default 20) or more", s.MinRequests)
	}
	if s.HalfOpenProbes < 0 {
		return s, fmt.Errorf("imagegen: invalid BreakerSettings.HalfOpenProbes %d: must be 0 (default 1) or more", s.HalfOpenProbes)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"Window", s.Window},
		{"Cooldown", s.Cooldown},
		{"LongCooldown", s.LongCooldown},
		{"ProbeTimeout", s.ProbeTimeout},
	} {
		if d.value < 0 {
			return s, fmt.Errorf("imagegen: invalid BreakerSettings.%s %v: must be 0 (the default) or more", d.name, d.value)
		}
	}

	s.ConsecutiveFailures = cmp.Or(s.ConsecutiveFailures, defaultBreakerConsecutiveFailures)
	s.FailureRate = cmp.Or(s.FailureRate, defaultBreakerFailureRate)
	s.MinRequests = cmp.Or(s.MinRequests, defaultBreakerMinRequests)
	s.Window = cmp.Or(s.Window, defaultBreakerWindow)
	s.Cooldown = cmp.Or(s.Cooldown, defaultBreakerCooldown)
	s.LongCooldown = cmp.Or(s.LongCooldown, defaultBreakerLongCooldown)
	s.HalfOpenProbes = cmp.Or(s.HalfOpenProbes, defaultBreakerHalfOpenProbes)
	s.ProbeTimeout = cmp.Or(s.ProbeTimeout, defaultBreakerProbeTimeout)
	return s, nil
}

// ErrBreakerOpen matches, with errors.Is, every *BreakerOpenError: a call
// that the Client did not send because the provider's circuit breaker
// rejected it.
var ErrBreakerOpen = errors.New("imagegen: circuit breaker open")

// BreakerOpenError is a call that a provider's circuit breaker rejected
// without sending it. It matches ErrBreakerOpen with errors.Is.
type BreakerOpenError struct {
	// Provider is the name of the provider whose breaker is open.
	Provider string
	// State is BreakerOpen, or BreakerHalfOpen when every probe slot is taken.
	State BreakerState
	// Until is when the open breaker's cooldown ends and it lets a probe
	// through. It is the zero time for a half-open breaker, which lets the
	// next call through as soon as a probe reports.
	Until time.Time
	// Cause is the failure that opened the breaker, or nil.
	Cause error
}

// Error returns a one-line description naming the provider and when the
// breaker lets calls through again.
func (e *BreakerOpenError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	if e.State == BreakerHalfOpen || e.Until.IsZero() {
		return fmt.Sprintf("imagegen: circuit breaker of provider %q is half-open and its probe call is still running; "+
			"the next call goes through when the probe reports", e.Provider)
	}
	return fmt.Sprintf("imagegen: circuit breaker of provider %q is open until %s after repeated failures; "+
		"use another provider or retry after that time", e.Provider, e.Until.Format(time.RFC3339))
}

// Is reports whether target is ErrBreakerOpen.
func (e *BreakerOpenError) Is(target error) bool { return target == ErrBreakerOpen }

// breakerTicket is the permission that circuitBreaker.allow grants to one
// call. The call hands it back to record or cancelProbe.
type breakerTicket struct {
	// generation is the breaker's generation when the ticket was issued.
	// Outcomes of tickets from an older generation are ignored, so a slow
	// call that started before the breaker opened cannot close it again.
	generation uint64
	// probe reports whether the call is a half-open probe.
	probe bool
	// probeEpoch is the breaker's probe epoch when a probe ticket was
	// issued. Reclaiming lost probes starts a new epoch, and the late reports
	// of the lost probes are then ignored, so no more than HalfOpenProbes
	// probes ever run at once.
	probeEpoch uint64
}

// breakerBucket counts the outcomes of one slot of the rolling window.
type breakerBucket struct {
	// slot is the window slot number, time divided by the slot width, whose
	// counts the bucket holds.
	slot      int64
	successes int64
	failures  int64
}

// circuitBreaker is the circuit breaker of one provider. It is safe for
// concurrent use. Every method takes the current time, so that the Client
// decides which clock it uses and tests need no sleeps. Methods return state
// changes instead of reporting them, so that the caller runs hooks and logs
// after the breaker's lock is released.
type circuitBreaker struct {
	provider  string
	settings  BreakerSettings
	slotWidth int64 // nanoseconds per window bucket, at least 1

	mu         sync.Mutex
	state      BreakerState
	generation uint64
	// openUntil is the end of the cooldown while open.
	openUntil time.Time
	// openCause is the failure that last opened the breaker.
	openCause error
	// consecutive is the run of failures since the last success.
	consecutive int
	buckets     [breakerBuckets]breakerBucket
	// probes is the number of probe tickets in flight while half-open, and
	// probeSuccesses the successes reported by probes so far.
	probes         int
	probeSuccesses int
	// lastProbeStart is when the newest probe ticket was issued.
	lastProbeStart time.Time
	// probeEpoch counts the times lost probes were reclaimed.
	probeEpoch uint64
}

// newCircuitBreaker returns a closed breaker for the named provider. The
// settings must have passed BreakerSettings.withDefaults.
func newCircuitBreaker(provider string, settings BreakerSettings) *circuitBreaker {
	return &circuitBreaker{
		provider:  provider,
		settings:  settings,
		slotWidth: max(int64(settings.Window)/breakerBuckets, 1),
	}
}

// allow reports whether a call may go to the provider now. On success it
// returns a ticket that the caller must hand back to exactly one of record
// or cancelProbe. When the breaker is open, or half-open with every probe
// slot taken, it returns a *BreakerOpenError. The returned event is non-nil
// when allow moved an open breaker whose cooldown ended to half-open; the
// caller reports it to hooks and logs.
func (b *circuitBreaker) allow(now time.Time) (breakerTicket, *BreakerEvent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	var change *BreakerEvent
	switch b.state {
	case BreakerClosed:
		return breakerTicket{generation: b.generation}, nil, nil
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return breakerTicket{}, nil, &BreakerOpenError{Provider: b.provider, State: BreakerOpen, Until: b.openUntil, Cause: b.openCause}
		}
		change = b.setStateLocked(BreakerHalfOpen, nil)
	}

	// Half-open. Probes that have not reported for ProbeTimeout are taken
	// to be lost, and their slots are given to new probes.
	if b.probes >= b.settings.HalfOpenProbes && now.Sub(b.lastProbeStart) >= b.settings.ProbeTimeout {
		b.probes = 0
		b.probeEpoch++
	}
	if b.probes >= b.settings.HalfOpenProbes {
		return breakerTicket{}, change, &BreakerOpenError{Provider: b.provider, State: BreakerHalfOpen, Cause: b.openCause}
	}
	b.probes++
	b.lastProbeStart = now
	return breakerTicket{generation: b.generation, probe: true, probeEpoch: b.probeEpoch}, change, nil
}

// record reports the outcome of a call that allow let through: err is nil
// on success, otherwise class is err's class. It returns the state change
// it caused, or nil.
func (b *circuitBreaker) record(t breakerTicket, err error, class Class, now time.Time) *BreakerEvent {
	b.mu.Lock()
	defer b.mu.Unlock()

	if t.generation != b.generation || (t.probe && t.probeEpoch != b.probeEpoch) {
		return nil
	}

	kind := breakerOutcomeSuccess
	if err != nil {
		kind = breakerOutcomeOf(class)
	}

	if b.state == BreakerHalfOpen {
		return b.recordProbeLocked(kind, err, now)
	}
	if b.state != BreakerClosed {
		return nil
	}

	switch kind {
	case breakerOutcomeSuccess:
		b.consecutive = 0
		b.bucketLocked(now).successes++
	case breakerOutcomeFailure:
		b.consecutive++
		b.bucketLocked(now).failures++
		if b.consecutive >= b.settings.ConsecutiveFailures || b.failureRateTrippedLocked(now) {
			return b.openLocked(b.settings.Cooldown, err, now)
		}
	case breakerOutcomeAccount:
		return b.openLocked(b.settings.LongCooldown, err, now)
	}
	return nil
}

// recordProbeLocked applies the outcome of a half-open probe.
func (b *circuitBreaker) recordProbeLocked(kind breakerOutcome, err error, now time.Time) *BreakerEvent {
	if b.probes > 0 {
		b.probes--
	}
	switch kind {
	case breakerOutcomeSuccess:
		b.probeSuccesses++
		if b.probeSuccesses >= b.settings.HalfOpenProbes {
			return b.setStateLocked(BreakerClosed, nil)
		}
	case breakerOutcomeFailure:
		return b.openLocked(b.settings.Cooldown, err, now)
	case breakerOutcomeAccount:
		return b.openLocked(b.settings.LongCooldown, err, now)
	}
	return nil
}

// cancelProbe hands back a ticket whose call ended without an outcome, for
// example because the caller's context ended before the call was sent. It
// frees the ticket's probe slot. It does nothing for tickets that are not
// probes or that are from an older generation.
func (b *circuitBreaker) cancelProbe(t breakerTicket) {
	if !t.probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.generation == b.generation && t.probeEpoch == b.probeEpoch && b.state == BreakerHalfOpen && b.probes > 0 {
		b.probes--
	}
}

// currentState returns the state that allow would act on at now: an open
// breaker whose cooldown has ended reports BreakerHalfOpen. It changes
// nothing.
func (b *circuitBreaker) currentState(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !now.Before(b.openUntil) {
		return BreakerHalfOpen
	}
	return b.state
}

// openLocked opens the breaker for cooldown, because of cause.
func (b *circuitBreaker) openLocked(cooldown time.Duration, cause error, now time.Time) *BreakerEvent {
	b.openUntil = now.Add(cooldown)
	b.openCause = cause
	return b.setStateLocked(BreakerOpen, cause)
}

// setStateLocked moves the breaker to state, starts a new generation and
// clears the counts of the old one.
func (b *circuitBreaker) setStateLocked(state BreakerState, cause error) *BreakerEvent {
	from := b.state
	b.state = state
	b.generation++
	b.consecutive = 0
	b.buckets = [breakerBuckets]breakerBucket{}
	b.probes = 0
	b.probeSuccesses = 0
	return &BreakerEvent{Provider: b.provider, From: from, To: state, Cause: cause}
}

// bucketLocked returns the window bucket for now, cleared if it last held
// an older slot.
func (b *circuitBreaker) bucketLocked(now time.Time) *breakerBucket {
	slot := b.slotOf(now)
	index := slot % breakerBuckets
	if index < 0 {
		index += breakerBuckets
	}
	bucket := &b.buckets[index]
	if bucket.slot != slot {
		*bucket = breakerBucket{slot: slot}
	}
	return bucket
}

// failureRateTrippedLocked reports whether the failure rate over the
// rolling window has reached FailureRate with at least MinRequests calls.
func (b *circuitBreaker) failureRateTrippedLocked(now time.Time) bool {
	current := b.slotOf(now)
	var successes, failures int64
	for i := range b.buckets {
		bucket := &b.buckets[i]
		if bucket.slot > current-breakerBuckets && bucket.slot <= current {
			successes += bucket.successes
			failures += bucket.failures
		}
	}
	total := successes + failures
	if total == 0 || total < int64(b.settings.MinRequests) {
		return false
	}
	return float64(failures)/float64(total) >= b.settings.FailureRate
}

// breakerOutcome is the category in which the breaker counts one call's
// outcome.
type breakerOutcome int

const (
	breakerOutcomeSuccess breakerOutcome = iota
	breakerOutcomeFailure
	breakerOutcomeAccount
	breakerOutcomeNeutral
)

// breakerOutcomeOf returns how the breaker counts a failure of class c; see
// BreakerSettings for the reasons.
func breakerOutcomeOf(c Class) breakerOutcome {
	switch c {
	case ClassServer, ClassTimeout, ClassNetwork, ClassOutcomeUnknown, ClassUnknown:
		return breakerOutcomeFailure
	case ClassQuotaExceeded, ClassNotEntitled, ClassAuthentication:
		return breakerOutcomeAccount
	}
	return breakerOutcomeNeutral
}

// slotOf returns the number of the window slot that holds now: the Unix
// time in nanoseconds divided by the slot width, rounded down.
func (b *circuitBreaker) slotOf(now time.Time) int64 {
	ns := now.UnixNano()
	slot := ns / b.slotWidth
	if ns%b.slotWidth != 0 && ns < 0 {
		slot--
	}
	return slot
}
