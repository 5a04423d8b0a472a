package imagegen_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// The quota workload: a server that allows quotaImages images (and as many
// requests) per quotaPeriod, driven by quotaRequests requests from
// quotaWorkers goroutines. The period is a second instead of a minute, so
// 60 images per second stand for 3,600 images per minute, and the run takes
// about four seconds.
const (
	quotaImages   = 60
	quotaPeriod   = time.Second
	quotaRequests = 240
	quotaWorkers  = 20
)

// quotaRun drives the workload through generate and reports the share of
// the quota that became images, the 429s the server sent and the upstream
// calls it received.
func quotaRun(b *testing.B, srv *imagegentest.Server, generate func(context.Context) error) {
	b.Helper()
	var ok atomic.Int64
	jobs := make(chan struct{}, quotaRequests)
	for range quotaRequests {
		jobs <- struct{}{}
	}
	close(jobs)

	start := time.Now()
	var wg sync.WaitGroup
	for range quotaWorkers {
		wg.Go(func() {
			for range jobs {
				if generate(b.Context()) == nil {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	stats := srv.Stats()
	quota := float64(quotaImages) * elapsed.Seconds() / quotaPeriod.Seconds()
	b.ReportMetric(float64(ok.Load())/quota, "quota-share")
	b.ReportMetric(float64(ok.Load()), "images")
	b.ReportMetric(float64(quotaRequests-ok.Load()), "failed-calls")
	b.ReportMetric(float64(stats.RateLimited), "429s")
	b.ReportMetric(float64(stats.Requests), "upstream-calls")
	b.ReportMetric(float64(stats.RateLimited)/float64(max(stats.Requests, 1)), "429-share")
	b.ReportMetric(elapsed.Seconds(), "seconds")
}

func newQuotaServer() *imagegentest.Server {
	return imagegentest.NewServer(imagegentest.WithQuota(imagegentest.Quota{
		RequestsPerMinute: quotaImages, ImagesPerMinute: quotaImages, Minute: quotaPeriod,
	}))
}

// BenchmarkQuota compares, in one run, the Client configured with the
// server's quota against a plain openai-go client with its default retries,
// on the same workload. Run it with -benchtime=1x: each iteration is the
// whole workload.
func BenchmarkQuota(b *testing.B) {
	perMinute := float64(quotaImages) * float64(time.Minute) / float64(quotaPeriod)

	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			srv := newQuotaServer()
			p, err := openai.New(openai.Options{APIKey: "k", BaseURL: srv.URL})
			if err != nil {
				b.Fatal(err)
			}
			c, err := imagegen.New(imagegen.WithProvider(p, imagegen.WithLimits(imagegen.Limits{
				RequestsPerMinute: perMinute, ImagesPerMinute: perMinute,
			})))
			if err != nil {
				b.Fatal(err)
			}
			quotaRun(b, srv, func(ctx context.Context) error {
				_, err := c.Generate(ctx, "a lighthouse", imagegen.GenerateOptions{Size: "1024x1024", Quality: "low"})
				return err
			})
			srv.Close()
		}
	})

	b.Run("openai-go", func(b *testing.B) {
		for b.Loop() {
			srv := newQuotaServer()
			client := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("k"))
			quotaRun(b, srv, func(ctx context.Context) error {
				_, err := client.Images.Generate(ctx, oai.ImageGenerateParams{
					Prompt: "a lighthouse", Model: imagegen.DefaultModel, Size: "1024x1024", Quality: "low",
				})
				return err
			})
			srv.Close()
		}
	})
}
