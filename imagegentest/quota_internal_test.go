package imagegentest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuotaBucket(t *testing.T) {
	type step struct {
		advance       time.Duration
		cost          int64
		wantFits      bool
		wantWait      time.Duration
		wantRemaining int64 // after the step
		wantReset     time.Duration
	}
	tests := []struct {
		name   string
		limit  int
		period time.Duration
		steps  []step
	}{
		{
			name: "spends and refills one per interval", limit: 2, period: time.Minute,
			steps: []step{
				{cost: 1, wantFits: true, wantRemaining: 1, wantReset: 30 * time.Second},
				{cost: 1, wantFits: true, wantRemaining: 0, wantReset: time.Minute},
				{cost: 1, wantFits: true, wantWait: 30 * time.Second, wantRemaining: 0, wantReset: time.Minute},
				{advance: 10 * time.Second, cost: 1, wantFits: true, wantWait: 20 * time.Second, wantRemaining: 0, wantReset: 50 * time.Second},
				{advance: 20 * time.Second, cost: 1, wantFits: true, wantRemaining: 0, wantReset: time.Minute},
			},
		},
		{
			name: "full after a whole period", limit: 3, period: time.Second,
			steps: []step{
				{cost: 3, wantFits: true, wantRemaining: 0, wantReset: time.Second},
				{advance: time.Hour, cost: 3, wantFits: true, wantRemaining: 0, wantReset: time.Second},
			},
		},
		{
			name: "images need the whole cost", limit: 5, period: time.Minute,
			steps: []step{
				{cost: 3, wantFits: true, wantRemaining: 2, wantReset: 36 * time.Second},
				{cost: 3, wantFits: true, wantWait: 12 * time.Second, wantRemaining: 2, wantReset: 36 * time.Second},
				{cost: 6, wantFits: false, wantRemaining: 2, wantReset: 36 * time.Second},
			},
		},
		{
			name: "uneven refill rounds the wait up", limit: 3, period: time.Second,
			steps: []step{
				{cost: 3, wantFits: true, wantRemaining: 0, wantReset: time.Second},
				{cost: 1, wantFits: true, wantWait: 333333334 * time.Nanosecond, wantRemaining: 0, wantReset: time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newQuotaBucket(tt.limit, tt.period)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				b.refill(now)
				wait, fits := b.wait(s.cost)
				require.Equal(t, s.wantFits, fits, "step %d fits", i)
				assert.Equal(t, s.wantWait, wait, "step %d wait", i)
				if fits && wait == 0 {
					b.take(s.cost)
				}
				assert.Equal(t, s.wantRemaining, b.remaining(), "step %d remaining", i)
				assert.Equal(t, s.wantReset, b.reset(), "step %d reset", i)
			}
		})
	}
}

func TestQuotaBucketClockBackwards(t *testing.T) {
	b := newQuotaBucket(1, time.Minute)
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	b.refill(now)
	b.take(1)

	b.refill(now.Add(-time.Hour))
	wait, fits := b.wait(1)

	assert.True(t, fits)
	assert.Equal(t, time.Minute, wait, "going back in time refills nothing")
}

func TestQuotaBucketBounds(t *testing.T) {
	assert.Nil(t, newQuotaBucket(0, time.Minute), "zero limit means unlimited")
	b := newQuotaBucket(1<<40, 1000*time.Hour)
	assert.Equal(t, int64(maxQuotaLimit), b.limit)
	assert.Equal(t, int64(maxQuotaPeriod), b.period)
	b.refill(time.Now())
	b.take(maxQuotaLimit)
	assert.Zero(t, b.remaining())
	assert.Equal(t, maxQuotaPeriod, b.reset())
	assert.Equal(t, time.Minute, time.Duration(newQuotaBucket(1, 0).period), "zero period means a minute")
}

func TestFormatReset(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{time.Nanosecond, "1ms"},
		{120 * time.Millisecond, "120ms"},
		{1500 * time.Millisecond, "1.5s"},
		{6 * time.Minute, "6m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, formatReset(tt.in))
		})
	}
}
