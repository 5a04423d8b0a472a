package imagegentest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
)

func ExampleNewServer() {
	srv := imagegentest.NewServer()
	defer srv.Close()

	client := openai.NewClient(
		option.WithBaseURL(srv.URL),
		option.WithAPIKey("test"),
		option.WithMaxRetries(0),
	)
	resp, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{
		Prompt:  "a red bicycle",
		Model:   "gpt-image-1",
		Size:    "1024x1536",
		Quality: "low",
	})
	if err != nil {
		fmt.Println("generate:", err)
		return
	}

	data, err := base64.StdEncoding.DecodeString(resp.Data[0].B64JSON)
	if err != nil {
		fmt.Println("decode:", err)
		return
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		fmt.Println("decode:", err)
		return
	}
	fmt.Println(format, cfg.Width, cfg.Height)
	fmt.Println("output tokens:", resp.Usage.OutputTokens)
	fmt.Println("requests:", srv.RequestCount())
	// Output:
	// png 1024 1536
	// output tokens: 408
	// requests: 1
}

func ExampleServer_Enqueue() {
	srv := imagegentest.NewServer()
	defer srv.Close()
	srv.Enqueue(imagegentest.RateLimited(2 * time.Second))

	client := openai.NewClient(
		option.WithBaseURL(srv.URL),
		option.WithAPIKey("test"),
		option.WithMaxRetries(0),
	)
	params := openai.ImageGenerateParams{Prompt: "a red bicycle", Size: "256x256"}

	_, err := client.Images.Generate(context.Background(), params)
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, "retry-after:", apiErr.Response.Header.Get("Retry-After"))
	}

	resp, err := client.Images.Generate(context.Background(), params)
	if err != nil {
		fmt.Println("generate:", err)
		return
	}
	fmt.Println("images:", len(resp.Data))
	// Output:
	// 429 rate_limit_exceeded retry-after: 2
	// images: 1
}

func ExampleNewFakeProvider() {
	fake := imagegentest.NewFakeProvider("primary")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.RateLimited(time.Second)))
	req := &provider.Request{Prompt: "a red bicycle", Model: "gpt-image-1", Quality: "high"}

	_, err := fake.Generate(context.Background(), req)
	var e *imagegen.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, imagegen.ErrRateLimited), e.RetryAfter)
	}

	resp, err := fake.Generate(context.Background(), req)
	if err != nil {
		fmt.Println("generate:", err)
		return
	}
	fmt.Println(resp.Images[0].MediaType, resp.Size, resp.Usage.OutputTokens)
	fmt.Println("calls:", fake.Calls())
	// Output:
	// true 1s
	// image/png 1024x1024 4160
	// calls: 2
}
