package imagegen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrBudgetExceeded matches errors for requests rejected because their
// estimated cost does not fit a spending cap: a *BudgetError from
// Budget.Reserve and the error of Catalog.Select when no option fits
// MaxCostPerImage.
var ErrBudgetExceeded = errors.New("imagegen: budget exceeded")

// microsPerUSD converts US dollars to the integer micro-dollars that a
// Budget counts in, so that concurrent additions are exact.
const microsPerUSD = 1_000_000

// Budget caps spending per time window. Before a request, Reserve sets aside
// its estimated cost, and fails when spent plus reserved plus the estimate
// would pass the limit. After the request, the Reservation is settled with
// the real cost or released.
//
// Concurrent requests therefore never reserve more than the limit together.
// Spending can still pass the limit when a request's real cost exceeds its
// estimate, because the real cost always counts in full. Estimates come from
// the Catalog. For models without a published price, Reserve rejects the
// request with ErrCostUnknown unless WithUnknownCostPerImage sets an amount
// to reserve per image: choose it above the most one image can cost.
//
// Windows are fixed, not rolling: with a window length they start at
// multiples of that length since the zero time in UTC, so 24*time.Hour resets
// at midnight UTC and time.Hour on the hour. WithCalendarMonth uses UTC
// calendar months instead. At a new window the spent amount restarts at zero,
// while reservations still open carry over and settle into the new window.
//
// A Budget is safe for concurrent use. A nil *Budget has no limit: Reserve
// returns a nil Reservation, whose methods do nothing.
type Budget struct {
	limit           int64 // micro-dollars
	window          time.Duration
	calendarMonth   bool
	now             func() time.Time
	unknownPerImage int64 // micro-dollars; 0 rejects unknown costs

	mu         sync.Mutex
	start, end time.Time // end is zero for a window that never ends
	spent      int64
	reserved   int64
}

// BudgetOption configures a Budget in NewBudget.
type BudgetOption func(*Budget) error

// WithBudgetClock sets the clock that places spending in windows. The
// default is time.Now.
func WithBudgetClock(now func() time.Time) BudgetOption {
	return func(b *Budget) error {
		if now == nil {
			return errors.New("imagegen: WithBudgetClock needs a non-nil clock")
		}
		b.now = now
		return nil
	}
}

// WithCalendarMonth makes each window a calendar month in UTC. NewBudget's
// window must then be zero.
func WithCalendarMonth() BudgetOption {
	return func(b *Budget) error {
		b.calendarMonth = true
		return nil
	}
}

// WithUnknownCostPerImage makes Reserve set aside usd per image for requests
// whose cost the catalog cannot estimate: models without published prices,
// or without a tokens-per-image table. Without it, Reserve rejects those
// requests with ErrCostUnknown, because a cap that cannot price a request
// cannot hold. The real cost still counts in full when it is known
// afterwards, so choose usd above the most one image can cost.
func WithUnknownCostPerImage(usd float64) BudgetOption {
	return func(b *Budget) error {
		if !(usd > 0) || math.IsInf(usd, 0) {
			return fmt.Errorf("imagegen: WithUnknownCostPerImage needs a positive amount of US dollars, not %v", usd)
		}
		b.unknownPerImage = usdToMicros(usd)
		return nil
	}
}

// NewBudget returns a budget that allows limitUSD US dollars per window of
// the given length. A zero window never resets. It returns an error for a
// limit that is not positive and finite, a negative window, or a window
// combined with WithCalendarMonth.
func NewBudget(limitUSD float64, window time.Duration, opts ...BudgetOption) (*Budget, error) {
	if !(limitUSD > 0) || math.IsInf(limitUSD, 0) {
		return nil, fmt.Errorf("imagegen: budget limit must be a positive amount of US dollars, not %v", limitUSD)
	}
	if window < 0 {
		return nil, fmt.Errorf("imagegen: budget window must be positive, or 0 for no reset, not %v", window)
	}
	b := &Budget{limit: usdToMicros(limitUSD), window: window, now: time.Now}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	if b.calendarMonth && window != 0 {
		return nil, fmt.Errorf("imagegen: budget window %v conflicts with WithCalendarMonth; pass 0", window)
	}
	b.start, b.end = b.windowAt(b.now())
	return b, nil
}

// windowAt returns the window that contains now.
func (b *Budget) windowAt(now time.Time) (start, end time.Time) {
	switch {
	case b.calendarMonth:
		year, month, _ := now.UTC().Date()
		start = time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	case b.window > 0:
		start = now.UTC().Truncate(b.window)
		return start, start.Add(b.window)
	}
	return now.UTC(), time.Time{}
}

// rollLocked starts a new window when now has passed the current one.
// An earlier now, from a clock that stepped back or a caller that read the
// clock before another rolled the window, keeps the current window.
func (b *Budget) rollLocked(now time.Time) {
	if b.end.IsZero() || now.Before(b.end) {
		return
	}
	b.start, b.end = b.windowAt(now)
	b.spent = 0
}

// BudgetError reports a request rejected by Budget.Reserve. It matches
// ErrBudgetExceeded with errors.Is. Amounts are in US dollars.
type BudgetError struct {
	Limit, Spent, Reserved float64
	// Requested is the amount the request needed.
	Requested float64
	// WindowEnd is when the spent amount restarts at zero; zero for a
	// budget that never resets.
	WindowEnd time.Time
}

// Error states the amounts and when the window ends.
func (e *BudgetError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	msg := fmt.Sprintf("imagegen: budget exceeded: the request needs %s but %s is spent and %s reserved of the %s limit",
		costFormatUSD(e.Requested), costFormatUSD(e.Spent), costFormatUSD(e.Reserved), costFormatUSD(e.Limit))
	if e.WindowEnd.IsZero() {
		return msg + "; raise the limit"
	}
	return msg + "; wait until " + e.WindowEnd.UTC().Format(time.RFC3339) + " or raise the limit"
}

// Is reports whether target is ErrBudgetExceeded.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExceeded }

// Reserve sets aside estimate, such as from Catalog.EstimateCost, for one
// request before it is sent. It returns a *BudgetError, matching
// ErrBudgetExceeded, when spent plus reserved plus the estimate would pass
// the limit. An unknown estimate reserves the WithUnknownCostPerImage amount
// for each of its Images (at least one), or fails with ErrCostUnknown when
// that option is not set. Reserve does not wait; it returns ctx.Err() when
// ctx is already done.
//
// Every Reservation must end with exactly one Settle, SettleFailure or
// Release; later calls do nothing.
func (b *Budget) Reserve(ctx context.Context, estimate Cost) (*Reservation, error) {
	if b == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var amount int64
	switch {
	case estimate.Known && (estimate.USD < 0 || math.IsNaN(estimate.USD)):
		return nil, fmt.Errorf("%w: the budget estimate %v is negative or not a number", ErrCostUnknown, estimate.USD)
	case estimate.Known:
		amount = usdToMicros(estimate.USD)
	case b.unknownPerImage > 0:
		amount = int64(max(estimate.Images, 1)) * b.unknownPerImage
	default:
		return nil, fmt.Errorf("%w: the budget cannot check a request of unknown cost (%s); set WithUnknownCostPerImage or add the model's prices to the catalog",
			ErrCostUnknown, estimate.Detail)
	}

	now := b.now() // read before locking: the clock is caller code
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(now)
	if b.spent+b.reserved+amount > b.limit {
		return nil, &BudgetError{
			Limit:     microsToUSD(b.limit),
			Spent:     microsToUSD(b.spent),
			Reserved:  microsToUSD(b.reserved),
			Requested: microsToUSD(amount),
			WindowEnd: b.end,
		}
	}
	b.reserved += amount
	return &Reservation{budget: b, amount: amount}, nil
}

// BudgetSnapshot is a Budget's state at one moment. Amounts are in US
// dollars.
type BudgetSnapshot struct {
	Limit    float64
	Spent    float64
	Reserved float64
	// Remaining is Limit minus Spent and Reserved, or zero when they pass
	// it, which happens when settled costs exceed their estimates.
	Remaining float64
	// WindowStart and WindowEnd bound the current window; WindowEnd is zero
	// for a budget that never resets.
	WindowStart, WindowEnd time.Time
}

// Snapshot returns the current window's state.
func (b *Budget) Snapshot() BudgetSnapshot {
	if b == nil {
		return BudgetSnapshot{}
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(now)
	return BudgetSnapshot{
		Limit:       microsToUSD(b.limit),
		Spent:       microsToUSD(b.spent),
		Reserved:    microsToUSD(b.reserved),
		Remaining:   microsToUSD(max(b.limit-b.spent-b.reserved, 0)),
		WindowStart: b.start,
		WindowEnd:   b.end,
	}
}

// Reservation is an amount set aside by Budget.Reserve for one request. It
// is safe for concurrent use, and its first Settle, SettleFailure or Release
// is the only one that counts. A nil *Reservation does nothing.
type Reservation struct {
	budget *Budget
	amount int64 // micro-dollars
	done   bool  // guarded by budget.mu
}

// USD returns the reserved amount in US dollars.
func (r *Reservation) USD() float64 {
	if r == nil {
		return 0
	}
	return microsToUSD(r.amount)
}

// Settle replaces the reservation by the actual cost of a completed request,
// which may be above the estimate and so take spending past the limit. An
// unknown actual cost counts the reserved amount as spent.
func (r *Reservation) Settle(actual Cost) {
	spent := int64(-1)
	if actual.Known && actual.USD >= 0 {
		spent = usdToMicros(actual.USD)
	}
	r.finish(spent)
}

// SettleFailure ends the reservation of a failed request. When
// class.MayHaveBilled (a timeout or an unknown outcome), the service may have
// billed the request, so the reserved amount counts as spent. Otherwise it is
// released.
func (r *Reservation) SettleFailure(class Class) {
	if class.MayHaveBilled() {
		r.finish(-1)
		return
	}
	r.finish(0)
}

// Release returns the reserved amount, for a request that was not sent or
// failed without being billed.
func (r *Reservation) Release() { r.finish(0) }

// finish moves the reservation to spent micro-dollars; -1 means the reserved
// amount.
func (r *Reservation) finish(spent int64) {
	if r == nil || r.budget == nil {
		return
	}
	b := r.budget
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if spent < 0 {
		spent = r.amount
	}
	b.rollLocked(now)
	b.reserved -= r.amount
	b.spent = min(b.spent+spent, maxBudgetMicros)
}

// maxBudgetMicros bounds conversions and the spent amount so that sums of a
// few amounts cannot overflow int64.
const maxBudgetMicros = math.MaxInt64 / 16

// usdToMicros rounds usd up to whole micro-dollars, ignoring float noise
// below a millionth of a micro-dollar.
func usdToMicros(usd float64) int64 {
	micros := math.Ceil(usd*microsPerUSD - 1e-6)
	switch {
	case !(micros > 0):
		return 0
	case micros >= maxBudgetMicros:
		return maxBudgetMicros
	}
	return int64(micros)
}

func microsToUSD(micros int64) float64 { return float64(micros) / microsPerUSD }
