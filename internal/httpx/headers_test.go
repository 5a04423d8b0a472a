package httpx

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		wantOK bool
	}{
		{"absent", header(), 0, false},
		{"seconds", header("Retry-After", "20"), 20 * time.Second, true},
		{"fractional seconds", header("Retry-After", "1.5"), 1500 * time.Millisecond, true},
		{"zero seconds", header("Retry-After", "0"), 0, true},
		{"milliseconds", header("Retry-After-Ms", "250"), 250 * time.Millisecond, true},
		{"fractional milliseconds", header("Retry-After-Ms", "0.5"), 500 * time.Microsecond, true},
		{"ms beats seconds", header("Retry-After", "20", "Retry-After-Ms", "1500"), 1500 * time.Millisecond, true},
		{"azure ms", header("X-Ms-Retry-After-Ms", "3000"), 3 * time.Second, true},
		{"RFC 1123 date", header("Retry-After", "Fri, 04 Dec 2026 12:00:30 GMT"), 30 * time.Second, true},
		{"RFC 850 date", header("Retry-After", "Friday, 04-Dec-26 12:01:00 GMT"), time.Minute, true},
		{"ANSI C date", header("Retry-After", "Fri Dec  4 12:00:05 2026"), 5 * time.Second, true},
		{"date in the past", header("Retry-After", "Fri, 04 Dec 2026 11:00:00 GMT"), 0, true},
		{"negative seconds", header("Retry-After", "-5"), 0, false},
		{"garbage", header("Retry-After", "soon"), 0, false},
		{"NaN", header("Retry-After", "NaN"), 0, false},
		{"Inf", header("Retry-After-Ms", "Inf"), 0, false},
		{"bad ms falls back to seconds", header("Retry-After-Ms", "x", "Retry-After", "2"), 2 * time.Second, true},
		{"huge is capped", header("Retry-After", "1e30"), maxDelay, true},
		{"spaces", header("Retry-After", " 7 "), 7 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter(tt.header, now)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestShouldRetry(t *testing.T) {
	tests := []struct {
		value     string
		wantRetry bool
		wantOK    bool
	}{
		{"true", true, true},
		{"TRUE", true, true},
		{"false", false, true},
		{"", false, false},
		{"maybe", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			retry, ok := ShouldRetry(header("X-Should-Retry", tt.value))
			assert.Equal(t, tt.wantRetry, retry)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

func TestRateLimit(t *testing.T) {
	h := header(
		"X-Ratelimit-Limit-Requests", "50",
		"X-Ratelimit-Remaining-Requests", "0",
		"X-Ratelimit-Reset-Requests", "6m0s",
		"X-Ratelimit-Limit-Tokens", "100000",
		"X-Ratelimit-Remaining-Tokens", "99000",
		"X-Ratelimit-Reset-Tokens", "120ms",
	)
	rl := RateLimit(h)

	require.True(t, rl.Requests.Known)
	assert.Equal(t, int64(50), rl.Requests.Limit)
	assert.Equal(t, int64(0), rl.Requests.Remaining)
	assert.Equal(t, 6*time.Minute, rl.Requests.Reset)
	require.True(t, rl.Tokens.Known)
	assert.Equal(t, int64(99000), rl.Tokens.Remaining)
	assert.Equal(t, 120*time.Millisecond, rl.Tokens.Reset)

	assert.False(t, RateLimit(header()).Requests.Known, "no headers")
	assert.False(t, RateLimit(header("X-Ratelimit-Remaining-Requests", "-1")).Requests.Known, "negative remaining")
}

func TestParseReset(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"1s", time.Second, true},
		{"6m0s", 6 * time.Minute, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"20ms", 20 * time.Millisecond, true},
		{"2", 2 * time.Second, true},
		{"", 0, false},
		{"-1s", 0, false},
		{"later", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseReset(tt.in)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzHeaders checks that no header value makes the parsers panic or return
// a negative or unbounded wait.
func FuzzHeaders(f *testing.F) {
	for _, seed := range []string{"20", "1.5", "-1", "NaN", "1e309", "Fri, 04 Dec 2026 12:00:30 GMT", "6m0s", "", "0x10", "1_000"} {
		f.Add(seed, seed)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, retryAfter, reset string) {
		h := header("Retry-After", retryAfter, "Retry-After-Ms", reset,
			"X-Ratelimit-Remaining-Requests", reset, "X-Ratelimit-Reset-Requests", reset)

		d, ok := RetryAfter(h, now)
		if d < 0 || d > maxDelay || (!ok && d != 0) {
			t.Fatalf("RetryAfter(%q, %q) = %v, %v", retryAfter, reset, d, ok)
		}
		if r, ok := ParseReset(reset); r < 0 || r > maxDelay || (!ok && r != 0) {
			t.Fatalf("ParseReset(%q) = %v, %v", reset, r, ok)
		}
		if q := RateLimit(h).Requests; q.Known && (q.Remaining < 0 || q.Reset < 0) {
			t.Fatalf("RateLimit = %+v", q)
		}
	})
}
