package imagegen_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// BenchmarkClientOverhead compares Client.Generate with a fake provider
// against calling the same provider directly. The difference is what the
// Client adds per call with every optional feature off.
func BenchmarkClientOverhead(b *testing.B) {
	fake := imagegentest.NewFakeProvider("fake", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())

	b.Run("direct", func(b *testing.B) {
		req := &provider.Request{Prompt: "a lighthouse at dawn", Model: imagegen.DefaultModel, N: 1}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fake.Generate(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("client", func(b *testing.B) {
		c, err := imagegen.New(imagegen.WithProvider(fake))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Generate(b.Context(), "a lighthouse at dawn", imagegen.GenerateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenAIImageHeap measures the bytes allocated per Generate of one
// 1.5 MB image through provider/openai over HTTP, an upper bound of the
// call's peak heap.
func BenchmarkOpenAIImageHeap(b *testing.B) {
	const imageSize = 1_500_000
	img := make([]byte, imageSize)
	if _, err := rand.Read(img); err != nil {
		b.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`{"created":1,"data":[{"b64_json":%q}],"size":"1024x1024","quality":"high","output_format":"png"}`,
		base64.StdEncoding.EncodeToString(img)))

	// A plain handler that writes a prebuilt body, so that the figure is
	// the client side's alone.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	p, err := openai.New(openai.Options{APIKey: "k", BaseURL: srv.URL + "/v1"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := imagegen.New(imagegen.WithProvider(p))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.SetBytes(imageSize)
	for b.Loop() {
		res, err := c.Generate(b.Context(), "noise", imagegen.GenerateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Images[0].Data) != imageSize {
			b.Fatalf("image is %d bytes, want %d", len(res.Images[0].Data), imageSize)
		}
	}
}
