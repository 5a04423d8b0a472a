// Package httpx parses the HTTP headers with which image services report
// rate limits and ask clients to wait.
package httpx

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imagegen-go/imagegen/provider"
)

// maxDelay caps every parsed wait so that arithmetic on it cannot overflow.
// No service requests a wait anywhere near this long.
const maxDelay = 30 * 24 * time.Hour

// RetryAfter returns the wait that h requests and whether it requests one.
//
// It reads, in order of precedence, retry-after-ms and x-ms-retry-after-ms
// (milliseconds, possibly fractional) and Retry-After (delay-seconds, possibly
// fractional, or an HTTP-date in any of the three forms of RFC 9110, measured
// from now). A date in the past means no wait. Negative, non-finite and
// malformed values are ignored.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if d, ok := parseMillis(h.Get(name)); ok {
			return d, true
		}
	}

	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return min(d, maxDelay), true
	}
	return 0, false
}

// ShouldRetry returns the value of the x-should-retry header and whether the
// header was present with a valid value ("true" or "false").
func ShouldRetry(h http.Header) (retry, ok bool) {
	switch strings.ToLower(strings.TrimSpace(h.Get("X-Should-Retry"))) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// RateLimit returns the quota state reported by OpenAI-style
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers.
// A window is Known when its remaining count is present and valid.
func RateLimit(h http.Header) provider.RateLimit {
	return provider.RateLimit{
		Requests: quota(h, "requests"),
		Tokens:   quota(h, "tokens"),
	}
}

func quota(h http.Header, kind string) provider.Quota {
	remaining, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)), 10, 64)
	if err != nil || remaining < 0 {
		return provider.Quota{}
	}

	q := provider.Quota{Known: true, Remaining: remaining}
	if limit, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Limit-"+kind)), 10, 64); err == nil && limit >= 0 {
		q.Limit = limit
	}
	if reset, ok := ParseReset(h.Get("X-Ratelimit-Reset-" + kind)); ok {
		q.Reset = reset
	}
	return q
}

// ParseReset parses a rate-limit reset value. OpenAI sends Go-style durations
// such as "1s", "6m0s" or "120ms"; plain numbers are read as seconds.
func ParseReset(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, false
	}
	return min(d, maxDelay), true
}

func parseMillis(v string) (time.Duration, bool) {
	return parseScaled(v, float64(time.Millisecond))
}

func parseSeconds(v string) (time.Duration, bool) {
	return parseScaled(v, float64(time.Second))
}

func parseScaled(v string, unit float64) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	ns := f * unit
	if ns > float64(maxDelay) {
		return maxDelay, true
	}
	return time.Duration(ns), true
}
