package imagegen

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// reportFixture records a fixed mix of calls: a fallback from azure to
// openai, a retried rate limit, a failure, a cache hit and a call with
// unknown cost.
func reportFixture() Stats {
	r := newStatsRecorder(statsTestSince)
	events := []statsEvent{
		cacheMissed(),
		attemptFailed("azure", "gpt-image-1", 1, 900*time.Millisecond, ClassServer),
		fellBack("azure", "gpt-image-1", "openai", "gpt-image-1", ClassServer),
		attemptOK("openai", "gpt-image-1", 1, 42*time.Second, 2),
		doneOK("openai", "gpt-image-1", 44*time.Second, Result{Cost: Cost{USD: 0.334, Known: true}}),

		cacheMissed(),
		waited("openai", "gpt-image-1", 1500*time.Millisecond, nil),
		attemptFailed("openai", "gpt-image-1", 1, 120*time.Millisecond, ClassRateLimited),
		retried("openai", "gpt-image-1", 1, ClassRateLimited),
		attemptOK("openai", "gpt-image-1", 2, 75*time.Second, 1),
		doneOK("openai", "gpt-image-1", 79*time.Second, Result{Cost: Cost{USD: 0.042, Known: true, Estimated: true}}),

		cacheMissed(),
		attemptFailed("openai", "dall-e-3", 1, 350*time.Millisecond, ClassContentRejected),
		doneFailed("openai", "dall-e-3", 400*time.Millisecond, ClassContentRejected),

		cacheMissed(),
		attemptOK("openai", "dall-e-3", 1, 8*time.Second, 1),
		doneOK("openai", "dall-e-3", 8100*time.Millisecond, Result{}),

		cacheFound(),
		doneOK("", "", 3*time.Millisecond, Result{Cached: true}),
	}
	for _, record := range events {
		record(r)
	}
	return r.snapshot()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), string(got))
}

func TestStatsTableGolden(t *testing.T) {
	checkGolden(t, "stats_table.golden", []byte(reportFixture().Table()))
}

func TestStatsTableEmpty(t *testing.T) {
	got := Stats{}.Table()

	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	require.Len(t, lines, 3, "header, TOTAL and cache lines:\n%s", got)
	assert.True(t, strings.HasPrefix(lines[0], "PROVIDER"))
	assert.Equal(t, []string{"TOTAL", "0", "-", "0", "-", "-", "-", "0", "0", "0", "0", "0.0000", "0.0000"}, strings.Fields(lines[1]))
	assert.Equal(t, "cache: 0 hits, 0 misses, 0 errors", lines[2])
}

func TestStatsLatencyFormat(t *testing.T) {
	tests := []struct {
		d     time.Duration
		count int64
		want  string
	}{
		{time.Second, 0, "-"},
		{500 * time.Microsecond, 1, "<1ms"},
		{350 * time.Millisecond, 1, "350ms"},
		{42300 * time.Millisecond, 1, "42.3s"},
		{125400 * time.Millisecond, 1, "2m5s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, formatStatsLatency(tt.d, tt.count))
		})
	}
}

func TestStatsJSONGolden(t *testing.T) {
	got, err := json.MarshalIndent(reportFixture(), "", "  ")
	require.NoError(t, err)
	checkGolden(t, "stats.golden.json", append(got, '\n'))
}

func TestStatsJSONShape(t *testing.T) {
	data, err := json.Marshal(reportFixture())
	require.NoError(t, err)

	var doc struct {
		Since     string           `json:"since"`
		Providers []map[string]any `json:"providers"`
		Totals    map[string]any   `json:"totals"`
		Cache     map[string]any   `json:"cache"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))

	assert.Equal(t, "2026-01-02T15:04:05Z", doc.Since)
	require.Len(t, doc.Providers, 3)
	providerKeys := []string{
		"provider", "model", "calls", "successes", "failures", "success_rate", "failures_by_class",
		"attempts", "failed_attempts", "attempt_failures_by_class", "rate_limited", "retries",
		"fallbacks", "rate_limit_waits", "rate_limit_wait_ms", "rate_limit_wait_errors", "images",
		"cost_usd", "estimated_cost_usd", "unknown_cost_calls", "latency",
	}
	for _, p := range doc.Providers {
		assert.ElementsMatch(t, providerKeys, mapKeys(p))
	}

	openai := doc.Providers[2]
	assert.Equal(t, "openai", openai["provider"])
	assert.Equal(t, "gpt-image-1", openai["model"])
	assert.Equal(t, 1500.0, openai["rate_limit_wait_ms"], "durations are float milliseconds")
	latency := openai["latency"].(map[string]any)
	assert.ElementsMatch(t, []string{"count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}, mapKeys(latency))
	assert.Equal(t, 75000.0, latency["max_ms"])
	byClass := openai["attempt_failures_by_class"].(map[string]any)
	assert.Len(t, byClass, len(Classes()), "every class is present")
	assert.Equal(t, 1.0, byClass["rate_limited"])

	azure := doc.Providers[0]
	assert.Equal(t, 0.0, azure["success_rate"])
	assert.Equal(t, 1.0, azure["fallbacks"])

	assert.Contains(t, doc.Totals, "cached_calls")
	assert.Equal(t, 1.0, doc.Totals["cached_calls"])
	assert.Equal(t, map[string]any{"hits": 1.0, "misses": 4.0, "errors": 0.0}, doc.Cache)
}

func TestStatsJSONNullSuccessRate(t *testing.T) {
	data, err := json.Marshal(Stats{Providers: []ProviderStats{{Provider: "p", Model: "m"}}})
	require.NoError(t, err)

	assert.Contains(t, string(data), `"success_rate":null`)
}

func TestClassCountsJSONOrder(t *testing.T) {
	data, err := json.Marshal(classCounts(map[Class]int64{ClassCanceled: 2}))
	require.NoError(t, err)

	assert.Equal(t, `{"unknown":0,"rate_limited":0,"quota_exceeded":0,"not_entitled":0,"authentication":0,`+
		`"invalid_request":0,"content_rejected":0,"not_found":0,"server_error":0,"timeout":0,"network":0,`+
		`"outcome_unknown":0,"canceled":2,"budget_exceeded":0}`, string(data))
}

func mapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestAttemptStatsJSON(t *testing.T) {
	data, err := json.Marshal(AttemptStats{Attempts: 2, RateLimitWait: 1500 * time.Millisecond})
	require.NoError(t, err)

	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Len(t, got, 13)
	assert.Equal(t, 2.0, got["attempts"])
	assert.Equal(t, 1500.0, got["rate_limit_wait_ms"])
}
