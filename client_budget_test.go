package imagegen_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
)

func TestBudgetNeverOvershotByConcurrentCalls(t *testing.T) {
	budget, err := imagegen.NewBudget(0.10, 0)
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages())
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"))
	require.NoError(t, err)

	var ok, rejected atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})
			switch {
			case err == nil:
				assert.True(t, res.Cost.Known)
				ok.Add(1)
			case errors.Is(err, imagegen.ErrBudgetExceeded):
				rejected.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()

	snap := budget.Snapshot()
	assert.LessOrEqual(t, snap.Spent, snap.Limit, "spend never passes the cap")
	assert.Zero(t, snap.Reserved, "every reservation was settled or released")
	assert.Equal(t, int64(100), ok.Load()+rejected.Load())
	assert.Positive(t, rejected.Load())
	// One low 1024x1024 image is estimated at about $0.011, so about nine fit.
	assert.InDelta(t, 9, ok.Load(), 1)
	assert.Equal(t, int(ok.Load()), fake.Calls(), "rejected calls never reach the provider")
}

func TestBudgetReleasedOnFailure(t *testing.T) {
	budget, err := imagegen.NewBudget(1, 0)
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.ModerationBlocked()))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

	require.Error(t, err)
	assert.Zero(t, budget.Snapshot().Spent, "a rejected request was not billed")
	assert.Zero(t, budget.Snapshot().Reserved)
}

func TestBudgetCountsPossiblyBilledAttempts(t *testing.T) {
	budget, err := imagegen.NewBudget(1, 0)
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.DropConnection()))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithRetry(imagegen.RetryPolicy{OutcomeUnknown: imagegen.StopOnUnknownOutcome}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

	assert.ErrorIs(t, err, imagegen.ErrOutcomeUnknown)
	assert.InDelta(t, 0.011, budget.Snapshot().Spent, 0.001, "a dropped answer may have been billed")
}

func TestBudgetUnknownPrice(t *testing.T) {
	budget, err := imagegen.NewBudget(1, 0)
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	assert.ErrorIs(t, err, imagegen.ErrCostUnknown, "gpt-image-2 has no published price, so a cap cannot hold")
	assert.Zero(t, fake.Calls())
}

func TestCostFromUsage(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDefaultModel("gpt-image-1"))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "a lighthouse at dawn", imagegen.GenerateOptions{Quality: "medium", Size: "1024x1536"})

	require.NoError(t, err)
	require.NotNil(t, res.Usage)
	assert.True(t, res.Cost.Known)
	assert.False(t, res.Cost.Estimated, "the fake reports usage")
	want := float64(res.Usage.OutputTokens)*40/1e6 + float64(res.Usage.InputTextTokens)*5/1e6
	assert.InDelta(t, want, res.Cost.USD, 1e-9)
	assert.InDelta(t, 0.063, res.Cost.USD, 0.001, "the published price of a medium 1024x1536 image")
}

func TestPresetAndBudgetSelection(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDefaultModel("gpt-image-1"))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{AspectRatio: "16:9", MaxCostPerImage: 0.07})

	require.NoError(t, err)
	require.NotNil(t, res.Choice)
	assert.Equal(t, "1536x1024", res.Choice.Size)
	assert.Equal(t, "medium", res.Choice.Quality, "medium costs $0.063 at this size and high $0.25, over the cap")
	assert.NotEmpty(t, res.Choice.Reason)
	assert.Equal(t, "1536x1024", fake.Requests()[0].Size)
	assert.Equal(t, "medium", fake.Requests()[0].Quality)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{MaxCostPerImage: 0.001})
	assert.ErrorIs(t, err, imagegen.ErrBudgetExceeded)
	assert.Equal(t, 1, fake.Calls())
}

func TestSplitRequestWithPartialFailure(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	var calls atomic.Int64
	fake.SetFunc(func(context.Context, imagegentest.FakeCall) *imagegentest.FakeResult {
		if calls.Add(1) == 2 {
			r := imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusBadRequest, "image_generation_user_error", "moderation_blocked", "blocked", nil)}
			return &r
		}
		return nil
	})
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDefaultModel("dall-e-3"), imagegen.WithRetiredModels())
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{N: 3})

	require.NotNil(t, res, "the images that succeeded are returned")
	assert.Len(t, res.Images, 2)
	var partial *imagegen.PartialError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, 3, partial.Requested)
	assert.Equal(t, 2, partial.Returned)
	assert.ErrorIs(t, err, imagegen.ErrContentRejected)
	assert.Equal(t, 3, fake.Calls(), "dall-e-3 makes one image per call")
	for _, r := range fake.Requests() {
		assert.Equal(t, 1, r.N)
	}
	assert.Contains(t, res.Warnings[len(res.Warnings)-1], "split into 3 calls")
}

func TestBudgetRejectionClass(t *testing.T) {
	budget, err := imagegen.NewBudget(0.01, 0)
	require.NoError(t, err)
	var classes []imagegen.Class
	c, err := imagegen.New(imagegen.WithProvider(imagegentest.NewFakeProvider("fake")), imagegen.WithBudget(budget),
		imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithHooks(imagegen.Hooks{Done: func(_ context.Context, e imagegen.DoneEvent) { classes = append(classes, e.Class) }}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

	assert.ErrorIs(t, err, imagegen.ErrBudgetExceeded)
	assert.Equal(t, []imagegen.Class{imagegen.ClassBudgetExceeded}, classes)
	assert.Equal(t, int64(1), c.Stats().Totals.FailuresByClass.Count(imagegen.ClassBudgetExceeded))
}

func TestBudgetCountsCallerDeadlineInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget, err := imagegen.NewBudget(1, 0)
		require.NoError(t, err)
		fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeDelay(time.Minute))
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()

		_, err = c.Generate(ctx, "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, imagegen.ErrTimeout, "the caller's deadline cut a request in flight")
		assert.NotContains(t, err.Error(), "canceled")
		assert.InDelta(t, 0.011, budget.Snapshot().Spent, 0.001, "the cut request may have been billed")
	})
}

func TestEstimateLearnedFromUsage(t *testing.T) {
	budget, err := imagegen.NewBudget(10, 0, imagegen.WithUnknownCostPerImage(1))
	require.NoError(t, err)
	var reserved []float64
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget),
		imagegen.WithDefaultModel("gpt-image-2.6-sunburst"),
		imagegen.WithHooks(imagegen.Hooks{AttemptStart: func(context.Context, imagegen.AttemptStartEvent) {
			reserved = append(reserved, budget.Snapshot().Reserved)
		}}))
	require.NoError(t, err)
	opts := imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"}

	first, err := c.Generate(t.Context(), "a lighthouse", opts)
	require.NoError(t, err)
	_, err = c.Generate(t.Context(), "a lighthouse", opts)
	require.NoError(t, err)

	require.Len(t, reserved, 2)
	assert.InDelta(t, 1, reserved[0], 1e-9, "no token table: the per-image fallback is reserved")
	// The fake reports 272 output tokens for a low 1024x1024 image, priced
	// at $30 per million for this model.
	assert.InDelta(t, 272*30/1e6, reserved[1], 0.0005, "the second call is estimated from the first one's usage")
	assert.Less(t, reserved[1], 0.01)
	assert.True(t, first.Cost.Known)
	assert.InDelta(t, first.Cost.USD*2, budget.Snapshot().Spent, 1e-9)
}
