package imagegen

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// step is the attempt loop's next move after a failed attempt.
type step int

const (
	stepRetry step = iota // retry the same provider and model
	stepNext              // move to the next provider or model
	stepStop              // return the error to the caller
)

// nextStep applies the retry policy to a failure. It does not look at the
// attempt counts or the delay; the loop checks those.
func (p *RetryPolicy) nextStep(e *Error) step {
	switch e.Class {
	case ClassCanceled, ClassInvalidRequest, ClassContentRejected:
		return stepStop
	case ClassTimeout, ClassOutcomeUnknown:
		if p.OutcomeUnknown == StopOnUnknownOutcome {
			return stepStop
		}
	}

	switch e.Class {
	case ClassRateLimited, ClassServer, ClassTimeout, ClassNetwork, ClassOutcomeUnknown:
		// The service's x-should-retry: false overrides the class.
		if e.ShouldRetry != nil && !*e.ShouldRetry {
			return stepNext
		}
		return stepRetry
	case ClassUnknown:
		// x-should-retry: true makes an unclassified failure retryable.
		if e.ShouldRetry != nil && *e.ShouldRetry {
			return stepRetry
		}
	}
	// Quota, entitlement, authentication, not found and unknown failures
	// would fail again on the same provider, whatever x-should-retry contains.
	return stepNext
}

// delaySource yields the computed delays of one call's retries on one
// provider. It wraps backoff.ExponentialBackOff, which is not safe for
// concurrent use, so each provider attempt sequence makes its own.
type delaySource struct {
	bo *backoff.ExponentialBackOff
}

func newDelaySource(p *RetryPolicy) *delaySource {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialDelay),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithMaxInterval(p.MaxDelay),
		backoff.WithRandomizationFactor(p.Jitter),
		backoff.WithMaxElapsedTime(0), // The attempt loop bounds the total time.
	)
	return &delaySource{bo: bo}
}

// next returns the computed delay before the next retry.
func (d *delaySource) next() time.Duration {
	return d.bo.NextBackOff()
}

// sleep waits d or until ctx is done, whichever comes first, and returns
// ctx's error in the latter case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryBudget limits retries to a fraction of recent calls, client-wide.
// Every call deposits ratio tokens and every retry withdraws one. The
// balance starts at a small reserve and never exceeds the reserve plus what
// the last 100 calls deposit, so old calls stop counting. It is safe for concurrent use.
type retryBudget struct {
	mu      sync.Mutex
	ratio   float64
	balance float64
	max     float64
}

// retryReserve is the number of retries a new Client may make before any
// call has earned them, so that a quiet Client can still retry.
const retryReserve = 10

func newRetryBudget(ratio float64) *retryBudget {
	// The cap is what 100 calls deposit, plus the reserve: the budget
	// reflects roughly the last 100 calls.
	return &retryBudget{ratio: ratio, balance: retryReserve, max: retryReserve + 100*ratio}
}

// deposit records one call.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.balance = math.Min(b.max, b.balance+b.ratio)
	b.mu.Unlock()
}

// withdraw takes one retry from the budget and reports whether there was one.
func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < 1 {
		return false
	}
	b.balance--
	return true
}
