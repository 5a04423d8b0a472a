package imagegentest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Quota is a per-minute rate limit that a Server enforces, set with
// WithQuota. A zero limit means that dimension is not limited.
//
// Each limit is a token bucket. It starts full, holds at most the limit, and
// refills continuously at the limit per Minute, so a spent bucket is full
// again one Minute after its last request. A request takes one token from the
// requests bucket and n tokens (its image count) from the images bucket. A
// request that does not fit in every bucket is rejected with 429 and takes
// nothing. Requests that fail authentication or validation, and scripted
// responses with a status, body, error or Drop, bypass the quota and take
// nothing either. A scripted Response that responds normally goes through
// it.
//
// Responses report the buckets in OpenAI's headers, the images bucket as the
// "tokens" headers: x-ratelimit-limit-* is the limit, x-ratelimit-remaining-*
// the whole tokens left after the request, and x-ratelimit-reset-* the time
// until the bucket is full again. A 429 also carries retry-after and
// retry-after-ms: the time until the request fits. A request for more images
// than ImagesPerMinute can never fit and gets a 429 without retry-after.
type Quota struct {
	// RequestsPerMinute is the requests bucket's size and refill per Minute.
	RequestsPerMinute int
	// ImagesPerMinute is the images bucket's size and refill per Minute.
	ImagesPerMinute int
	// Minute is the refill period, so that tests can scale time down. Zero
	// means time.Minute.
	Minute time.Duration
}

// Quota bounds that keep the bucket arithmetic within int64: larger limits
// and periods are reduced to these.
const (
	maxQuotaLimit  = 1_000_000
	maxQuotaPeriod = time.Hour
)

// quotaBucket is one token bucket of a Quota. To stay exact with any limit
// and period, it counts in units where one token is period nanoseconds' worth:
// a full bucket holds limit*period units and it refills limit units per
// nanosecond. Not safe for concurrent use.
type quotaBucket struct {
	limit  int64
	period int64 // nanoseconds
	used   int64 // units taken and not yet refilled, 0 to limit*period
	last   time.Time
}

func newQuotaBucket(limit int, period time.Duration) *quotaBucket {
	if limit <= 0 {
		return nil
	}
	if period <= 0 {
		period = time.Minute
	}
	return &quotaBucket{
		limit:  int64(min(limit, maxQuotaLimit)),
		period: int64(min(period, maxQuotaPeriod)),
	}
}

// refill credits the time since the last call. A clock that goes backwards
// credits nothing.
func (b *quotaBucket) refill(now time.Time) {
	if !b.last.IsZero() {
		elapsed := min(now.Sub(b.last).Nanoseconds(), b.period)
		if elapsed > 0 {
			b.used = max(0, b.used-elapsed*b.limit)
		}
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// wait returns how long until k tokens fit, 0 if they fit now, and false if
// they never fit because k exceeds the limit.
func (b *quotaBucket) wait(k int64) (time.Duration, bool) {
	if k > b.limit {
		return 0, false
	}
	excess := b.used + k*b.period - b.limit*b.period
	if excess <= 0 {
		return 0, true
	}
	return time.Duration((excess + b.limit - 1) / b.limit), true
}

func (b *quotaBucket) take(k int64) {
	b.used += k * b.period
}

// remaining returns the whole tokens left.
func (b *quotaBucket) remaining() int64 {
	return (b.limit*b.period - b.used) / b.period
}

// reset returns the time until the bucket is full.
func (b *quotaBucket) reset() time.Duration {
	return time.Duration((b.used + b.limit - 1) / b.limit)
}

// setHeaders writes the x-ratelimit-*-kind headers.
func (b *quotaBucket) setHeaders(h http.Header, kind string) {
	h.Set("X-Ratelimit-Limit-"+kind, strconv.FormatInt(b.limit, 10))
	h.Set("X-Ratelimit-Remaining-"+kind, strconv.FormatInt(b.remaining(), 10))
	h.Set("X-Ratelimit-Reset-"+kind, formatReset(b.reset()))
}

// quotaState is a Server's pair of buckets. Not safe for concurrent use: the
// Server holds its lock around it.
type quotaState struct {
	requests *quotaBucket
	images   *quotaBucket
}

func newQuotaState(q Quota) *quotaState {
	s := &quotaState{
		requests: newQuotaBucket(q.RequestsPerMinute, q.Minute),
		images:   newQuotaBucket(q.ImagesPerMinute, q.Minute),
	}
	if s.requests == nil && s.images == nil {
		return nil
	}
	return s
}

// admit takes one request and n images at now. When they do not fit, it
// takes nothing and returns the 429 response to send. Either way it returns the
// rate-limit headers to add to the response.
func (s *quotaState) admit(now time.Time, n int, model string) (http.Header, *Response) {
	h := http.Header{}
	var deny *Response
	for _, c := range []struct {
		bucket *quotaBucket
		cost   int64
		kind   string // header suffix
		unit   string // as in OpenAI's message
		typ    string
	}{
		{s.requests, 1, "Requests", "requests per min (RPM)", TypeRequests},
		{s.images, int64(n), "Tokens", "images per min (IPM)", TypeTokens},
	} {
		if c.bucket == nil {
			continue
		}
		c.bucket.refill(now)
		if deny != nil {
			continue
		}
		wait, fits := c.bucket.wait(c.cost)
		if !fits || wait > 0 {
			r := quotaExceeded(c.bucket, c.cost, wait, fits, c.unit, c.typ, model)
			deny = &r
		}
	}
	if deny == nil {
		if s.requests != nil {
			s.requests.take(1)
		}
		if s.images != nil {
			s.images.take(int64(n))
		}
	}
	if s.requests != nil {
		s.requests.setHeaders(h, "Requests")
	}
	if s.images != nil {
		s.images.setHeaders(h, "Tokens")
	}
	if deny != nil {
		for k, v := range deny.Header {
			h[k] = v
		}
		deny.Header = h
	}
	return h, deny
}

func quotaExceeded(b *quotaBucket, cost int64, wait time.Duration, fits bool, unit, typ, model string) Response {
	if model == "" {
		model = "gpt-image-1"
	}
	h := http.Header{}
	if !fits {
		msg := fmt.Sprintf("Request too large for %s in organization org-testkit on %s: Limit %d, Requested %d. "+
			"The input or output tokens must be reduced in order to run successfully. "+
			"Visit https://platform.openai.com/account/rate-limits to learn more.", model, unit, b.limit, cost)
		return errorResponse(http.StatusTooManyRequests, h, typ, "", CodeRateLimitExceeded, msg)
	}
	setRetryAfter(h, wait)
	used := b.limit - b.remaining()
	msg := fmt.Sprintf("Rate limit reached for %s in organization org-testkit on %s: Limit %d, Used %d, Requested %d. "+
		"Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
		model, unit, b.limit, used, cost, formatReset(wait))
	return errorResponse(http.StatusTooManyRequests, h, typ, "", CodeRateLimitExceeded, msg)
}

// Stats counts what a Server has done since it started. Scripted responses are
// counted like normal ones.
type Stats struct {
	// Requests is the number of requests to the API paths, including
	// rejected, scripted and dropped ones.
	Requests int
	// Succeeded and Failed count responses with a 2xx status and with a 4xx or
	// 5xx status.
	Succeeded int
	Failed    int
	// RateLimited counts 429 responses: quota rejections and scripted ones.
	RateLimited int
	// Dropped counts connections closed without a response by Response.Drop.
	Dropped int
	// Abandoned counts requests whose client went away, or whose Server
	// closed, during a Response.Delay.
	Abandoned int
	// Images is the number of images in normal successful responses.
	Images int
	// Downloads counts image downloads served from URL responses.
	Downloads int
}
