package redislimit

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/imagegen-go/imagegen"
)

// Waits of Acquire, described on Limiter.
const (
	pauseJitterMax   = time.Second
	leasePollInitial = 10 * time.Millisecond
	leasePollMax     = 500 * time.Millisecond

	// bucketWaitMin is the shortest sleep for a bucket, which keeps a
	// waiter from spinning on a wait that Redis rounded down to nothing.
	bucketWaitMin = time.Millisecond
)

// waitReason is the cause of a wait in one round of an acquisition.
type waitReason int

const (
	waitNone   waitReason = iota
	waitPause             // a pause stored by Observe
	waitLease             // an in-flight slot
	waitBucket            // tokens of a request or image bucket
)

// acquisition is one Acquire call.
type acquisition struct {
	limiter *Limiter
	key     imagegen.LimitKey
	images  int
	entries [2]*limitEntry // provider+model entry first, then provider-wide
	n       int
	parts   [2]acquisitionPart

	leaseID   string        // set on the first lease attempt
	leasePoll time.Duration // next poll interval for an in-flight slot
	released  atomic.Bool
}

// acquisitionPart is the state of an acquisition in one entry: the lease
// and the tokens it holds there.
type acquisitionPart struct {
	leaseTried    bool // a lease script ran, or may have run, for this entry
	leased        bool
	imagesTaken   bool
	requestsTaken bool
}

// run repeats rounds until the request may go or must give up.
func (a *acquisition) run(ctx context.Context) (release func(), err error) {
	deadline, hasDeadline := ctx.Deadline()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	for {
		wait, reason, err := a.round(ctx)
		if err != nil {
			a.removeLeases()
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, contextError(a.key, ctxErr)
			}
			return nil, redisError(a.key, err)
		}
		if reason == waitNone {
			if err := a.renewLeases(ctx, a.limiter.leaseTTL); err != nil {
				a.removeLeases()
				return nil, redisError(a.key, err)
			}
			return a.releaseFunc(), nil
		}
		if reason == waitPause {
			jitter := pauseJitter(wait)
			if hasDeadline {
				// Jitter alone never makes a wait miss the deadline.
				jitter = min(jitter, max(time.Until(deadline)-wait-time.Millisecond, 0))
			}
			wait += jitter
		}

		// A lease may free up at any moment, so only the context's end
		// stops a wait for one.
		if reason != waitLease && hasDeadline && !time.Now().Add(wait).Before(deadline) {
			a.removeLeases()
			return nil, &imagegen.Error{
				Provider:   a.key.Provider,
				Model:      a.key.Model,
				Class:      imagegen.ClassRateLimited,
				RetryAfter: wait,
				Message:    "redis limiter: no send slot before the context deadline",
			}
		}

		// Leases already held must outlive the wait, or another process
		// could take their slots before this request goes out.
		if err := a.renewLeases(ctx, wait+a.limiter.leaseTTL); err != nil {
			a.removeLeases()
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, contextError(a.key, ctxErr)
			}
			return nil, redisError(a.key, err)
		}

		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			a.removeLeases()
			return nil, contextError(a.key, ctx.Err())
		}
	}
}

// round makes one pass over the key's entries: pauses and leases first, then
// the buckets. It returns how long to sleep and why, or waitNone when the
// request may go.
func (a *acquisition) round(ctx context.Context) (time.Duration, waitReason, error) {
	l := a.limiter
	for i, e := range a.entries[:a.n] {
		p := &a.parts[i]
		needLease := e.limits.MaxInFlight > 0 && !p.leased
		keys := []string{e.pauseKey}
		leaseID := ""
		if needLease {
			if a.leaseID == "" {
				a.leaseID = l.newLeaseID()
			}
			leaseID = a.leaseID
			keys = append(keys, e.flightKey)
			p.leaseTried = true
		}
		res, err := admitScript.Run(ctx, l.client, keys, leaseID, e.limits.MaxInFlight, ceilMilliseconds(l.leaseTTL)).Int64Slice()
		if err != nil {
			return 0, waitNone, err
		}
		if pause := time.Duration(res[0]) * time.Millisecond; pause > 0 {
			return pause, waitPause, nil
		}
		if needLease {
			if res[1] != 1 {
				return a.nextLeasePoll(time.Duration(res[2]) * time.Millisecond), waitLease, nil
			}
			p.leased = true
		}
	}

	// NOTE: tokens taken here stay taken if a later bucket makes the caller
	// wait past its deadline or the caller cancels: redis_rate has no way to
	// return them.
	for i, e := range a.entries[:a.n] {
		p := &a.parts[i]
		if e.images.Rate > 0 && !p.imagesTaken {
			// A request for more images than the burst could never fit:
			// let the bucket hold them for this request only.
			limit := e.images
			limit.Burst = max(limit.Burst, a.images)
			wait, err := a.take(ctx, e.imagesKey, limit, a.images)
			if err != nil || wait > 0 {
				return wait, waitBucket, err
			}
			p.imagesTaken = true
		}
		if e.requests.Rate > 0 && !p.requestsTaken {
			wait, err := a.take(ctx, e.requestsKey, e.requests, 1)
			if err != nil || wait > 0 {
				return wait, waitBucket, err
			}
			p.requestsTaken = true
		}
	}
	return 0, waitNone, nil
}

// take takes n tokens from the bucket at key, or returns how long until they
// accrue.
func (a *acquisition) take(ctx context.Context, key string, limit redis_rate.Limit, n int) (time.Duration, error) {
	res, err := a.limiter.buckets.AllowN(ctx, key, limit, n)
	if err != nil {
		return 0, err
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, bucketWaitMin), nil
}

// nextLeasePoll returns the next wait for an in-flight slot: the poll
// interval, shortened by a random 0 to 50% and never past the expiry of the
// oldest lease, which is oldest from now.
func (a *acquisition) nextLeasePoll(oldest time.Duration) time.Duration {
	if a.leasePoll == 0 {
		a.leasePoll = leasePollInitial
	}
	wait := a.leasePoll - rand.N(a.leasePoll/2+1)
	a.leasePoll = min(2*a.leasePoll, leasePollMax)
	if oldest > 0 {
		wait = min(wait, oldest)
	}
	return max(wait, time.Millisecond)
}

// pauseJitter returns a random extra wait after a pause of pause: up to a
// quarter of it, at most pauseJitterMax.
func pauseJitter(pause time.Duration) time.Duration {
	limit := min(pause/4, pauseJitterMax)
	if limit <= 0 {
		return 0
	}
	return rand.N(limit + 1)
}

// renewLeases sets the lifetime of the acquisition's leases to ttl from now:
// past each wait, and LeaseTTL from the moment the request goes out.
func (a *acquisition) renewLeases(ctx context.Context, ttl time.Duration) error {
	if a.leaseID == "" {
		return nil
	}
	var keys []string
	for i, e := range a.entries[:a.n] {
		if a.parts[i].leased {
			keys = append(keys, e.flightKey)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return renewScript.Run(ctx, a.limiter.client, keys, a.leaseID, ceilMilliseconds(ttl)).Err()
}

// noRelease is the release function of a request that took no lease.
func noRelease() {}

// releaseFunc returns the function that gives back the acquisition's leases.
func (a *acquisition) releaseFunc() func() {
	if a.leaseID == "" {
		return noRelease
	}
	return a.removeLeases
}

// removeLeases removes the acquisition's leases once, including those whose
// script failed and may have added them. Failures are logged: such a lease
// expires after LeaseTTL.
func (a *acquisition) removeLeases() {
	if a.leaseID == "" || a.released.Swap(true) {
		return
	}
	l := a.limiter
	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()

	_, err := l.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, e := range a.entries[:a.n] {
			if a.parts[i].leaseTried {
				pipe.ZRem(ctx, e.flightKey, a.leaseID)
			}
		}
		return nil
	})
	if err != nil {
		l.logger.Warn("imagegen: redis limiter could not release an in-flight lease; it expires after LeaseTTL",
			"provider", a.key.Provider, "model", a.key.Model, "lease", a.leaseID,
			"lease_ttl", l.leaseTTL, "error", err)
	}
}
