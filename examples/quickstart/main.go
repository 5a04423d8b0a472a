// Command quickstart generates one image and writes it to a file.
//
//	go run ./examples/quickstart -prompt "a lighthouse at dawn" -o out.png
//
// With OPENAI_API_KEY set it calls OpenAI, which bills the image to that
// account. Without it, it starts imagegentest's OpenAI-compatible server on
// 127.0.0.1 and generates a deterministic placeholder image there, so the
// program runs offline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider/openai"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	prompt := flag.String("prompt", "a lighthouse at dawn", "text description of the image")
	out := flag.String("o", "out.png", "output file; its extension (.png, .jpg, .jpeg, .webp) sets the image format")
	size := flag.String("size", "1024x1024", `image size, "auto" or WIDTHxHEIGHT in pixels`)
	quality := flag.String("quality", "low", `quality: "low", "medium", "high" or "auto"`)
	model := flag.String("model", "", "model; empty means the library default, "+imagegen.DefaultModel)
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit for the whole call")
	verbose := flag.Bool("v", false, "log retries and fallbacks to standard error")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: pass the prompt with -prompt, quoted", flag.Arg(0))
	}
	format, err := formatFor(*out)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	opts := openai.Options{APIKey: os.Getenv("OPENAI_API_KEY")}
	if opts.APIKey == "" {
		srv := imagegentest.NewServer()
		defer srv.Close()
		opts.APIKey = "test-key"
		opts.BaseURL = srv.URL
		opts.Name = "imagegentest"
		fmt.Printf("OPENAI_API_KEY is not set: using the local test server at %s\n", srv.URL)
	}
	p, err := openai.New(opts)
	if err != nil {
		return err
	}

	clientOpts := []imagegen.Option{imagegen.WithProvider(p)}
	if *verbose {
		clientOpts = append(clientOpts, imagegen.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	client, err := imagegen.New(clientOpts...)
	if err != nil {
		return err
	}

	res, err := client.Generate(ctx, *prompt, imagegen.GenerateOptions{Model: *model, Size: *size, Quality: *quality, OutputFormat: format})
	if err != nil {
		var e *imagegen.Error
		if errors.As(err, &e) && e.RequestID != "" {
			return fmt.Errorf("%w (quote request id %s to the provider's support)", err, e.RequestID)
		}
		return err
	}
	if err := os.WriteFile(*out, res.Images[0].Data, 0o644); err != nil {
		return err
	}

	fmt.Printf("wrote %s (%d bytes, %s)\n", *out, len(res.Images[0].Data), res.Images[0].MediaType)
	if want := "image/" + format; res.Images[0].MediaType != want {
		fmt.Printf("note: asked for %s, the service returned %s\n", want, res.Images[0].MediaType)
	}
	fmt.Printf("provider %s, model %s, size %s, quality %s\n", res.Provider, res.Model, res.Size, res.Quality)
	fmt.Printf("latency %s, attempts %d\n", res.Latency.Round(time.Millisecond), res.Attempts)
	if res.Cost.Known {
		kind := "from usage"
		if res.Cost.Estimated {
			kind = "estimated"
		}
		fmt.Printf("cost $%.4f (%s)\n", res.Cost.USD, kind)
	} else {
		fmt.Println("cost unknown")
	}
	return nil
}

// formatFor returns the output format that the file name's extension
// selects.
func formatFor(name string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".png":
		return "png", nil
	case ".jpg", ".jpeg":
		return "jpeg", nil
	case ".webp":
		return "webp", nil
	default:
		return "", fmt.Errorf("unsupported output file extension %q in -o %s: use .png, .jpg, .jpeg or .webp", ext, name)
	}
}
