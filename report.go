package imagegen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Table returns the figures as a text table, one row per provider and model
// and a TOTAL row, aligned for a fixed-width font and ending in a newline.
//
// CALLS and SUCCESS are calls and their success rate as ProviderStats and
// TotalStats define them. P50, P95 and P99 are latency percentiles of
// successful attempts on a provider row and of successful calls on the TOTAL
// row. 429S counts rate-limited attempts. COST_USD is the cost from reported
// usage and EST_USD the estimated cost, in US dollars. A dash marks a figure
// with nothing to compute it from.
func (s Stats) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tCALLS\tSUCCESS\tATTEMPTS\tP50\tP95\tP99\t429S\tRETRIES\tFALLBACKS\tIMAGES\tCOST_USD\tEST_USD")
	for _, p := range s.Providers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.4f\t%.4f\n",
			p.Provider, p.Model, p.Calls, formatStatsRate(p.Successes, p.Calls), p.Attempts,
			formatStatsLatency(p.Latency.P50, p.Latency.Count),
			formatStatsLatency(p.Latency.P95, p.Latency.Count),
			formatStatsLatency(p.Latency.P99, p.Latency.Count),
			p.RateLimited, p.Retries, p.Fallbacks, p.Images, p.CostUSD, p.EstimatedCostUSD)
	}
	t := s.Totals
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.4f\t%.4f\n",
		t.Calls, formatStatsRate(t.Successes, t.Calls), t.Attempts,
		formatStatsLatency(t.Latency.P50, t.Latency.Count),
		formatStatsLatency(t.Latency.P95, t.Latency.Count),
		formatStatsLatency(t.Latency.P99, t.Latency.Count),
		t.RateLimited, t.Retries, t.Fallbacks, t.Images, t.CostUSD, t.EstimatedCostUSD)
	// Flush fails only when the writer fails, and strings.Builder.Write
	// always returns a nil error.
	_ = tw.Flush()

	fmt.Fprintf(&b, "cache: %d hits, %d misses, %d errors\n", s.Cache.Hits, s.Cache.Misses, s.Cache.Errors)
	if t.CachedCalls > 0 || t.SharedCalls > 0 {
		fmt.Fprintf(&b, "served without a provider call: %d from cache, %d shared\n", t.CachedCalls, t.SharedCalls)
	}
	if t.UnknownCostCalls > 0 {
		fmt.Fprintf(&b, "calls with unknown cost: %d\n", t.UnknownCostCalls)
	}
	if !s.Since.IsZero() {
		fmt.Fprintf(&b, "since: %s\n", s.Since.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func formatStatsRate(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + "%"
}

// formatStatsLatency rounds d to what a reader compares: whole milliseconds
// under a second, tenths of a second under a minute, seconds above.
func formatStatsLatency(d time.Duration, count int64) string {
	switch {
	case count == 0:
		return "-"
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Round(time.Second).String()
}

// statsMillis converts d to milliseconds, the unit of every duration in the
// JSON form of Stats.
func statsMillis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// attemptStatsJSON is the JSON form of AttemptStats. ProviderStats and
// TotalStats embed it, so encoding/json writes its keys inline.
type attemptStatsJSON struct {
	Attempts               int64       `json:"attempts"`
	FailedAttempts         int64       `json:"failed_attempts"`
	AttemptFailuresByClass ClassCounts `json:"attempt_failures_by_class"`
	RateLimited            int64       `json:"rate_limited"`
	Retries                int64       `json:"retries"`
	Fallbacks              int64       `json:"fallbacks"`
	RateLimitWaits         int64       `json:"rate_limit_waits"`
	RateLimitWaitMS        float64     `json:"rate_limit_wait_ms"`
	RateLimitWaitErrors    int64       `json:"rate_limit_wait_errors"`
	Images                 int64       `json:"images"`
	CostUSD                float64     `json:"cost_usd"`
	EstimatedCostUSD       float64     `json:"estimated_cost_usd"`
	UnknownCostCalls       int64       `json:"unknown_cost_calls"`
}

func (a AttemptStats) toJSON() attemptStatsJSON {
	return attemptStatsJSON{
		Attempts:               a.Attempts,
		FailedAttempts:         a.FailedAttempts,
		AttemptFailuresByClass: a.AttemptFailuresByClass,
		RateLimited:            a.RateLimited,
		Retries:                a.Retries,
		Fallbacks:              a.Fallbacks,
		RateLimitWaits:         a.RateLimitWaits,
		RateLimitWaitMS:        statsMillis(a.RateLimitWait),
		RateLimitWaitErrors:    a.RateLimitWaitErrors,
		Images:                 a.Images,
		CostUSD:                a.CostUSD,
		EstimatedCostUSD:       a.EstimatedCostUSD,
		UnknownCostCalls:       a.UnknownCostCalls,
	}
}

// MarshalJSON encodes a as a JSON object with the keys "attempts",
// "failed_attempts", "attempt_failures_by_class", "rate_limited", "retries",
// "fallbacks", "rate_limit_waits", "rate_limit_wait_ms" (float
// milliseconds), "rate_limit_wait_errors", "images", "cost_usd",
// "estimated_cost_usd" and "unknown_cost_calls".
func (a AttemptStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.toJSON())
}

// MarshalJSON encodes p as a JSON object with the keys "provider", "model",
// "calls", "successes", "failures", "success_rate" (null when calls is 0),
// "failures_by_class", the keys of AttemptStats inline, and "latency".
func (p ProviderStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Provider        string      `json:"provider"`
		Model           string      `json:"model"`
		Calls           int64       `json:"calls"`
		Successes       int64       `json:"successes"`
		Failures        int64       `json:"failures"`
		SuccessRate     *float64    `json:"success_rate"`
		FailuresByClass ClassCounts `json:"failures_by_class"`
		attemptStatsJSON
		Latency LatencyStats `json:"latency"`
	}{
		p.Provider, p.Model, p.Calls, p.Successes, p.Failures, statsRateJSON(p.Successes, p.Calls),
		p.FailuresByClass, p.AttemptStats.toJSON(), p.Latency,
	})
}

// MarshalJSON encodes t as a JSON object with the keys "calls",
// "successes", "failures", "success_rate" (null when calls is 0),
// "failures_by_class", "cached_calls", "shared_calls", "latency", and the
// keys of AttemptStats inline.
func (t TotalStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Calls           int64        `json:"calls"`
		Successes       int64        `json:"successes"`
		Failures        int64        `json:"failures"`
		SuccessRate     *float64     `json:"success_rate"`
		FailuresByClass ClassCounts  `json:"failures_by_class"`
		CachedCalls     int64        `json:"cached_calls"`
		SharedCalls     int64        `json:"shared_calls"`
		Latency         LatencyStats `json:"latency"`
		attemptStatsJSON
	}{
		t.Calls, t.Successes, t.Failures, statsRateJSON(t.Successes, t.Calls), t.FailuresByClass,
		t.CachedCalls, t.SharedCalls, t.Latency, t.AttemptStats.toJSON(),
	})
}

func statsRateJSON(part, whole int64) *float64 {
	if whole == 0 {
		return nil
	}
	r := float64(part) / float64(whole)
	return &r
}

// MarshalJSON encodes l as {"count", "mean_ms", "p50_ms", "p95_ms",
// "p99_ms", "max_ms"}, the durations as float milliseconds.
func (l LatencyStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Count  int64   `json:"count"`
		MeanMS float64 `json:"mean_ms"`
		P50MS  float64 `json:"p50_ms"`
		P95MS  float64 `json:"p95_ms"`
		P99MS  float64 `json:"p99_ms"`
		MaxMS  float64 `json:"max_ms"`
	}{l.Count, statsMillis(l.Mean), statsMillis(l.P50), statsMillis(l.P95), statsMillis(l.P99), statsMillis(l.Max)})
}

// MarshalJSON encodes cc as an object with one key per class, its
// Class.String name, in the order of Classes(), zero counts included so
// that every object has the same keys.
func (cc ClassCounts) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range cc {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(Class(i).String()))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
