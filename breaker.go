package imagegen

// BreakerState is the state of a provider's circuit breaker.
type BreakerState int

const (
	// BreakerClosed lets every request through.
	BreakerClosed BreakerState = iota
	// BreakerOpen rejects requests until its cooldown ends.
	BreakerOpen
	// BreakerHalfOpen lets one probe request through to decide whether to close.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half_open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}
