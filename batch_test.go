package imagegen

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

func TestSplitN(t *testing.T) {
	tests := []struct {
		name    string
		n, maxN int
		want    []int
	}{
		{"one", 1, 10, []int{1}},
		{"zero means one", 0, 10, []int{1}},
		{"negative means one", -3, 4, []int{1}},
		{"fits one call", 10, 10, []int{10}},
		{"one per call", 4, 1, []int{1, 1, 1, 1}},
		{"remainder last", 7, 3, []int{3, 3, 1}},
		{"exact multiple", 6, 3, []int{3, 3}},
		{"no per-call limit", 5, 0, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SplitN(tt.n, tt.maxN))
		})
	}
}

func testImages(names ...string) []provider.Image {
	out := make([]provider.Image, len(names))
	for i, name := range names {
		out[i] = provider.Image{Data: []byte(name), MediaType: "image/png"}
	}
	return out
}

func imageNames(images []provider.Image) []string {
	out := make([]string, len(images))
	for i, img := range images {
		out[i] = string(img.Data)
	}
	return out
}

func TestJoinBatchesAllSucceed(t *testing.T) {
	limits := provider.RateLimit{Requests: provider.Quota{Known: true, Limit: 50, Remaining: 47}}
	resp, err := joinBatches([]batchResult{
		{requested: 2, resp: &provider.Response{
			Images: testImages("a", "b"), Model: "gpt-image-1", RequestID: "req-1", Size: "1024x1024", Quality: "low",
			Usage: &provider.Usage{InputTokens: 10, InputTextTokens: 10, OutputTokens: 544, TotalTokens: 554},
		}},
		{requested: 1, resp: &provider.Response{
			Images: testImages("c"), Model: "gpt-image-1", RequestID: "req-2", RateLimit: limits,
			Usage: &provider.Usage{InputTokens: 10, InputTextTokens: 10, OutputTokens: 272, TotalTokens: 282},
		}},
		{requested: 1, resp: &provider.Response{Images: testImages("d"), RequestID: "req-2",
			Usage: &provider.Usage{InputTokens: 5, InputImageTokens: 5, OutputTokens: 272, TotalTokens: 277}}},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d"}, imageNames(resp.Images))
	assert.Equal(t, "gpt-image-1", resp.Model)
	assert.Equal(t, "1024x1024", resp.Size)
	assert.Equal(t, "low", resp.Quality)
	assert.Equal(t, "req-1,req-2", resp.RequestID)
	assert.Equal(t, limits, resp.RateLimit)
	assert.Equal(t, &provider.Usage{InputTokens: 25, InputTextTokens: 20, InputImageTokens: 5, OutputTokens: 1088, TotalTokens: 1113}, resp.Usage)
}

func TestJoinBatchesPartialFailure(t *testing.T) {
	rateLimited := &Error{Provider: "openai", Class: ClassRateLimited, StatusCode: 429}
	timedOut := &Error{Provider: "openai", Class: ClassTimeout}
	first := &provider.Response{Images: testImages("a"), Usage: &provider.Usage{OutputTokens: 272, TotalTokens: 272}}

	resp, err := joinBatches([]batchResult{
		{requested: 1, resp: first},
		{requested: 1, err: rateLimited},
		{requested: 1, resp: &provider.Response{Images: testImages("c"), Usage: &provider.Usage{OutputTokens: 272, TotalTokens: 272}}},
		{requested: 1, err: timedOut},
	})
	require.NotNil(t, resp, "successful images are returned with the error")
	assert.Equal(t, []string{"a", "c"}, imageNames(resp.Images))
	assert.Equal(t, int64(544), resp.Usage.OutputTokens)
	assert.Len(t, first.Images, 1, "joining must not change the call's response")

	require.Error(t, err)
	var partial *PartialError
	require.True(t, errors.As(err, &partial))
	assert.Equal(t, 4, partial.Requested)
	assert.Equal(t, 2, partial.Returned)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "returned 2 of 4 images")
}

func TestJoinBatchesMissingUsage(t *testing.T) {
	resp, err := joinBatches([]batchResult{
		{requested: 1, resp: &provider.Response{Images: testImages("a"), Usage: &provider.Usage{OutputTokens: 272}}},
		{requested: 1, resp: &provider.Response{Images: testImages("b")}},
		{requested: 1, resp: &provider.Response{Images: testImages("c"), Usage: &provider.Usage{OutputTokens: 272}}},
	})
	require.NoError(t, err)
	assert.Nil(t, resp.Usage, "a partial sum would undercount the cost")
}

func TestJoinBatchesAllFail(t *testing.T) {
	only := &Error{Class: ClassServer}
	resp, err := joinBatches([]batchResult{{requested: 2, err: only}})
	assert.Nil(t, resp)
	assert.Same(t, only, err, "a single failure is returned unchanged")

	resp, err = joinBatches([]batchResult{
		{requested: 1, err: &Error{Class: ClassServer}},
		{requested: 1, err: &Error{Class: ClassQuotaExceeded}},
		{requested: 1},
	})
	assert.Nil(t, resp)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrServer)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.Contains(t, err.Error(), "neither a response nor an error")
	var partial *PartialError
	assert.False(t, errors.As(err, &partial))

	_, err = joinBatches(nil)
	assert.Error(t, err)
}
