package imagegentest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
)

var (
	_ provider.Provider = (*imagegentest.FakeProvider)(nil)
	_ provider.Editor   = (*imagegentest.FakeProvider)(nil)
)

func TestFakeGenerate(t *testing.T) {
	tests := []struct {
		name       string
		req        provider.Request
		wantType   string
		wantFormat string
		wantSize   string
		wantBounds image.Rectangle
		wantImages int
	}{
		{"defaults", provider.Request{Prompt: "a cat", Model: "gpt-image-1"}, "image/png", "png", "1024x1024", image.Rect(0, 0, 1024, 1024), 1},
		{"jpeg portrait", provider.Request{Prompt: "a cat", Size: "1024x1536", OutputFormat: "jpeg", Quality: "low"}, "image/jpeg", "jpeg", "1024x1536", image.Rect(0, 0, 1024, 1536), 1},
		{"several", provider.Request{Prompt: "a cat", N: 3, Size: "32x16"}, "image/png", "png", "32x16", image.Rect(0, 0, 32, 16), 3},
		{"webp as png", provider.Request{Prompt: "a cat", OutputFormat: "webp", Size: "auto"}, "image/png", "png", "1024x1024", image.Rect(0, 0, 1024, 1024), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := imagegentest.NewFakeProvider("fake")

			resp, err := fake.Generate(context.Background(), &tt.req)
			require.NoError(t, err)

			require.Len(t, resp.Images, tt.wantImages)
			for _, img := range resp.Images {
				assert.Equal(t, tt.wantType, img.MediaType)
				decoded, format, err := image.Decode(bytes.NewReader(img.Data))
				require.NoError(t, err)
				assert.Equal(t, tt.wantFormat, format)
				assert.Equal(t, tt.wantBounds, decoded.Bounds())
			}
			assert.Equal(t, tt.wantSize, resp.Size)
			assert.Equal(t, tt.wantFormat, resp.OutputFormat)
			assert.Equal(t, tt.req.Model, resp.Model)
			assert.Equal(t, "req_fake_1", resp.RequestID)
			require.NotNil(t, resp.Usage)
			w, h := tt.wantBounds.Dx(), tt.wantBounds.Dy()
			quality := tt.req.Quality
			if quality == "" {
				quality = "medium"
			}
			assert.Equal(t, int64(tt.wantImages)*imagegentest.OutputTokens(quality, w, h), resp.Usage.OutputTokens)
			assert.Equal(t, imagegentest.TextTokens(tt.req.Prompt), resp.Usage.InputTextTokens)
			assert.Equal(t, resp.Usage.InputTokens+resp.Usage.OutputTokens, resp.Usage.TotalTokens)
			assert.Equal(t, 1, fake.Calls())
		})
	}
}

func TestFakeImagesMatchServer(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	fake := imagegentest.NewFakeProvider("fake")

	fromServer, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt: "a lighthouse", Model: "gpt-image-1", Size: "256x128",
	})
	require.NoError(t, err)
	fromFake, err := fake.Generate(context.Background(), &provider.Request{
		Prompt: "a lighthouse", Model: "gpt-image-1", Size: "256x128",
	})
	require.NoError(t, err)

	serverBytes, _, _ := decodeB64(t, fromServer.Data[0].B64JSON)
	assert.Equal(t, serverBytes, fromFake.Images[0].Data)
}

func TestFakeTinyImages(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages())

	resp, err := fake.Generate(context.Background(), &provider.Request{Prompt: "x", N: 2})

	require.NoError(t, err)
	require.Len(t, resp.Images, 2)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(resp.Images[1].Data))
	require.NoError(t, err)
	assert.Equal(t, "png", format)
	assert.Equal(t, 1, cfg.Width)
	assert.Equal(t, 1, cfg.Height)
	assert.Equal(t, "image/png", resp.Images[0].MediaType)
	assert.Equal(t, "1024x1024", resp.Size, "the requested size is still reported")
}

func TestFakeEnqueue(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	scripted := &provider.Response{Model: "scripted"}
	boom := errors.New("boom")
	fake.Enqueue(imagegentest.FakeResult{Err: boom}, imagegentest.FakeResult{Response: scripted})
	req := &provider.Request{Prompt: "x", Size: "8x8"}
	require.Equal(t, 2, fake.Pending())

	_, err := fake.Generate(context.Background(), req)
	assert.ErrorIs(t, err, boom)
	resp, err := fake.Generate(context.Background(), req)
	require.NoError(t, err)
	assert.Same(t, scripted, resp)
	resp, err = fake.Generate(context.Background(), req)
	require.NoError(t, err)
	assert.Len(t, resp.Images, 1)

	assert.Equal(t, 3, fake.Calls())
	assert.Zero(t, fake.Pending())
}

func TestFakeCanceledContext(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResult{Err: errors.New("scripted")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := fake.Generate(ctx, &provider.Request{Prompt: "x"})

	assert.ErrorIs(t, err, imagegen.ErrCanceled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, fake.Pending(), "a call that cannot be sent takes no scripted result")
}

func TestFakeDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithFakeDelay(2*time.Second))
		fake.Enqueue(imagegentest.FakeResult{Delay: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		start := time.Now()
		_, err := fake.Generate(ctx, &provider.Request{Prompt: "x", Model: "m"})
		assert.Equal(t, 10*time.Second, time.Since(start), "the scripted delay ends with ctx")
		var e *imagegen.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, imagegen.ClassTimeout, e.Class)
		assert.Equal(t, "fake", e.Provider)
		assert.Equal(t, "m", e.Model)

		start = time.Now()
		_, err = fake.Generate(context.Background(), &provider.Request{Prompt: "x"})
		require.NoError(t, err)
		assert.Equal(t, 2*time.Second, time.Since(start), "the default delay applies")
	})
}

func TestFakeFunc(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(),
		imagegentest.WithFakeFunc(func(_ context.Context, call imagegentest.FakeCall) *imagegentest.FakeResult {
			if call.Number%2 == 0 {
				return &imagegentest.FakeResult{Err: imagegentest.FakeError(503, "server_error", "", "overloaded", nil)}
			}
			return nil
		}))

	_, err1 := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})
	_, err2 := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})
	fake.SetFunc(nil)
	_, err3 := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})
	_, err4 := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})

	assert.NoError(t, err1)
	assert.ErrorIs(t, err2, imagegen.ErrServer)
	assert.NoError(t, err3)
	assert.NoError(t, err4)
}

func TestFakeEdit(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	photo := encodeTestPNG(t, 1024, 1024)
	req := &provider.EditRequest{
		Request: provider.Request{Prompt: "add a hat", Size: "64x64"},
		Images: []provider.File{
			{Name: "a.png", MediaType: "image/png", Data: photo},
			{Name: "b.webp", MediaType: "image/webp", Data: []byte("webp bytes")},
		},
	}

	resp, err := fake.Edit(context.Background(), req)

	require.NoError(t, err)
	assert.Len(t, resp.Images, 1)
	assert.Equal(t, 2*imagegentest.ImageTokens(1024, 1024), resp.Usage.InputImageTokens)
	edits := fake.EditRequests()
	require.Len(t, edits, 1)
	assert.Equal(t, "a.png", edits[0].Images[0].Name)
	assert.Equal(t, "add a hat", fake.Requests()[0].Prompt)
}

func TestFakeEditRejects(t *testing.T) {
	photo := []provider.File{{Name: "a.png", MediaType: "image/png", Data: encodeTestPNG(t, 4, 4)}}
	tests := []struct {
		name      string
		images    []provider.File
		mask      *provider.File
		wantCode  string
		wantParam string
	}{
		{"no images", nil, nil, imagegentest.CodeMissingRequiredParam, "image"},
		{"octet-stream", []provider.File{{Name: "a", MediaType: "application/octet-stream", Data: []byte{1}}}, nil, imagegentest.CodeUnsupportedFileMimetype, "image[0]"},
		{"not a png", []provider.File{{Name: "a.png", MediaType: "image/png", Data: []byte("nope")}}, nil, "invalid_image_file", "image[0]"},
		{"jpeg mask", photo, &provider.File{Name: "m.jpg", MediaType: "image/jpeg", Data: encodeTestJPEG(t, 4, 4)}, imagegentest.CodeUnsupportedFileMimetype, "mask"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := imagegentest.NewFakeProvider("fake")

			_, err := fake.Edit(context.Background(), &provider.EditRequest{
				Request: provider.Request{Prompt: "x"}, Images: tt.images, Mask: tt.mask,
			})

			var e *imagegen.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, imagegen.ClassInvalidRequest, e.Class)
			assert.Equal(t, http.StatusBadRequest, e.StatusCode)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantParam, e.Param)
		})
	}
}

func TestFakeRejectsBadInput(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")

	_, errNil := fake.Generate(context.Background(), nil)
	_, errEditNil := fake.Edit(context.Background(), nil)
	_, errSize := fake.Generate(context.Background(), &provider.Request{Prompt: "x", Size: "big"})

	assert.ErrorContains(t, errNil, "nil request")
	assert.ErrorContains(t, errEditNil, "nil request")
	assert.ErrorIs(t, errSize, imagegen.ErrInvalidRequest)
}

func TestFakeRecording(t *testing.T) {
	recorded := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages())
	silent := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())
	req := &provider.Request{Prompt: "x", Extra: map[string]any{"k": "v"}}

	for range 3 {
		_, err := recorded.Generate(context.Background(), req)
		require.NoError(t, err)
		_, err = silent.Generate(context.Background(), req)
		require.NoError(t, err)
	}

	require.Len(t, recorded.Requests(), 3)
	assert.Equal(t, "v", recorded.Requests()[2].Extra["k"])
	assert.Empty(t, silent.Requests())
	assert.Equal(t, 3, silent.Calls())
}

func TestFakeRateLimit(t *testing.T) {
	rl := provider.RateLimit{Requests: provider.Quota{Known: true, Limit: 5, Remaining: 4, Reset: 12 * time.Second}}
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithFakeRateLimit(rl))

	resp, err := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})

	require.NoError(t, err)
	assert.Equal(t, rl, resp.RateLimit)
}

func TestFakeConcurrentUse(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages())
	const workers, perWorker = 8, 50
	for range 10 {
		fake.Enqueue(imagegentest.FakeResult{Err: errors.New("scripted")})
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for range workers {
		wg.Go(func() {
			for range perWorker {
				_, err := fake.Generate(context.Background(), &provider.Request{Prompt: "x"})
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
				}
				_ = fake.Requests()
			}
		})
	}
	wg.Wait()

	assert.Equal(t, 10, failures)
	assert.Equal(t, workers*perWorker, fake.Calls())
	assert.Len(t, fake.Requests(), workers*perWorker)
}

func TestFakeResultFrom(t *testing.T) {
	tests := []struct {
		name           string
		resp           imagegentest.Response
		wantClass      imagegen.Class
		wantStatus     int
		wantCode       string
		wantRetryAfter time.Duration
	}{
		{"rate limited", imagegentest.RateLimited(3 * time.Second), imagegen.ClassRateLimited, 429, "rate_limit_exceeded", 3 * time.Second},
		{"insufficient quota", imagegentest.InsufficientQuota(), imagegen.ClassQuotaExceeded, 429, "insufficient_quota", 0},
		{"billing hard limit", imagegentest.BillingHardLimit(), imagegen.ClassQuotaExceeded, 400, "billing_hard_limit_reached", 0},
		{"not verified", imagegentest.OrganizationNotVerified("gpt-image-2"), imagegen.ClassNotEntitled, 403, "", 0},
		{"invalid key", imagegentest.InvalidAPIKey(), imagegen.ClassAuthentication, 401, "invalid_api_key", 0},
		{"model not found", imagegentest.ModelNotFound("m"), imagegen.ClassNotFound, 404, "model_not_found", 0},
		{"moderation", imagegentest.ModerationBlocked(), imagegen.ClassContentRejected, 400, "moderation_blocked", 0},
		{"content policy", imagegentest.ContentPolicyViolation(), imagegen.ClassContentRejected, 400, "content_policy_violation", 0},
		{"invalid parameter", imagegentest.InvalidParameter("n", "invalid_value"), imagegen.ClassInvalidRequest, 400, "invalid_value", 0},
		{"server error", imagegentest.ServerError(502), imagegen.ClassServer, 502, "", 0},
		{"overloaded", imagegentest.Overloaded(), imagegen.ClassServer, 503, "", 0},
		{"html proxy", imagegentest.HTMLProxyError(502), imagegen.ClassServer, 502, "", 0},
		{"raw json body", imagegentest.Response{Status: 429, Body: `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`}, imagegen.ClassRateLimited, 429, "rate_limit_exceeded", 0},
		{"empty data", imagegentest.EmptyData(), imagegen.ClassOutcomeUnknown, 200, "", 0},
		{"bad base64", imagegentest.BadBase64(), imagegen.ClassOutcomeUnknown, 200, "", 0},
		{"drop", imagegentest.DropConnection(), imagegen.ClassOutcomeUnknown, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := imagegentest.FakeResultFrom(tt.resp)

			var e *imagegen.Error
			require.ErrorAs(t, result.Err, &e)
			assert.Equal(t, tt.wantClass, e.Class)
			assert.Equal(t, tt.wantStatus, e.StatusCode)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantRetryAfter, e.RetryAfter)
			assert.NotContains(t, e.Error(), imagegentest.MaskedAPIKey)
		})
	}
}

func TestFakeResultFromKeepsDelay(t *testing.T) {
	slow := imagegentest.FakeResultFrom(imagegentest.Slow(time.Second))
	timeout := imagegentest.FakeResultFrom(imagegentest.Timeout(time.Minute))
	dropped := imagegentest.FakeResultFrom(imagegentest.DropConnection())

	assert.Equal(t, imagegentest.FakeResult{Delay: time.Second}, slow)
	assert.Equal(t, time.Minute, timeout.Delay)
	assert.ErrorIs(t, timeout.Err, imagegen.ErrTimeout, "504 is a timeout")
	assert.ErrorIs(t, dropped.Err, io.EOF)
}

func TestFakeErrorClassifies(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After-Ms", "2500")
	h.Set("X-Request-Id", "req_abc")

	err := imagegentest.FakeError(429, "requests", "rate_limit_exceeded", "Rate limit reached", h)

	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.ErrorIs(t, err, imagegen.ErrRateLimited)
	assert.Equal(t, 2500*time.Millisecond, e.RetryAfter)
	assert.Equal(t, "req_abc", e.RequestID)
}

func BenchmarkFakeGenerate(b *testing.B) {
	benchmarks := []struct {
		name string
		opts []imagegentest.FakeOption
	}{
		{"tiny", []imagegentest.FakeOption{imagegentest.WithTinyImages(), imagegentest.WithoutRecording()}},
		{"cached_1024", []imagegentest.FakeOption{imagegentest.WithoutRecording()}},
		{"tiny_recorded", []imagegentest.FakeOption{imagegentest.WithTinyImages()}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			fake := imagegentest.NewFakeProvider("fake", bm.opts...)
			req := &provider.Request{Prompt: "a benchmark", Model: "gpt-image-1"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fake.Generate(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFakeGenerateParallel(b *testing.B) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &provider.Request{Prompt: "a benchmark", Model: "gpt-image-1"}
		for pb.Next() {
			if _, err := fake.Generate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
