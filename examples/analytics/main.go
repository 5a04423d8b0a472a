// Command analytics runs a mixed workload through one imagegen Client and
// prints the statistics that the Client collected.
//
//	go run ./examples/analytics
//	go run ./examples/analytics -json
//
// It starts three imagegentest servers on 127.0.0.1, each behind its own
// provider/openai provider, and injects faults into them: the primary
// fails some requests with a 429 and a short Retry-After, some with a 503
// and some too slowly for the attempt timeout; the secondary runs out of
// quota after a few requests; the backup is healthy but slower. The Client
// paces the primary with a client-side rate limit, retries, and falls back
// from one provider to the next. The program makes no call outside the
// machine and finishes in a few seconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider/openai"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "analytics:", err)
		os.Exit(1)
	}
}

func run() error {
	calls := flag.Int("calls", 60, "number of Generate calls")
	workers := flag.Int("workers", 6, "number of goroutines that make the calls")
	asJSON := flag.Bool("json", false, "print the statistics as JSON instead of a table")
	verbose := flag.Bool("v", false, "log retries, fallbacks and breaker changes to standard error")
	flag.Parse()
	if *calls < 1 || *workers < 1 {
		return fmt.Errorf("invalid -calls %d or -workers %d: both must be at least 1", *calls, *workers)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	servers := startServers()
	defer func() {
		for _, s := range servers {
			s.server.Close()
		}
	}()

	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	client, err := newClient(servers, logger)
	if err != nil {
		return err
	}

	start := time.Now()
	failures := runWorkload(ctx, client, *calls, *workers)
	elapsed := time.Since(start)

	stats := client.Stats()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(stats)
	}
	fmt.Printf("%d calls from %d goroutines in %s: %d succeeded, %d failed\n\n",
		*calls, *workers, elapsed.Round(time.Millisecond), stats.Totals.Successes, stats.Totals.Failures)
	fmt.Print(stats.Table())
	fmt.Printf("client-side rate limiter: %d waits, %s in total\n\n",
		stats.Totals.RateLimitWaits, stats.Totals.RateLimitWait.Round(time.Millisecond))
	for _, s := range servers {
		st := s.server.Stats()
		fmt.Printf("server %-9s %3d requests: %3d succeeded, %3d failed (%d with 429), %d abandoned by the client\n",
			s.name, st.Requests, st.Succeeded, st.Failed, st.RateLimited, st.Abandoned)
	}
	for _, f := range failures {
		fmt.Println("failed call:", f)
	}
	return nil
}

// namedServer is one local test server and the name of its provider.
type namedServer struct {
	name   string
	server *imagegentest.Server
}

// startServers starts the three servers with their faults.
func startServers() []namedServer {
	var primaryCount, secondaryCount atomic.Int64
	primary := func(*imagegentest.RecordedRequest) *imagegentest.Response {
		n := primaryCount.Add(1)
		var r imagegentest.Response
		switch {
		case n%6 == 2:
			r = imagegentest.RateLimited(40 * time.Millisecond)
		case n%9 == 4:
			r = imagegentest.Overloaded()
		case n%10 == 7:
			// Longer than the Client's 250 ms attempt timeout.
			r = imagegentest.Slow(2 * time.Second)
		default:
			return nil
		}
		return &r
	}
	secondary := func(*imagegentest.RecordedRequest) *imagegentest.Response {
		if secondaryCount.Add(1) <= 4 {
			return nil
		}
		r := imagegentest.InsufficientQuota()
		return &r
	}
	backup := func(*imagegentest.RecordedRequest) *imagegentest.Response {
		r := imagegentest.Slow(80 * time.Millisecond)
		return &r
	}

	return []namedServer{
		{"primary", imagegentest.NewServer(imagegentest.WithHandler(primary))},
		{"secondary", imagegentest.NewServer(imagegentest.WithHandler(secondary))},
		{"backup", imagegentest.NewServer(imagegentest.WithHandler(backup))},
	}
}

// newClient returns a Client with one OpenAI provider per server, tried in
// order, and the primary paced at 30 requests per second.
func newClient(servers []namedServer, logger *slog.Logger) (*imagegen.Client, error) {
	opts := []imagegen.Option{
		imagegen.WithLogger(logger),
		// gpt-image-1 has published token prices, so the table shows costs.
		imagegen.WithDefaultModel("gpt-image-1"),
		imagegen.WithRetry(imagegen.RetryPolicy{
			MaxAttempts:    2,
			InitialDelay:   20 * time.Millisecond,
			MaxDelay:       100 * time.Millisecond,
			MaxWait:        time.Second,
			AttemptTimeout: 250 * time.Millisecond,
		}),
	}
	for _, s := range servers {
		p, err := openai.New(openai.Options{Name: s.name, APIKey: "sk-test-analytics", BaseURL: s.server.URL})
		if err != nil {
			return nil, err
		}
		var popts []imagegen.ProviderOption
		if s.name == "primary" {
			popts = append(popts, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 1800, RequestBurst: 3, MaxInFlight: 4}))
		}
		opts = append(opts, imagegen.WithProvider(p, popts...))
	}
	return imagegen.New(opts...)
}

// runWorkload makes calls Generate calls from workers goroutines and
// returns the text of each failed call's error.
func runWorkload(ctx context.Context, client *imagegen.Client, calls, workers int) []string {
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				prompt := fmt.Sprintf("test pattern %d", i)
				_, err := client.Generate(ctx, prompt, imagegen.GenerateOptions{Size: "1024x1024", Quality: "low"})
				if err == nil {
					continue
				}
				var ae *imagegen.AttemptsError
				if !errors.As(err, &ae) {
					err = fmt.Errorf("call %d: %w", i, err)
				}
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
			}
		})
	}
	for i := range calls {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return failures
}
