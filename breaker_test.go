package imagegen

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var breakerTestStart = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// newTestBreaker returns a breaker for provider "p" with settings filled
// with defaults.
func newTestBreaker(t testing.TB, s BreakerSettings) *circuitBreaker {
	t.Helper()
	s, err := s.withDefaults()
	require.NoError(t, err)
	return newCircuitBreaker("p", s)
}

// breakerCall lets one call through b at now and records its outcome. It
// fails the test when allow rejects the call.
func breakerCall(t testing.TB, b *circuitBreaker, class Class, now time.Time) *BreakerEvent {
	t.Helper()
	ticket, _, err := b.allow(now)
	require.NoError(t, err)
	return b.record(ticket, &Error{Provider: "p", Class: class}, class, now)
}

// breakerSuccess lets one call through b at now and records a success.
func breakerSuccess(t testing.TB, b *circuitBreaker, now time.Time) *BreakerEvent {
	t.Helper()
	ticket, _, err := b.allow(now)
	require.NoError(t, err)
	return b.record(ticket, nil, ClassUnknown, now)
}

// openTestBreaker drives b from closed to open with ordinary failures at now.
func openTestBreaker(t testing.TB, b *circuitBreaker, now time.Time) {
	t.Helper()
	for range b.settings.ConsecutiveFailures {
		breakerCall(t, b, ClassServer, now)
	}
	require.Equal(t, BreakerOpen, b.currentState(now))
}

func TestBreakerSettingsDefaults(t *testing.T) {
	s, err := BreakerSettings{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, BreakerSettings{
		ConsecutiveFailures: 5,
		FailureRate:         0.5,
		MinRequests:         20,
		Window:              time.Minute,
		Cooldown:            30 * time.Second,
		LongCooldown:        10 * time.Minute,
		HalfOpenProbes:      1,
		ProbeTimeout:        5 * time.Minute,
	}, s)

	custom := BreakerSettings{ConsecutiveFailures: 2, FailureRate: 1, Cooldown: time.Second}
	s, err = custom.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 2, s.ConsecutiveFailures)
	assert.Equal(t, 1.0, s.FailureRate)
	assert.Equal(t, time.Second, s.Cooldown)
}

func TestBreakerSettingsInvalid(t *testing.T) {
	tests := []struct {
		name     string
		settings BreakerSettings
		field    string
	}{
		{"negative consecutive", BreakerSettings{ConsecutiveFailures: -1}, "ConsecutiveFailures"},
		{"rate above one", BreakerSettings{FailureRate: 1.5}, "FailureRate"},
		{"negative rate", BreakerSettings{FailureRate: -0.1}, "FailureRate"},
		{"NaN rate", BreakerSettings{FailureRate: math.NaN()}, "FailureRate"},
		{"negative min requests", BreakerSettings{MinRequests: -3}, "MinRequests"},
		{"negative window", BreakerSettings{Window: -time.Second}, "Window"},
		{"negative cooldown", BreakerSettings{Cooldown: -time.Second}, "Cooldown"},
		{"negative long cooldown", BreakerSettings{LongCooldown: -time.Second}, "LongCooldown"},
		{"negative probes", BreakerSettings{HalfOpenProbes: -1}, "HalfOpenProbes"},
		{"negative probe timeout", BreakerSettings{ProbeTimeout: -time.Second}, "ProbeTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.settings.withDefaults()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "imagegen: invalid BreakerSettings."+tt.field)
		})
	}
}

func TestBreakerConsecutiveFailuresOpen(t *testing.T) {
	for _, class := range []Class{ClassServer, ClassTimeout, ClassNetwork, ClassOutcomeUnknown, ClassUnknown} {
		t.Run(class.String(), func(t *testing.T) {
			b := newTestBreaker(t, BreakerSettings{})
			now := breakerTestStart
			for i := range 4 {
				require.Nil(t, breakerCall(t, b, class, now), "failure %d", i+1)
			}
			assert.Equal(t, BreakerClosed, b.currentState(now))

			ticket, _, err := b.allow(now)
			require.NoError(t, err)
			cause := &Error{Provider: "p", Class: class}
			change := b.record(ticket, cause, class, now)
			require.NotNil(t, change)
			assert.Equal(t, BreakerEvent{Provider: "p", From: BreakerClosed, To: BreakerOpen, Cause: cause}, *change)

			_, change, err = b.allow(now.Add(29 * time.Second))
			assert.Nil(t, change)
			require.ErrorIs(t, err, ErrBreakerOpen)
			var open *BreakerOpenError
			require.ErrorAs(t, err, &open)
			assert.Equal(t, "p", open.Provider)
			assert.Equal(t, BreakerOpen, open.State)
			assert.Equal(t, now.Add(30*time.Second), open.Until)
		})
	}
}

func TestBreakerSuccessResetsRun(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{})
	now := breakerTestStart
	for range 4 {
		breakerCall(t, b, ClassServer, now)
	}
	require.Nil(t, breakerSuccess(t, b, now))
	for range 4 {
		require.Nil(t, breakerCall(t, b, ClassServer, now))
	}
	assert.Equal(t, BreakerClosed, b.currentState(now))
}

func TestBreakerNeutralClassesNeverCount(t *testing.T) {
	neutral := []Class{ClassRateLimited, ClassInvalidRequest, ClassContentRejected, ClassNotFound, ClassCanceled}
	for _, class := range neutral {
		t.Run(class.String(), func(t *testing.T) {
			b := newTestBreaker(t, BreakerSettings{})
			now := breakerTestStart
			for range 100 {
				require.Nil(t, breakerCall(t, b, class, now))
			}
			assert.Equal(t, BreakerClosed, b.currentState(now))

			// A neutral outcome does not break a run of failures either.
			for range 4 {
				breakerCall(t, b, ClassServer, now)
			}
			breakerCall(t, b, class, now)
			change := breakerCall(t, b, ClassServer, now)
			require.NotNil(t, change)
			assert.Equal(t, BreakerOpen, change.To)
		})
	}
}

func TestBreakerFailureRate(t *testing.T) {
	tests := []struct {
		name string
		// outcomes is a sequence of calls: 'S' success, 'F' failure, 'N'
		// neutral, each step apart.
		outcomes string
		step     time.Duration
		wantOpen bool
	}{
		{"half of twenty fail", "SFSFSFSFSFSFSFSFSFSF", time.Second, true},
		{"nine of twenty fail", "SFSFSFSFSFSFSFSFSFSS", time.Second, false},
		{"too few calls", "SFSFSFSFSFSFSFSFSFF", time.Second, false},
		{"neutral calls not counted", "SFSFSFSFSFSFSFSFSFNNNNNF", time.Second, false},
		{"old calls leave the window", "SFSFSFSFSFSFSFSFSFSF", 4 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A long run limit isolates the rate rule.
			b := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1000})
			now := breakerTestStart
			for i, outcome := range tt.outcomes {
				require.Equal(t, BreakerClosed, b.currentState(now), "before call %d", i+1)
				switch outcome {
				case 'S':
					breakerSuccess(t, b, now)
				case 'F':
					breakerCall(t, b, ClassServer, now)
				case 'N':
					breakerCall(t, b, ClassRateLimited, now)
				}
				now = now.Add(tt.step)
			}
			assert.Equal(t, tt.wantOpen, b.currentState(now) == BreakerOpen)
		})
	}
}

func TestBreakerFailureRateThreshold(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1000, FailureRate: 0.25, MinRequests: 4})
	now := breakerTestStart
	for range 3 {
		breakerSuccess(t, b, now)
	}
	change := breakerCall(t, b, ClassTimeout, now)
	require.NotNil(t, change)
	assert.Equal(t, BreakerOpen, change.To)
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	tests := []struct {
		name      string
		probe     Class // the probe's failure class, unused when success is true
		success   bool
		wantState BreakerState
		wantUntil time.Duration // cooldown after the probe, when it reopens
	}{
		{"success closes", ClassUnknown, true, BreakerClosed, 0},
		{"failure reopens", ClassServer, false, BreakerOpen, 30 * time.Second},
		{"timeout reopens", ClassTimeout, false, BreakerOpen, 30 * time.Second},
		{"quota reopens long", ClassQuotaExceeded, false, BreakerOpen, 10 * time.Minute},
		{"neutral keeps half-open", ClassRateLimited, false, BreakerHalfOpen, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBreaker(t, BreakerSettings{})
			opened := breakerTestStart
			openTestBreaker(t, b, opened)

			probeAt := opened.Add(30 * time.Second)
			assert.Equal(t, BreakerHalfOpen, b.currentState(probeAt))
			ticket, change, err := b.allow(probeAt)
			require.NoError(t, err)
			assert.True(t, ticket.probe)
			require.NotNil(t, change)
			assert.Equal(t, BreakerEvent{Provider: "p", From: BreakerOpen, To: BreakerHalfOpen}, *change)

			// The single probe slot is taken.
			_, change, err = b.allow(probeAt)
			assert.Nil(t, change)
			var open *BreakerOpenError
			require.ErrorAs(t, err, &open)
			assert.Equal(t, BreakerHalfOpen, open.State)
			assert.True(t, open.Until.IsZero())

			var callErr error
			if !tt.success {
				callErr = &Error{Provider: "p", Class: tt.probe}
			}
			change = b.record(ticket, callErr, tt.probe, probeAt)
			assert.Equal(t, tt.wantState, b.currentState(probeAt))
			if tt.wantState == BreakerHalfOpen {
				assert.Nil(t, change)
				next, _, err := b.allow(probeAt)
				require.NoError(t, err, "a neutral probe frees its slot")
				assert.True(t, next.probe)
				return
			}
			require.NotNil(t, change)
			assert.Equal(t, BreakerHalfOpen, change.From)
			assert.Equal(t, tt.wantState, change.To)
			if tt.wantState == BreakerOpen {
				assert.Equal(t, callErr, change.Cause)
				_, _, err := b.allow(probeAt.Add(tt.wantUntil - time.Nanosecond))
				require.ErrorIs(t, err, ErrBreakerOpen)
				_, _, err = b.allow(probeAt.Add(tt.wantUntil))
				require.NoError(t, err)
				return
			}
			next, _, err := b.allow(probeAt)
			require.NoError(t, err)
			assert.False(t, next.probe)
		})
	}
}

func TestBreakerAccountFailuresOpenLong(t *testing.T) {
	for _, class := range []Class{ClassQuotaExceeded, ClassNotEntitled, ClassAuthentication} {
		t.Run(class.String(), func(t *testing.T) {
			b := newTestBreaker(t, BreakerSettings{})
			now := breakerTestStart
			change := breakerCall(t, b, class, now)
			require.NotNil(t, change)
			assert.Equal(t, BreakerOpen, change.To)

			_, _, err := b.allow(now.Add(10*time.Minute - time.Nanosecond))
			var open *BreakerOpenError
			require.ErrorAs(t, err, &open)
			assert.Equal(t, now.Add(10*time.Minute), open.Until)

			ticket, _, err := b.allow(now.Add(10 * time.Minute))
			require.NoError(t, err)
			assert.True(t, ticket.probe)
		})
	}
}

func TestBreakerMultipleProbes(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{HalfOpenProbes: 2})
	opened := breakerTestStart
	openTestBreaker(t, b, opened)

	probeAt := opened.Add(30 * time.Second)
	first, _, err := b.allow(probeAt)
	require.NoError(t, err)
	second, _, err := b.allow(probeAt)
	require.NoError(t, err)
	_, _, err = b.allow(probeAt)
	require.ErrorIs(t, err, ErrBreakerOpen, "only two probes at once")

	assert.Nil(t, b.record(first, nil, ClassUnknown, probeAt), "one success is not enough")
	assert.Equal(t, BreakerHalfOpen, b.currentState(probeAt))
	change := b.record(second, nil, ClassUnknown, probeAt)
	require.NotNil(t, change)
	assert.Equal(t, BreakerClosed, change.To)
}

func TestBreakerProbeSlotNotWedged(t *testing.T) {
	t.Run("cancel frees slot", func(t *testing.T) {
		b := newTestBreaker(t, BreakerSettings{})
		openTestBreaker(t, b, breakerTestStart)
		probeAt := breakerTestStart.Add(30 * time.Second)

		ticket, _, err := b.allow(probeAt)
		require.NoError(t, err)
		b.cancelProbe(ticket)
		next, _, err := b.allow(probeAt)
		require.NoError(t, err)
		assert.True(t, next.probe)
	})

	t.Run("cancel of non-probe is ignored", func(t *testing.T) {
		b := newTestBreaker(t, BreakerSettings{})
		ticket, _, err := b.allow(breakerTestStart)
		require.NoError(t, err)
		b.cancelProbe(ticket)
		assert.Equal(t, BreakerClosed, b.currentState(breakerTestStart))
	})

	t.Run("lost probe times out", func(t *testing.T) {
		b := newTestBreaker(t, BreakerSettings{ProbeTimeout: time.Minute})
		openTestBreaker(t, b, breakerTestStart)
		probeAt := breakerTestStart.Add(30 * time.Second)

		lost, _, err := b.allow(probeAt)
		require.NoError(t, err)
		_, _, err = b.allow(probeAt.Add(time.Minute - time.Nanosecond))
		require.ErrorIs(t, err, ErrBreakerOpen)

		next, _, err := b.allow(probeAt.Add(time.Minute))
		require.NoError(t, err)
		assert.True(t, next.probe)

		// The lost probe's late report is ignored: its slot went to the
		// new probe, and no more than one probe may run at once.
		assert.Nil(t, b.record(lost, nil, ClassUnknown, probeAt.Add(time.Minute)))
		b.cancelProbe(lost)
		_, _, err = b.allow(probeAt.Add(time.Minute))
		require.ErrorIs(t, err, ErrBreakerOpen, "the new probe still holds the only slot")
		assert.Equal(t, BreakerHalfOpen, b.currentState(probeAt.Add(time.Minute)))

		// The new probe's own report decides.
		change := b.record(next, nil, ClassUnknown, probeAt.Add(time.Minute))
		require.NotNil(t, change)
		assert.Equal(t, BreakerClosed, change.To)
	})
}

func TestBreakerIgnoresStaleTickets(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{})
	now := breakerTestStart

	// A slow call starts while closed and finishes after the breaker opened
	// and turned half-open: its success must not close the breaker.
	slow, _, err := b.allow(now)
	require.NoError(t, err)
	openTestBreaker(t, b, now)
	probeAt := now.Add(30 * time.Second)
	probe, _, err := b.allow(probeAt)
	require.NoError(t, err)

	assert.Nil(t, b.record(slow, nil, ClassUnknown, probeAt))
	assert.Equal(t, BreakerHalfOpen, b.currentState(probeAt))

	// A stale failure does not reopen it either.
	assert.Nil(t, b.record(slow, &Error{Class: ClassQuotaExceeded}, ClassQuotaExceeded, probeAt))
	assert.Equal(t, BreakerHalfOpen, b.currentState(probeAt))

	change := b.record(probe, nil, ClassUnknown, probeAt)
	require.NotNil(t, change)
	assert.Equal(t, BreakerClosed, change.To)
}

func TestBreakerClosingClearsCounts(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{})
	openTestBreaker(t, b, breakerTestStart)
	probeAt := breakerTestStart.Add(30 * time.Second)
	require.NotNil(t, breakerSuccess(t, b, probeAt))

	for range 4 {
		require.Nil(t, breakerCall(t, b, ClassServer, probeAt))
	}
	assert.Equal(t, BreakerClosed, b.currentState(probeAt))
}

func TestBreakerConcurrentAllowGrantsOneProbe(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{})
	openTestBreaker(t, b, breakerTestStart)
	probeAt := breakerTestStart.Add(30 * time.Second)

	const callers = 64
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		granted  []breakerTicket
		changes  int
		rejected int
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			ticket, change, err := b.allow(probeAt)
			mu.Lock()
			defer mu.Unlock()
			if change != nil {
				changes++
			}
			if err != nil {
				rejected++
				return
			}
			granted = append(granted, ticket)
		})
	}
	close(start)
	wg.Wait()

	require.Len(t, granted, 1)
	assert.True(t, granted[0].probe)
	assert.Equal(t, 1, changes, "one caller reports the move to half-open")
	assert.Equal(t, callers-1, rejected)
}

func TestBreakerConcurrentUse(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 3, Cooldown: time.Second})
	classes := []Class{ClassServer, ClassRateLimited, ClassUnknown, ClassQuotaExceeded, ClassCanceled}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			now := breakerTestStart
			for i := range 2000 {
				now = now.Add(time.Duration(g+1) * time.Millisecond)
				ticket, _, err := b.allow(now)
				if err != nil {
					assert.ErrorIs(t, err, ErrBreakerOpen)
					continue
				}
				switch {
				case i%7 == 0:
					b.cancelProbe(ticket)
				case i%3 == 0:
					class := classes[i%len(classes)]
					b.record(ticket, &Error{Class: class}, class, now)
				default:
					b.record(ticket, nil, ClassUnknown, now)
				}
				b.currentState(now)
			}
		})
	}
	wg.Wait()

	b.mu.Lock()
	defer b.mu.Unlock()
	assert.GreaterOrEqual(t, b.probes, 0)
	assert.LessOrEqual(t, b.probes, b.settings.HalfOpenProbes)
}

func TestBreakerOpenErrorText(t *testing.T) {
	until := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	open := &BreakerOpenError{Provider: "azure", State: BreakerOpen, Until: until}
	assert.Equal(t, `imagegen: circuit breaker of provider "azure" is open until 2026-12-01T12:00:30Z after repeated failures; `+
		"use another provider or retry after that time", open.Error())

	half := &BreakerOpenError{Provider: "azure", State: BreakerHalfOpen}
	assert.Contains(t, half.Error(), "half-open")

	var nilErr *BreakerOpenError
	assert.Equal(t, "imagegen: <nil error>", nilErr.Error())

	wrapped := errors.Join(errors.New("other"), open)
	assert.ErrorIs(t, wrapped, ErrBreakerOpen)
	assert.NotErrorIs(t, open, ErrServer)
}

func TestBreakerStateString(t *testing.T) {
	assert.Equal(t, "closed", BreakerClosed.String())
	assert.Equal(t, "open", BreakerOpen.String())
	assert.Equal(t, "half_open", BreakerHalfOpen.String())
	assert.Equal(t, "unknown", BreakerState(9).String())
}

func TestBreakerWindowBeforeUnixEpoch(t *testing.T) {
	b := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1000, MinRequests: 2})
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	breakerSuccess(t, b, old)
	change := breakerCall(t, b, ClassServer, old)
	require.NotNil(t, change, "the window works for negative Unix times")
}

func BenchmarkBreakerAllowRecord(b *testing.B) {
	br := newTestBreaker(b, BreakerSettings{})
	now := breakerTestStart
	b.ReportAllocs()
	for b.Loop() {
		ticket, _, err := br.allow(now)
		if err != nil {
			b.Fatal(err)
		}
		br.record(ticket, nil, ClassUnknown, now)
	}
}

func BenchmarkBreakerAllowRecordParallel(b *testing.B) {
	br := newTestBreaker(b, BreakerSettings{})
	now := breakerTestStart
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ticket, _, err := br.allow(now)
			if err != nil {
				b.Error(err)
				return
			}
			br.record(ticket, nil, ClassUnknown, now)
		}
	})
}
