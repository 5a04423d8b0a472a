package imagegen_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/png"
	"log"
	"time"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// This example generates an image through the OpenAI provider. It runs
// against imagegentest's local server; against OpenAI, leave BaseURL empty
// and pass your key.
func Example() {
	srv := imagegentest.NewServer()
	defer srv.Close()

	p, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: srv.URL})
	if err != nil {
		log.Fatal(err)
	}
	client, err := imagegen.New(imagegen.WithProvider(p))
	if err != nil {
		log.Fatal(err)
	}

	res, err := client.Generate(context.Background(), "a lighthouse at dawn", imagegen.GenerateOptions{
		Size:    "1536x1024",
		Quality: "low",
	})
	if err != nil {
		log.Fatal(err)
	}

	cfg, format, err := image.DecodeConfig(bytes.NewReader(res.Images[0].Data))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Provider, res.Model, res.Attempts)
	fmt.Println(format, cfg.Width, cfg.Height)
	// Output:
	// openai gpt-image-2 1
	// png 1536 1024
}

// This example falls back from a provider whose quota is exhausted to a
// second one, and shows how to read the failure that caused it.
func ExampleClient_Generate_fallback() {
	primary := imagegentest.NewFakeProvider("primary")
	primary.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
	backup := imagegentest.NewFakeProvider("backup")

	var cause error
	client, err := imagegen.New(
		imagegen.WithProvider(primary),
		imagegen.WithProvider(backup),
		imagegen.WithHooks(imagegen.Hooks{
			Fallback: func(_ context.Context, e imagegen.FallbackEvent) { cause = e.Err },
		}),
	)
	if err != nil {
		log.Fatal(err)
	}

	res, err := client.Generate(context.Background(), "a lighthouse", imagegen.GenerateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("served by", res.Provider)
	fmt.Println("quota exceeded:", errors.Is(cause, imagegen.ErrQuotaExceeded))
	// Output:
	// served by backup
	// quota exceeded: true
}

// This example shows the checks that run before any request.
func ExampleValidationError() {
	client, err := imagegen.New(imagegen.WithProvider(imagegentest.NewFakeProvider("fake")))
	if err != nil {
		log.Fatal(err)
	}

	_, err = client.Generate(context.Background(), "a lighthouse", imagegen.GenerateOptions{N: 12})

	var v *imagegen.ValidationError
	fmt.Println(errors.As(err, &v), v.Field, errors.Is(err, imagegen.ErrInvalidRequest))
	// Output:
	// true n true
}

// This example answers a repeated prompt from an in-memory cache, so the
// provider is called once.
func ExampleWithCache() {
	fake := imagegentest.NewFakeProvider("fake")
	cache, err := imagegen.NewMemoryCache(imagegen.MemoryCacheOptions{MaxBytes: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	client, err := imagegen.New(imagegen.WithProvider(fake), imagegen.WithCache(cache, imagegen.CacheOptions{}))
	if err != nil {
		log.Fatal(err)
	}

	for range 2 {
		res, err := client.Generate(context.Background(), "a lighthouse at dawn", imagegen.GenerateOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("cached:", res.Cached)
	}
	fmt.Println("provider calls:", fake.Calls())
	// Output:
	// cached: false
	// cached: true
	// provider calls: 1
}

// This example caps spending at 5 cents: each call reserves its estimated
// cost before any request, so the fifth low-quality image does not fit.
func ExampleWithBudget() {
	budget, err := imagegen.NewBudget(0.05, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	client, err := imagegen.New(
		imagegen.WithProvider(imagegentest.NewFakeProvider("fake")),
		imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithBudget(budget),
	)
	if err != nil {
		log.Fatal(err)
	}

	for i := 1; i <= 5; i++ {
		res, err := client.Generate(context.Background(), "a lighthouse", imagegen.GenerateOptions{Size: "1024x1024", Quality: "low"})
		if errors.Is(err, imagegen.ErrBudgetExceeded) {
			fmt.Printf("call %d: over budget\n", i)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("call %d: %s\n", i, res.Cost)
	}
	// Output:
	// call 1: $0.0109
	// call 2: $0.0109
	// call 3: $0.0109
	// call 4: $0.0109
	// call 5: over budget
}
