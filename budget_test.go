package imagegen

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// budgetTestClock is a settable clock for WithBudgetClock.
type budgetTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *budgetTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *budgetTestClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func knownCost(usd float64) Cost { return Cost{USD: usd, Known: true, Images: 1} }

func newTestBudget(t *testing.T, limit float64, window time.Duration, opts ...BudgetOption) *Budget {
	t.Helper()
	b, err := NewBudget(limit, window, opts...)
	require.NoError(t, err)
	return b
}

func TestNewBudgetRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name   string
		limit  float64
		window time.Duration
		opts   []BudgetOption
		want   string
	}{
		{"zero limit", 0, time.Hour, nil, "positive amount"},
		{"negative limit", -5, time.Hour, nil, "positive amount"},
		{"NaN limit", math.NaN(), time.Hour, nil, "positive amount"},
		{"infinite limit", math.Inf(1), time.Hour, nil, "positive amount"},
		{"negative window", 1, -time.Hour, nil, "window must be positive"},
		{"month with window", 1, time.Hour, []BudgetOption{WithCalendarMonth()}, "conflicts with WithCalendarMonth"},
		{"nil clock", 1, time.Hour, []BudgetOption{WithBudgetClock(nil)}, "non-nil clock"},
		{"zero unknown cost", 1, time.Hour, []BudgetOption{WithUnknownCostPerImage(0)}, "WithUnknownCostPerImage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBudget(tt.limit, tt.window, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.Contains(t, err.Error(), "imagegen: ")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestBudgetReserveSettleRelease(t *testing.T) {
	ctx := context.Background()
	b := newTestBudget(t, 1.00, 0)

	first, err := b.Reserve(ctx, knownCost(0.40))
	require.NoError(t, err)
	assert.InDelta(t, 0.40, first.USD(), 1e-12)
	second, err := b.Reserve(ctx, knownCost(0.40))
	require.NoError(t, err)

	_, err = b.Reserve(ctx, knownCost(0.40))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBudgetExceeded)
	var budgetErr *BudgetError
	require.True(t, errors.As(err, &budgetErr))
	assert.InDelta(t, 0.80, budgetErr.Reserved, 1e-12)
	assert.InDelta(t, 0.40, budgetErr.Requested, 1e-12)
	assert.Contains(t, err.Error(), "the request needs $0.4 but $0 is spent and $0.8 reserved of the $1 limit")

	first.Settle(knownCost(0.30))
	snap := b.Snapshot()
	assert.InDelta(t, 0.30, snap.Spent, 1e-12)
	assert.InDelta(t, 0.40, snap.Reserved, 1e-12)
	assert.InDelta(t, 0.30, snap.Remaining, 1e-12)

	// 0.30 spent + 0.40 reserved + 0.30 is exactly the limit.
	third, err := b.Reserve(ctx, knownCost(0.30))
	require.NoError(t, err)

	second.Release()
	third.Settle(Cost{}) // unknown actual cost: the reservation counts as spent
	snap = b.Snapshot()
	assert.InDelta(t, 0.60, snap.Spent, 1e-12)
	assert.Zero(t, snap.Reserved)
	assert.InDelta(t, 1.00, snap.Limit, 1e-12)
	assert.True(t, snap.WindowEnd.IsZero(), "a zero window never ends")
}

func TestBudgetReservationEndsOnce(t *testing.T) {
	ctx := context.Background()
	b := newTestBudget(t, 1, 0)

	r, err := b.Reserve(ctx, knownCost(0.25))
	require.NoError(t, err)
	r.Settle(knownCost(0.20))
	r.Settle(knownCost(0.20))
	r.Release()
	r.SettleFailure(ClassTimeout)

	snap := b.Snapshot()
	assert.InDelta(t, 0.20, snap.Spent, 1e-12)
	assert.Zero(t, snap.Reserved)

	r, err = b.Reserve(ctx, knownCost(0.25))
	require.NoError(t, err)
	r.Release()
	r.Settle(knownCost(0.25))
	snap = b.Snapshot()
	assert.InDelta(t, 0.20, snap.Spent, 1e-12, "a released reservation cannot be settled later")
	assert.Zero(t, snap.Reserved)
}

func TestBudgetSettleFailure(t *testing.T) {
	tests := []struct {
		class     Class
		wantSpent float64
	}{
		{ClassTimeout, 0.30},
		{ClassOutcomeUnknown, 0.30},
		{ClassServer, 0},
		{ClassRateLimited, 0},
		{ClassNetwork, 0},
		{ClassCanceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.class.String(), func(t *testing.T) {
			b := newTestBudget(t, 1, 0)
			r, err := b.Reserve(context.Background(), knownCost(0.30))
			require.NoError(t, err)
			r.SettleFailure(tt.class)
			snap := b.Snapshot()
			assert.InDelta(t, tt.wantSpent, snap.Spent, 1e-12)
			assert.Zero(t, snap.Reserved)
		})
	}
}

func TestBudgetSettleAboveEstimate(t *testing.T) {
	b := newTestBudget(t, 1, 0)
	r, err := b.Reserve(context.Background(), knownCost(0.50))
	require.NoError(t, err)
	r.Settle(knownCost(1.20))

	snap := b.Snapshot()
	assert.InDelta(t, 1.20, snap.Spent, 1e-12, "the real cost counts even above the limit")
	assert.Zero(t, snap.Remaining)

	_, err = b.Reserve(context.Background(), knownCost(0))
	assert.ErrorIs(t, err, ErrBudgetExceeded, "nothing fits once spending has passed the limit")
}

func TestBudgetUnknownCost(t *testing.T) {
	ctx := context.Background()
	unknown := Cost{Images: 3, Detail: "gpt-image-2 has no output token table for estimates"}

	b := newTestBudget(t, 1, 0)
	_, err := b.Reserve(ctx, unknown)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrCostUnknown)
	assert.NotErrorIs(t, err, ErrBudgetExceeded)
	assert.Contains(t, err.Error(), "gpt-image-2 has no output token table")
	assert.Contains(t, err.Error(), "WithUnknownCostPerImage")

	b = newTestBudget(t, 1, 0, WithUnknownCostPerImage(0.10))
	r, err := b.Reserve(ctx, unknown)
	require.NoError(t, err)
	assert.InDelta(t, 0.30, r.USD(), 1e-12, "three images at the fallback price")
	r.Settle(knownCost(0.12))
	assert.InDelta(t, 0.12, b.Snapshot().Spent, 1e-12)

	r, err = b.Reserve(ctx, Cost{})
	require.NoError(t, err)
	assert.InDelta(t, 0.10, r.USD(), 1e-12, "no image count means one image")

	_, err = b.Reserve(ctx, Cost{USD: -1, Known: true})
	assert.ErrorIs(t, err, ErrCostUnknown)
}

func TestBudgetReserveHonoursContext(t *testing.T) {
	b := newTestBudget(t, 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := b.Reserve(ctx, knownCost(0.1))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, r)
	assert.Zero(t, b.Snapshot().Reserved)
}

func TestNilBudgetHasNoLimit(t *testing.T) {
	var b *Budget
	r, err := b.Reserve(context.Background(), Cost{})
	require.NoError(t, err)
	assert.Nil(t, r)
	r.Settle(knownCost(100))
	r.SettleFailure(ClassTimeout)
	r.Release()
	assert.Zero(t, r.USD())
	assert.Equal(t, BudgetSnapshot{}, b.Snapshot())
}

func TestBudgetFixedWindowRollover(t *testing.T) {
	ctx := context.Background()
	clock := &budgetTestClock{now: time.Date(2026, time.June, 3, 10, 15, 0, 0, time.UTC)}
	b := newTestBudget(t, 1, time.Hour, WithBudgetClock(clock.Now))

	snap := b.Snapshot()
	assert.Equal(t, time.Date(2026, time.June, 3, 10, 0, 0, 0, time.UTC), snap.WindowStart)
	assert.Equal(t, time.Date(2026, time.June, 3, 11, 0, 0, 0, time.UTC), snap.WindowEnd)

	r, err := b.Reserve(ctx, knownCost(0.90))
	require.NoError(t, err)
	r.Settle(knownCost(0.90))

	// A request in flight across the hour settles into the new window.
	clock.Set(time.Date(2026, time.June, 3, 10, 59, 59, 0, time.UTC))
	inFlight, err := b.Reserve(ctx, knownCost(0.10))
	require.NoError(t, err)
	_, err = b.Reserve(ctx, knownCost(0.10))
	require.ErrorIs(t, err, ErrBudgetExceeded)
	var budgetErr *BudgetError
	require.True(t, errors.As(err, &budgetErr))
	assert.Equal(t, time.Date(2026, time.June, 3, 11, 0, 0, 0, time.UTC), budgetErr.WindowEnd)
	assert.Contains(t, err.Error(), "wait until 2026-06-03T11:00:00Z")

	clock.Set(time.Date(2026, time.June, 3, 11, 0, 0, 0, time.UTC))
	snap = b.Snapshot()
	assert.Zero(t, snap.Spent, "spending restarts in a new window")
	assert.InDelta(t, 0.10, snap.Reserved, 1e-12, "open reservations carry over")
	assert.Equal(t, time.Date(2026, time.June, 3, 11, 0, 0, 0, time.UTC), snap.WindowStart)

	inFlight.Settle(knownCost(0.08))
	r, err = b.Reserve(ctx, knownCost(0.92))
	require.NoError(t, err)
	r.Release()
	snap = b.Snapshot()
	assert.InDelta(t, 0.08, snap.Spent, 1e-12)
	assert.Zero(t, snap.Reserved)

	// A clock that steps back keeps the current window.
	clock.Set(time.Date(2026, time.June, 3, 9, 0, 0, 0, time.UTC))
	assert.InDelta(t, 0.08, b.Snapshot().Spent, 1e-12)

	// Skipping several windows lands in the one containing now.
	clock.Set(time.Date(2026, time.June, 4, 7, 30, 0, 0, time.UTC))
	snap = b.Snapshot()
	assert.Zero(t, snap.Spent)
	assert.Equal(t, time.Date(2026, time.June, 4, 7, 0, 0, 0, time.UTC), snap.WindowStart)
}

func TestBudgetDailyWindowStartsAtMidnightUTC(t *testing.T) {
	berlin := time.FixedZone("CEST", 2*60*60)
	clock := &budgetTestClock{now: time.Date(2026, time.June, 3, 1, 30, 0, 0, berlin)}
	b := newTestBudget(t, 1, 24*time.Hour, WithBudgetClock(clock.Now))
	snap := b.Snapshot()
	assert.Equal(t, time.Date(2026, time.June, 2, 0, 0, 0, 0, time.UTC), snap.WindowStart)
	assert.Equal(t, time.Date(2026, time.June, 3, 0, 0, 0, 0, time.UTC), snap.WindowEnd)
}

func TestBudgetCalendarMonth(t *testing.T) {
	ctx := context.Background()
	clock := &budgetTestClock{now: time.Date(2026, time.January, 31, 23, 0, 0, 0, time.UTC)}
	b := newTestBudget(t, 10, 0, WithCalendarMonth(), WithBudgetClock(clock.Now))

	snap := b.Snapshot()
	assert.Equal(t, time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC), snap.WindowStart)
	assert.Equal(t, time.Date(2026, time.February, 1, 0, 0, 0, 0, time.UTC), snap.WindowEnd)

	r, err := b.Reserve(ctx, knownCost(9.5))
	require.NoError(t, err)
	r.Settle(knownCost(9.5))
	_, err = b.Reserve(ctx, knownCost(1))
	require.ErrorIs(t, err, ErrBudgetExceeded)

	clock.Set(time.Date(2026, time.February, 1, 0, 0, 0, 0, time.UTC))
	snap = b.Snapshot()
	assert.Zero(t, snap.Spent)
	assert.Equal(t, time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC), snap.WindowEnd, "February has 28 days in 2026")
	_, err = b.Reserve(ctx, knownCost(1))
	assert.NoError(t, err)
}

func TestBudgetWindowRolloverSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newTestBudget(t, 1, 24*time.Hour)

		r, err := b.Reserve(ctx, knownCost(1))
		require.NoError(t, err)
		r.Settle(knownCost(1))
		_, err = b.Reserve(ctx, knownCost(0.01))
		require.ErrorIs(t, err, ErrBudgetExceeded)

		end := b.Snapshot().WindowEnd
		time.Sleep(time.Until(end)) // fake time inside the bubble
		_, err = b.Reserve(ctx, knownCost(0.01))
		assert.NoError(t, err)
		assert.Equal(t, end, b.Snapshot().WindowStart)
	})
}

// TestBudgetConcurrentCap runs 100 goroutines against a small cap and checks
// that spent plus reserved never passes the limit and that every
// reservation ends exactly once.
func TestBudgetConcurrentCap(t *testing.T) {
	defer goleak.VerifyNone(t)

	const (
		workers    = 100
		iterations = 50
	)
	ctx := context.Background()
	b := newTestBudget(t, 1.00, 0)

	var (
		wantSpent atomic.Int64 // micro-dollars the outcomes should add up to
		accepted  atomic.Int64
		rejected  atomic.Int64
		overLimit atomic.Int64
		wg        sync.WaitGroup
	)
	for worker := range workers {
		wg.Go(func() {
			for i := range iterations {
				estimate := 0.01 * float64(1+(worker+i)%7) // $0.01 to $0.07
				r, err := b.Reserve(ctx, knownCost(estimate))
				if err != nil {
					if !errors.Is(err, ErrBudgetExceeded) {
						t.Errorf("reserve: %v", err)
					}
					rejected.Add(1)
					continue
				}
				accepted.Add(1)

				b.mu.Lock()
				if b.spent+b.reserved > b.limit {
					overLimit.Add(1)
				}
				b.mu.Unlock()

				switch (worker + i) % 5 {
				case 0:
					actual := knownCost(estimate / 2)
					r.Settle(actual)
					r.Settle(actual) // a second call must not count
					wantSpent.Add(usdToMicros(actual.USD))
				case 1:
					r.Release()
				case 2:
					r.SettleFailure(ClassTimeout)
					wantSpent.Add(r.amount)
				case 3:
					r.SettleFailure(ClassServer)
				case 4:
					// Two goroutines race to end the same reservation.
					var inner sync.WaitGroup
					inner.Go(func() { r.Release() })
					inner.Go(func() { r.Release() })
					inner.Wait()
				}
			}
		})
	}
	wg.Wait()

	snap := b.Snapshot()
	assert.Zero(t, snap.Reserved, "every reservation was settled or released")
	assert.LessOrEqual(t, snap.Spent, snap.Limit)
	assert.Equal(t, wantSpent.Load(), b.spent, "spent is the exact sum of the settled amounts")
	assert.Zero(t, overLimit.Load(), "spent plus reserved never passed the limit")
	assert.Positive(t, rejected.Load(), "the cap was reached")
	assert.Positive(t, accepted.Load())
}

func TestUSDToMicros(t *testing.T) {
	tests := []struct {
		usd  float64
		want int64
	}{
		{0, 0},
		{-1, 0},
		{math.NaN(), 0},
		{0.01088, 10880},
		{0.1 + 0.2, 300000},
		{0.0000001, 1},
		{1e300, maxBudgetMicros},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, usdToMicros(tt.usd), "%v", tt.usd)
	}
}

func BenchmarkBudgetReserveSettleParallel(b *testing.B) {
	budget, err := NewBudget(1e9, time.Hour)
	require.NoError(b, err)
	ctx := context.Background()
	estimate, actual := knownCost(0.042), knownCost(0.040)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := budget.Reserve(ctx, estimate)
			if err != nil {
				b.Error(err)
				return
			}
			r.Settle(actual)
		}
	})
}
