package imagegen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

type flightResult struct {
	val    string
	shared bool
	err    error
}

func TestFlightGroupMergesConcurrentCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var g flightGroup[string]
		var calls atomic.Int32
		release := make(chan struct{})
		fn := func(ctx context.Context) (string, error) {
			calls.Add(1)
			<-release
			return "image", nil
		}

		const callers = 100
		results := make([]flightResult, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				v, shared, err := g.Do(t.Context(), "key", 0, fn)
				results[i] = flightResult{v, shared, err}
			})
		}
		synctest.Wait() // every caller is now waiting for the one call
		close(release)
		wg.Wait()

		assert.Equal(t, int32(1), calls.Load())
		sharedCount := 0
		for i, r := range results {
			assert.NoError(t, r.err, "caller %d", i)
			assert.Equal(t, "image", r.val, "caller %d", i)
			if r.shared {
				sharedCount++
			}
		}
		assert.Equal(t, callers-1, sharedCount, "callers that joined another's call")
	})
}

func TestFlightGroupWaiterCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var g flightGroup[string]
		release := make(chan struct{})
		var fnErr error
		fn := func(ctx context.Context) (string, error) {
			<-release
			fnErr = ctx.Err()
			return "image", nil
		}

		leaderCtx, cancelLeader := context.WithCancel(t.Context())
		joinerCtx, cancelJoiner := context.WithCancel(t.Context())
		results := make([]flightResult, 3)
		var wg sync.WaitGroup
		for i, ctx := range []context.Context{leaderCtx, joinerCtx, t.Context()} {
			wg.Go(func() {
				v, shared, err := g.Do(ctx, "key", 0, fn)
				results[i] = flightResult{v, shared, err}
			})
			synctest.Wait() // start the callers in order
		}

		cancelLeader()
		cancelJoiner()
		synctest.Wait()
		close(release)
		wg.Wait()

		assert.ErrorIs(t, results[0].err, context.Canceled, "leader")
		assert.False(t, results[0].shared, "leader")
		assert.ErrorIs(t, results[1].err, context.Canceled, "joiner")
		assert.True(t, results[1].shared, "joiner")
		assert.NoError(t, results[2].err, "remaining waiter")
		assert.Equal(t, "image", results[2].val, "remaining waiter")
		assert.NoError(t, fnErr, "the shared call's context")
	})
}

func TestFlightGroupTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var g flightGroup[string]
		fn := func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}

		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				_, _, errs[i] = g.Do(t.Context(), "key", 90*time.Second, fn)
			})
		}
		wg.Wait()

		assert.Equal(t, 90*time.Second, time.Since(start))
		for i, err := range errs {
			assert.ErrorIs(t, err, context.DeadlineExceeded, "caller %d", i)
		}
	})
}

func TestFlightGroupNoTimeout(t *testing.T) {
	var g flightGroup[bool]
	hasDeadline, _, err := g.Do(t.Context(), "key", 0, func(ctx context.Context) (bool, error) {
		_, ok := ctx.Deadline()
		return ok, nil
	})
	require.NoError(t, err)
	assert.False(t, hasDeadline)
}

func TestFlightGroupKeepsContextValues(t *testing.T) {
	type ctxKey struct{}
	var g flightGroup[any]
	ctx := context.WithValue(t.Context(), ctxKey{}, "request-7")
	v, _, err := g.Do(ctx, "key", time.Minute, func(ctx context.Context) (any, error) {
		return ctx.Value(ctxKey{}), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "request-7", v)
}

func TestFlightGroupSequentialCallsRunAgain(t *testing.T) {
	var g flightGroup[int]
	var calls int
	fn := func(ctx context.Context) (int, error) {
		calls++
		return calls, nil
	}
	for want := 1; want <= 3; want++ {
		v, shared, err := g.Do(t.Context(), "key", 0, fn)
		require.NoError(t, err)
		assert.Equal(t, want, v)
		assert.False(t, shared)
	}
	assert.Empty(t, g.calls, "finished calls left in the map")
}

func TestFlightGroupDistinctKeys(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var g flightGroup[string]
		var calls atomic.Int32
		release := make(chan struct{})
		fn := func(ctx context.Context) (string, error) {
			calls.Add(1)
			<-release
			return "image", nil
		}
		var wg sync.WaitGroup
		for _, key := range []string{"a", "b", "c"} {
			wg.Go(func() {
				_, shared, err := g.Do(t.Context(), key, 0, fn)
				assert.NoError(t, err)
				assert.False(t, shared)
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		assert.Equal(t, int32(3), calls.Load())
	})
}

func TestFlightGroupError(t *testing.T) {
	var g flightGroup[string]
	want := errors.New("upstream failed")
	_, _, err := g.Do(t.Context(), "key", 0, func(ctx context.Context) (string, error) {
		return "", want
	})
	assert.ErrorIs(t, err, want)
}

func TestFlightGroupPanic(t *testing.T) {
	defer goleak.VerifyNone(t)
	var g flightGroup[string]
	_, _, err := g.Do(t.Context(), "key", 0, func(ctx context.Context) (string, error) {
		panic("boom")
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panicked: boom")

	// The group still works after a panic.
	v, _, err := g.Do(t.Context(), "key", 0, func(ctx context.Context) (string, error) {
		return "ok", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
}

func TestFlightGroupCanceledBeforeCall(t *testing.T) {
	var g flightGroup[string]
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, _, err := g.Do(ctx, "key", 0, func(ctx context.Context) (string, error) {
		called = true
		return "", nil
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, called)
}

func TestFlightGroupCallOutlivesAllWaiters(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var g flightGroup[string]
		release := make(chan struct{})
		finished := make(chan error, 1)
		fn := func(ctx context.Context) (string, error) {
			<-release
			finished <- ctx.Err()
			return "image", nil
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, _, err := g.Do(ctx, "key", 0, fn)
			done <- err
		}()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)

		close(release)
		assert.NoError(t, <-finished, "the shared call ran on to the end")
	})
}
