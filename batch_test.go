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

func TestJoinResultsAllSucceed(t *testing.T) {
	res, err := joinResults(4, []*Result{
		{Images: testImages("a", "b"), Provider: "openai", Model: "gpt-image-1", RequestID: "req-1", Size: "1024x1024", Quality: "low",
			Usage: &provider.Usage{InputTokens: 10, InputTextTokens: 10, OutputTokens: 544, TotalTokens: 554},
			Cost:  Cost{USD: 0.02, Known: true}, Attempts: 1},
		{Images: testImages("c"), Provider: "openai", Model: "gpt-image-1", RequestID: "req-2",
			Usage: &provider.Usage{InputTokens: 10, InputTextTokens: 10, OutputTokens: 272, TotalTokens: 282},
			Cost:  Cost{USD: 0.01, Known: true}, Attempts: 2},
		{Images: testImages("d"), Provider: "backup", RequestID: "req-3",
			Usage: &provider.Usage{InputTokens: 5, InputImageTokens: 5, OutputTokens: 272, TotalTokens: 277},
			Cost:  Cost{USD: 0.01, Known: true, Estimated: true}, Attempts: 1},
	}, make([]error, 3))

	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d"}, imageNames(res.Images))
	assert.Equal(t, "gpt-image-1", res.Model)
	assert.Equal(t, "1024x1024", res.Size)
	assert.Equal(t, "req-1,req-2,req-3", res.RequestID)
	assert.Equal(t, 4, res.Attempts)
	assert.Equal(t, &provider.Usage{InputTokens: 25, InputTextTokens: 20, InputImageTokens: 5, OutputTokens: 1088, TotalTokens: 1113}, res.Usage)
	assert.True(t, res.Cost.Known)
	assert.True(t, res.Cost.Estimated, "one estimated part makes the sum an estimate")
	assert.InDelta(t, 0.04, res.Cost.USD, 1e-9)
}

func TestJoinResultsPartialFailure(t *testing.T) {
	rateLimited := &Error{Provider: "openai", Class: ClassRateLimited, StatusCode: 429}
	timedOut := &Error{Provider: "openai", Class: ClassTimeout}
	first := &Result{Images: testImages("a"), Usage: &provider.Usage{OutputTokens: 272, TotalTokens: 272}}

	res, err := joinResults(4,
		[]*Result{first, nil, {Images: testImages("c"), Usage: &provider.Usage{OutputTokens: 272, TotalTokens: 272}}, nil},
		[]error{nil, rateLimited, nil, timedOut})

	require.NotNil(t, res, "successful images are returned with the error")
	assert.Equal(t, []string{"a", "c"}, imageNames(res.Images))
	assert.Equal(t, int64(544), res.Usage.OutputTokens)
	assert.Len(t, first.Images, 1, "joining must not change a call's result")
	assert.Equal(t, int64(272), first.Usage.OutputTokens, "joining must not change a call's usage")

	var partial *PartialError
	require.True(t, errors.As(err, &partial))
	assert.Equal(t, 4, partial.Requested)
	assert.Equal(t, 2, partial.Returned)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "returned 2 of 4 images")
}

func TestJoinResultsMissingUsage(t *testing.T) {
	res, err := joinResults(3, []*Result{
		{Images: testImages("a"), Usage: &provider.Usage{OutputTokens: 272}},
		{Images: testImages("b")},
		{Images: testImages("c"), Usage: &provider.Usage{OutputTokens: 272}},
	}, make([]error, 3))

	require.NoError(t, err)
	assert.Nil(t, res.Usage, "a partial sum would undercount the cost")
}

func TestJoinResultsAllFail(t *testing.T) {
	only := &Error{Class: ClassServer}
	res, err := joinResults(2, []*Result{nil}, []error{only})
	assert.Nil(t, res)
	assert.Same(t, only, err, "a single failure is returned unchanged")

	res, err = joinResults(2, []*Result{nil, nil}, []error{&Error{Class: ClassServer}, &Error{Class: ClassQuotaExceeded}})
	assert.Nil(t, res)
	assert.ErrorIs(t, err, ErrServer)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	var partial *PartialError
	assert.False(t, errors.As(err, &partial))
}
