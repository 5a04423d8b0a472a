package imagegentest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
)

func TestServerGenerate(t *testing.T) {
	tests := []struct {
		name        string
		params      openai.ImageGenerateParams
		wantFormat  string
		wantWidth   int
		wantHeight  int
		wantQuality string
		wantTokens  int64 // output tokens per image
	}{
		{
			name:        "defaults",
			params:      openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-1"},
			wantFormat:  "png",
			wantWidth:   1024,
			wantHeight:  1024,
			wantQuality: "medium",
			wantTokens:  1056,
		},
		{
			name: "jpeg landscape low",
			params: openai.ImageGenerateParams{
				Prompt: "a red fox", Model: "gpt-image-1", Size: "1536x1024", Quality: "low", OutputFormat: "jpeg",
				OutputCompression: openai.Int(80),
			},
			wantFormat:  "jpeg",
			wantWidth:   1536,
			wantHeight:  1024,
			wantQuality: "low",
			wantTokens:  400,
		},
		{
			name:        "portrait high",
			params:      openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-2", Size: "1024x1536", Quality: "high"},
			wantFormat:  "png",
			wantWidth:   1024,
			wantHeight:  1536,
			wantQuality: "high",
			wantTokens:  6240,
		},
		{
			name:        "auto size and quality",
			params:      openai.ImageGenerateParams{Prompt: "a red fox", Size: "auto", Quality: "auto"},
			wantFormat:  "png",
			wantWidth:   1024,
			wantHeight:  1024,
			wantQuality: "medium",
			wantTokens:  1056,
		},
		{
			name:        "webp answered as png",
			params:      openai.ImageGenerateParams{Prompt: "a red fox", OutputFormat: "webp"},
			wantFormat:  "png",
			wantWidth:   1024,
			wantHeight:  1024,
			wantQuality: "medium",
			wantTokens:  1056,
		},
		{
			name:        "custom size scales tokens",
			params:      openai.ImageGenerateParams{Prompt: "a red fox", Size: "512x512", Quality: "high"},
			wantFormat:  "png",
			wantWidth:   512,
			wantHeight:  512,
			wantQuality: "high",
			wantTokens:  1040,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			client := newOpenAIClient(srv)

			var httpResp *http.Response
			resp, err := client.Images.Generate(context.Background(), tt.params, option.WithResponseInto(&httpResp))
			require.NoError(t, err)

			require.Len(t, resp.Data, 1)
			_, format, bounds := decodeB64(t, resp.Data[0].B64JSON)
			assert.Equal(t, tt.wantFormat, format)
			assert.Equal(t, tt.wantWidth, bounds.Dx())
			assert.Equal(t, tt.wantHeight, bounds.Dy())
			assert.Equal(t, tt.wantFormat, string(resp.OutputFormat))
			assert.Equal(t, tt.wantQuality, string(resp.Quality))
			assert.Equal(t, "opaque", string(resp.Background))
			assert.Equal(t, imagegentest.OutputTokens(tt.wantQuality, tt.wantWidth, tt.wantHeight), resp.Usage.OutputTokens)
			assert.Equal(t, tt.wantTokens, resp.Usage.OutputTokens)
			assert.Equal(t, imagegentest.TextTokens("a red fox"), resp.Usage.InputTokensDetails.TextTokens)
			assert.Equal(t, resp.Usage.InputTokens+resp.Usage.OutputTokens, resp.Usage.TotalTokens)
			assert.NotZero(t, resp.Created)
			assert.Regexp(t, requestIDPattern, httpResp.Header.Get("X-Request-Id"))
			assert.Equal(t, "application/json", httpResp.Header.Get("Content-Type"))
		})
	}
}

func TestServerGenerateSeveralImages(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)

	resp, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt: "three cats", N: openai.Int(3), Quality: "low",
	})
	require.NoError(t, err)

	require.Len(t, resp.Data, 3)
	seen := map[string]bool{}
	for _, d := range resp.Data {
		seen[d.B64JSON] = true
	}
	assert.Len(t, seen, 3, "each image index renders different bytes")
	assert.Equal(t, 3*imagegentest.OutputTokens("low", 1024, 1024), resp.Usage.OutputTokens)
	assert.Equal(t, 3, srv.Stats().Images)
}

func TestServerImagesDeterministic(t *testing.T) {
	first := newTestServer(t)
	second := newTestServer(t)
	params := openai.ImageGenerateParams{Prompt: "a lighthouse", Model: "gpt-image-1", Size: "1024x1536"}

	firstClient, secondClient := newOpenAIClient(first), newOpenAIClient(second)

	a, err := firstClient.Images.Generate(context.Background(), params)
	require.NoError(t, err)
	b, err := secondClient.Images.Generate(context.Background(), params)
	require.NoError(t, err)
	params.Prompt = "a windmill"
	c, err := firstClient.Images.Generate(context.Background(), params)
	require.NoError(t, err)

	assert.Equal(t, a.Data[0].B64JSON, b.Data[0].B64JSON, "same inputs on two servers")
	assert.NotEqual(t, a.Data[0].B64JSON, c.Data[0].B64JSON, "different prompts")
}

func TestServerTransparentBackground(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	resp, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt: "a sticker", Background: "transparent", Size: "64x64",
	})
	require.NoError(t, err)

	data, _, _ := decodeB64(t, resp.Data[0].B64JSON)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	_, _, _, alpha := img.At(0, 0).RGBA()
	assert.Zero(t, alpha, "top-left block is transparent")
	_, _, _, alpha = img.At(63, 63).RGBA()
	assert.Equal(t, uint32(0xffff), alpha, "bottom-right block is opaque")
	assert.Equal(t, "transparent", string(resp.Background))
}

func TestServerValidation(t *testing.T) {
	tests := []struct {
		name      string
		params    openai.ImageGenerateParams
		wantParam string
		wantCode  string
	}{
		{"missing prompt", openai.ImageGenerateParams{Model: "gpt-image-1"}, "prompt", imagegentest.CodeMissingRequiredParam},
		{"n above 10", openai.ImageGenerateParams{Prompt: "x", N: openai.Int(11)}, "n", imagegentest.CodeInvalidValue},
		{"n zero", openai.ImageGenerateParams{Prompt: "x", N: openai.Int(0)}, "n", imagegentest.CodeInvalidValue},
		{"response_format with gpt image", openai.ImageGenerateParams{Prompt: "x", Model: "gpt-image-1", ResponseFormat: "b64_json"}, "response_format", imagegentest.CodeUnknownParameter},
		{"bad size", openai.ImageGenerateParams{Prompt: "x", Size: "huge"}, "size", imagegentest.CodeInvalidValue},
		{"size too large", openai.ImageGenerateParams{Prompt: "x", Size: "8192x8192"}, "size", imagegentest.CodeInvalidValue},
		{"bad quality", openai.ImageGenerateParams{Prompt: "x", Quality: "ultra"}, "quality", imagegentest.CodeInvalidValue},
		{"bad output format", openai.ImageGenerateParams{Prompt: "x", OutputFormat: "bmp"}, "output_format", imagegentest.CodeInvalidValue},
		{"transparent jpeg", openai.ImageGenerateParams{Prompt: "x", Background: "transparent", OutputFormat: "jpeg"}, "background", imagegentest.CodeInvalidValue},
		{"compression above 100", openai.ImageGenerateParams{Prompt: "x", OutputCompression: openai.Int(101)}, "output_compression", imagegentest.CodeInvalidValue},
		{"dall-e-3 with n 2", openai.ImageGenerateParams{Prompt: "x", Model: "dall-e-3", N: openai.Int(2)}, "n", imagegentest.CodeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)

			client := newOpenAIClient(srv)
			_, err := client.Images.Generate(context.Background(), tt.params)

			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
			assert.Equal(t, imagegentest.TypeInvalidRequest, apiErr.Type)
			assert.Equal(t, tt.wantParam, apiErr.Param)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.NotEmpty(t, apiErr.Message)
			assert.Regexp(t, requestIDPattern, apiErr.Response.Header.Get("X-Request-Id"))
			assert.Equal(t, "application/json", apiErr.Response.Header.Get("Content-Type"))
			assert.Equal(t, 1, srv.Stats().Failed)
		})
	}
}

func TestServerRawBodies(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{
			name:       "invalid JSON",
			body:       `{"prompt":`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `"type":"invalid_request_error","param":null,"code":null`,
		},
		{
			name:       "empty body",
			body:       ``,
			wantStatus: http.StatusBadRequest,
			wantBody:   `"param":"prompt","code":"missing_required_parameter"`,
		},
		{
			name:       "n as a string",
			body:       `{"prompt":"x","n":"2"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `"param":"n","code":"invalid_type"`,
		},
		{
			name:       "unknown fields accepted",
			body:       `{"prompt":"x","future_field":{"a":1},"partial_images":0}`,
			wantStatus: http.StatusOK,
			wantBody:   `"b64_json":`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)

			status, header, body := postRaw(t, srv, "/images/generations", "application/json", tt.body)

			assert.Equal(t, tt.wantStatus, status)
			assert.Contains(t, body, tt.wantBody)
			assert.Regexp(t, requestIDPattern, header.Get("X-Request-Id"))
		})
	}
}

func TestServerUnknownRoutes(t *testing.T) {
	srv := newTestServer(t)

	status, _, body := postRaw(t, srv, "/chat/completions", "application/json", `{}`)
	assert.Equal(t, http.StatusNotFound, status)
	assert.JSONEq(t, `{"error":{"message":"Invalid URL (POST /v1/chat/completions)","type":"invalid_request_error","param":null,"code":null}}`, body)

	resp, err := srv.Client().Get(srv.URL + "/images/generations")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, 2, srv.RequestCount())
}

func TestServerRecordsRequests(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)

	var httpResp *http.Response
	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt:           "a boat",
		Model:            "gpt-image-1",
		N:                openai.Int(2),
		Size:             "1024x1024",
		SafetyIdentifier: openai.String("user-hash"),
	}, option.WithJSONSet("extra_field", "kept"), option.WithResponseInto(&httpResp))
	require.NoError(t, err)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	rec := reqs[0]
	assert.Equal(t, http.MethodPost, rec.Method)
	assert.Equal(t, "/v1/images/generations", rec.Path)
	assert.Equal(t, "Bearer test", rec.Header.Get("Authorization"))
	assert.Equal(t, "a boat", rec.Body["prompt"])
	assert.Equal(t, "gpt-image-1", rec.Body["model"])
	assert.InDelta(t, 2, rec.Body["n"], 0)
	assert.Equal(t, "user-hash", rec.Body["safety_identifier"])
	assert.Equal(t, "kept", rec.Body["extra_field"])
	assert.Equal(t, httpResp.Header.Get("X-Request-Id"), rec.RequestID)
	assert.False(t, rec.Time.IsZero())
	assert.Equal(t, 1, srv.RequestCount())
}

func TestServerURLResponses(t *testing.T) {
	tests := []struct {
		name   string
		opts   []imagegentest.Option
		params openai.ImageGenerateParams
	}{
		{"option", []imagegentest.Option{imagegentest.WithURLResponses()}, openai.ImageGenerateParams{Prompt: "a bird", OutputFormat: "jpeg"}},
		{"dall-e default", nil, openai.ImageGenerateParams{Prompt: "a bird", Model: "dall-e-2"}},
		{"dall-e response_format", nil, openai.ImageGenerateParams{Prompt: "a bird", Model: "dall-e-3", ResponseFormat: "url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.opts...)

			client := newOpenAIClient(srv)
			resp, err := client.Images.Generate(context.Background(), tt.params)
			require.NoError(t, err)
			require.Len(t, resp.Data, 1)
			assert.Empty(t, resp.Data[0].B64JSON)
			require.True(t, strings.HasPrefix(resp.Data[0].URL, srv.RootURL()+"/files/"), resp.Data[0].URL)

			dl, err := srv.Client().Get(resp.Data[0].URL)
			require.NoError(t, err)
			defer dl.Body.Close()
			require.Equal(t, http.StatusOK, dl.StatusCode)
			img, format, err := image.Decode(dl.Body)
			require.NoError(t, err)
			assert.Equal(t, "image/"+format, dl.Header.Get("Content-Type"))
			assert.Regexp(t, requestIDPattern, dl.Header.Get("X-Request-Id"))
			assert.Equal(t, image.Rect(0, 0, 1024, 1024), img.Bounds())
			assert.Equal(t, 1, srv.Stats().Downloads)
			assert.Equal(t, 1, srv.RequestCount(), "downloads are not recorded as API requests")
		})
	}
}

func TestServerDallE3RevisedPrompt(t *testing.T) {
	srv := newTestServer(t)

	client := newOpenAIClient(srv)
	resp, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt: "a bird", Model: "dall-e-3", ResponseFormat: "b64_json",
	})

	require.NoError(t, err)
	assert.Contains(t, resp.Data[0].RevisedPrompt, "a bird")
	assert.NotEmpty(t, resp.Data[0].B64JSON)
	assert.Zero(t, resp.Usage.TotalTokens, "DALL·E answers carry no usage")
}

func TestServerUnknownFile(t *testing.T) {
	srv := newTestServer(t)

	resp, err := srv.Client().Get(srv.RootURL() + "/files/img-missing.png")

	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// encodeTestPNG returns a PNG of the given size.
func encodeTestPNG(t *testing.T, width, height int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func encodeTestJPEG(t *testing.T, width, height int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, width, height)), nil))
	return buf.Bytes()
}

func TestServerEdit(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	photo := encodeTestPNG(t, 1024, 1024)
	logo := encodeTestJPEG(t, 512, 256)
	mask := encodeTestPNG(t, 1024, 1024)

	resp, err := client.Images.Edit(context.Background(), openai.ImageEditParams{
		Image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
			openai.File(bytes.NewReader(photo), "photo.png", "image/png"),
			openai.File(bytes.NewReader(logo), "logo.jpg", "image/jpeg"),
		}},
		Mask:    openai.File(bytes.NewReader(mask), "mask.png", "image/png"),
		Prompt:  "put the logo on the shirt",
		Model:   "gpt-image-1",
		N:       openai.Int(2),
		Quality: "low",
	})
	require.NoError(t, err)

	require.Len(t, resp.Data, 2)
	_, format, bounds := decodeB64(t, resp.Data[0].B64JSON)
	assert.Equal(t, "png", format)
	assert.Equal(t, image.Rect(0, 0, 1024, 1024), bounds)
	wantImageTokens := imagegentest.ImageTokens(1024, 1024) + imagegentest.ImageTokens(512, 256)
	assert.Equal(t, wantImageTokens, resp.Usage.InputTokensDetails.ImageTokens)
	assert.Equal(t, wantImageTokens+resp.Usage.InputTokensDetails.TextTokens, resp.Usage.InputTokens)
	assert.Equal(t, 2*imagegentest.OutputTokens("low", 1024, 1024), resp.Usage.OutputTokens)

	rec := srv.Requests()[0]
	assert.Equal(t, "/v1/images/edits", rec.Path)
	assert.Equal(t, "put the logo on the shirt", rec.Body["prompt"])
	assert.Equal(t, "2", rec.Body["n"], "multipart values are strings")
	require.Len(t, rec.Files, 3)
	assert.Equal(t, imagegentest.RecordedFile{Field: "image[]", Filename: "photo.png", ContentType: "image/png", Data: photo}, rec.Files[0])
	assert.Equal(t, "image/jpeg", rec.Files[1].ContentType)
	assert.Equal(t, "mask", rec.Files[2].Field)
}

func TestServerEditRejects(t *testing.T) {
	pngData := encodeTestPNG(t, 8, 8)
	tests := []struct {
		name        string
		image       openai.ImageEditParamsImageUnion
		wantParam   string
		wantCode    string
		wantMessage string
	}{
		{
			name:        "bare reader is octet-stream",
			image:       openai.ImageEditParamsImageUnion{OfFile: bytes.NewReader(pngData)},
			wantParam:   "image",
			wantCode:    imagegentest.CodeUnsupportedFileMimetype,
			wantMessage: "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
		},
		{
			name: "second file of an array",
			image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
				openai.File(bytes.NewReader(pngData), "a.png", "image/png"),
				openai.File(bytes.NewReader(pngData), "b.gif", "image/gif"),
			}},
			wantParam: "image[1]",
			wantCode:  imagegentest.CodeUnsupportedFileMimetype,
		},
		{
			name:      "undecodable png",
			image:     openai.ImageEditParamsImageUnion{OfFile: openai.File(strings.NewReader("not a png"), "a.png", "image/png")},
			wantParam: "image",
			wantCode:  "invalid_image_file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)

			client := newOpenAIClient(srv)
			_, err := client.Images.Edit(context.Background(), openai.ImageEditParams{
				Image: tt.image, Prompt: "edit",
			})

			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
			assert.Equal(t, imagegentest.TypeInvalidRequest, apiErr.Type)
			assert.Equal(t, tt.wantParam, apiErr.Param)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			if tt.wantMessage != "" {
				assert.Equal(t, tt.wantMessage, apiErr.Message)
			}
		})
	}
}

func TestServerEditWithoutImage(t *testing.T) {
	srv := newTestServer(t)
	body := "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nedit\r\n--b--\r\n"

	status, _, resp := postRaw(t, srv, "/images/edits", "multipart/form-data; boundary=b", body)

	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, resp, `"param":"image","code":"missing_required_parameter"`)
}

func TestServerAPIKey(t *testing.T) {
	srv := newTestServer(t, imagegentest.WithAPIKey("sk-right-key-0123456789"))
	params := openai.ImageGenerateParams{Prompt: "x", Size: "16x16"}

	wrongClient := newOpenAIClient(srv, option.WithAPIKey("sk-wrong-key-9876543210"))
	_, err := wrongClient.Images.Generate(context.Background(), params)
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, imagegentest.CodeInvalidAPIKey, apiErr.Code)
	assert.Contains(t, apiErr.Message, "Incorrect API key provided: sk-wrong***********3210.")
	assert.NotContains(t, imagegen.Redact(apiErr.Message), "sk-wrong")

	rightClient := newOpenAIClient(srv, option.WithAPIKey("sk-right-key-0123456789"))
	_, err = rightClient.Images.Generate(context.Background(), params)
	assert.NoError(t, err)
}

func TestServerAzureRoutes(t *testing.T) {
	srv := newTestServer(t, imagegentest.WithAPIKey("azure-key"))
	url := srv.RootURL() + "/openai/deployments/my-image-deployment/images/generations?api-version=2025-04-01-preview"
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url,
		strings.NewReader(`{"prompt":"a harbour","model":"my-image-deployment","size":"32x32"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Api-Key", "azure-key")

	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out openai.ImagesResponse
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, out.UnmarshalJSON(data))

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, out.Data, 1)
	assert.Equal(t, "32x32", string(out.Size))
	rec := srv.Requests()[0]
	assert.Equal(t, "/openai/deployments/my-image-deployment/images/generations", rec.Path)
	assert.Equal(t, "2025-04-01-preview", rec.Query.Get("api-version"))
}

func TestServerConcurrentUse(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	const workers, perWorker = 8, 6
	srv.Enqueue(imagegentest.ServerError(500), imagegentest.ServerError(502), imagegentest.RateLimited(0))

	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
					Prompt: "worker prompt", Size: "16x16", N: openai.Int(int64(1 + (w+i)%2)),
				})
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
				}
				_ = srv.Stats()
				_ = srv.Requests()
			}
		})
	}
	wg.Wait()

	stats := srv.Stats()
	assert.Equal(t, 3, failures)
	assert.Equal(t, workers*perWorker, srv.RequestCount())
	assert.Equal(t, workers*perWorker, stats.Requests)
	assert.Equal(t, workers*perWorker-3, stats.Succeeded)
	assert.Equal(t, 3, stats.Failed)
	assert.Equal(t, 1, stats.RateLimited)
	assert.Zero(t, srv.Pending())
}

func TestServerDelayEndsWhenClientLeaves(t *testing.T) {
	srv := newTestServer(t)
	arrived := make(chan struct{})
	srv.SetHandler(func(*imagegentest.RecordedRequest) *imagegentest.Response {
		close(arrived)
		return &imagegentest.Response{Delay: 24 * 60 * 60 * 1e9} // a day
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)

	go func() {
		client := newOpenAIClient(srv)
		_, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "slow"})
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done
	srv.Close() // waits for the handler, which must have returned early

	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, srv.Stats().Abandoned)
	assert.Zero(t, srv.Stats().Succeeded)
}

func TestServerCloseEndsDelay(t *testing.T) {
	srv := imagegentest.NewServer()
	arrived := make(chan struct{})
	srv.SetHandler(func(*imagegentest.RecordedRequest) *imagegentest.Response {
		close(arrived)
		return new(imagegentest.Slow(24 * 60 * 60 * 1e9))
	})
	done := make(chan error, 1)

	go func() {
		client := newOpenAIClient(srv)
		_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "slow"})
		done <- err
	}()
	<-arrived
	srv.Close()

	assert.Error(t, <-done, "the client gets no answer")
	assert.Equal(t, 1, srv.Stats().Abandoned)
}

func TestServerDropConnection(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.DropConnection())

	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x", Size: "16x16"})
	require.Error(t, err)
	var apiErr *openai.Error
	assert.False(t, errors.As(err, &apiErr), "a dropped connection is a transport error, got %v", err)
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "got %v", err)
	assert.Equal(t, imagegen.ClassOutcomeUnknown, imagegen.NewTransportError("openai", "", err, true).Class)

	_, err = client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x", Size: "16x16"})
	assert.NoError(t, err, "normal answers resume after the script")
	assert.Equal(t, 1, srv.Stats().Dropped)
	assert.Equal(t, 2, srv.RequestCount())
}

func TestServerUnstarted(t *testing.T) {
	srv := imagegentest.NewUnstartedServer()
	assert.Empty(t, srv.URL)
	srv.Enqueue(imagegentest.ServerError(503))
	srv.Start()
	t.Cleanup(srv.Close)

	assert.True(t, strings.HasSuffix(srv.URL, "/v1"), srv.URL)
	client := newOpenAIClient(srv)
	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
}

func BenchmarkServerGenerate(b *testing.B) {
	for _, size := range []string{"64x64", "1024x1024"} {
		b.Run(size, func(b *testing.B) {
			srv := newTestServer(b)
			client := newOpenAIClient(srv)
			params := openai.ImageGenerateParams{Prompt: "a benchmark", Size: openai.ImageGenerateParamsSize(size)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Images.Generate(context.Background(), params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
