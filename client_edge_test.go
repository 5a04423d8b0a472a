package imagegen_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
)

func TestSplitEditStaysEdit(t *testing.T) {
	cat, err := imagegen.DefaultCatalog().With(imagegen.Model{Name: "edit-one", MaxN: 1, SupportsEdits: true})
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCatalog(cat))
	require.NoError(t, err)
	png := imagegentest.TinyPNG()

	res, err := c.Edit(t.Context(), "add a hat", []provider.File{{MediaType: "image/png", Data: png}},
		imagegen.EditOptions{GenerateOptions: imagegen.GenerateOptions{Model: "edit-one", N: 2}})

	require.NoError(t, err)
	assert.Len(t, res.Images, 2)
	edits := fake.EditRequests()
	require.Len(t, edits, 2, "each part of a split edit is an edit")
	for _, e := range edits {
		assert.Equal(t, 1, e.N)
		assert.Len(t, e.Images, 1)
	}
}

func TestShortAnswerIsPartial(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResult{Response: &provider.Response{
		Images: []provider.Image{{Data: imagegentest.TinyPNG(), MediaType: "image/png"}},
	}})
	c, err := imagegen.New(imagegen.WithProvider(fake))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{N: 2})

	require.NotNil(t, res)
	assert.Len(t, res.Images, 1)
	var partial *imagegen.PartialError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, 2, partial.Requested)
	assert.Equal(t, 1, partial.Returned)
	assert.Equal(t, 1, fake.Calls(), "a billed answer is not retried")
}

func TestBudgetCountsEveryPossiblyBilledAttempt(t *testing.T) {
	tests := []struct {
		name   string
		answer imagegentest.Response
		calls  int
	}{
		{"dropped connections", imagegentest.DropConnection(), 3},
		{"gateway timeouts", imagegentest.Response{Status: http.StatusGatewayTimeout, Body: "<html>504</html>"}, 3},
		{"unreadable 2xx", imagegentest.BadBase64(), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				budget, err := imagegen.NewBudget(1, 0)
				require.NoError(t, err)
				fake := imagegentest.NewFakeProvider("fake")
				for range tt.calls {
					fake.Enqueue(imagegentest.FakeResultFrom(tt.answer))
				}
				c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"))
				require.NoError(t, err)

				_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

				require.Error(t, err)
				assert.Equal(t, tt.calls, fake.Calls())
				assert.InDelta(t, float64(tt.calls)*0.011, budget.Snapshot().Spent, 0.002, "each attempt may have been billed")
				assert.Zero(t, budget.Snapshot().Reserved)
			})
		})
	}
}

func TestStopOnUnknownOutcomeAfterBadAnswer(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.BadBase64()))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithRetry(imagegen.RetryPolicy{OutcomeUnknown: imagegen.StopOnUnknownOutcome}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	assert.ErrorIs(t, err, imagegen.ErrOutcomeUnknown)
	assert.Equal(t, 1, fake.Calls(), "a 2xx answer may have been billed, so it is not sent again")
}

func TestPanickingProviderReleasesBudget(t *testing.T) {
	budget, err := imagegen.NewBudget(1, 0)
	require.NoError(t, err)
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithFakeFunc(func(context.Context, imagegentest.FakeCall) *imagegentest.FakeResult {
		panic("provider bug")
	}))
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithBudget(budget), imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithDeduplication(0))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

	assert.ErrorContains(t, err, "provider bug")
	assert.Zero(t, budget.Snapshot().Reserved, "the reservation is released")
}

func TestShouldRetryNeverRetriesNotFound(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	h := http.Header{"X-Should-Retry": {"true"}}
	fake.Enqueue(imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusNotFound, "invalid_request_error", "model_not_found", "no such model", h)})
	backup := imagegentest.NewFakeProvider("backup")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithProvider(backup))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, "backup", res.Provider)
	assert.Equal(t, 1, fake.Calls())
}

func TestCancelDuringBackoffReportsCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake")
		fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.ServerError(500)))
		var classes []imagegen.Class
		c, err := imagegen.New(imagegen.WithProvider(fake),
			imagegen.WithHooks(imagegen.Hooks{Done: func(_ context.Context, e imagegen.DoneEvent) { classes = append(classes, e.Class) }}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())

		done := make(chan error)
		go func() {
			_, err := c.Generate(ctx, "x", imagegen.GenerateOptions{})
			done <- err
		}()
		synctest.Wait()
		cancel()

		assert.ErrorIs(t, <-done, context.Canceled)
		assert.Equal(t, []imagegen.Class{imagegen.ClassCanceled}, classes)
	})
}

func TestDeduplicationLeaderLeavesDuringRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake")
		fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.ServerError(500)))
		c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDeduplication(0),
			imagegen.WithRetry(imagegen.RetryPolicy{InitialDelay: 50 * time.Millisecond, NoJitter: true}))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()

		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := c.Generate(ctx, "x", imagegen.GenerateOptions{})
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
		var joined *imagegen.Result
		wg.Go(func() {
			res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
			assert.NoError(t, err)
			joined = res
		})
		wg.Wait()

		require.NotNil(t, joined)
		assert.Equal(t, 2, fake.Calls(), "the shared call retried after its first caller left")
	})
}

func TestNegativeCostCapRejected(t *testing.T) {
	c, err := imagegen.New(imagegen.WithProvider(imagegentest.NewFakeProvider("fake")))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{MaxCostPerImage: -1})

	var v *imagegen.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "max_cost_per_image", v.Field)
}

func TestCacheHitKeepsChoice(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithCache(newMemoryCache(t), imagegen.CacheOptions{}))
	require.NoError(t, err)
	opts := imagegen.GenerateOptions{Preset: imagegen.PresetWeb}

	_, err = c.Generate(t.Context(), "x", opts)
	require.NoError(t, err)
	res, err := c.Generate(t.Context(), "x", opts)

	require.NoError(t, err)
	assert.True(t, res.Cached)
	require.NotNil(t, res.Choice)
	assert.NotEmpty(t, res.Choice.Size)
}
