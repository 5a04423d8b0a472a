package imagegen

// DisableStatsForBenchmark turns off c's statistics, so that benchmarks in
// package imagegen_test can measure what recording them costs. Stats then
// returns the zero Stats.
func DisableStatsForBenchmark(c *Client) {
	c.stats = nil
}
