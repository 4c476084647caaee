package pipeline

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

type bufferKind int

const (
	kindEncoded bufferKind = iota
	kindDecoded
	kindViews
	kindBatches
	numKinds
)

var kindNames = [numKinds]string{"encoded", "decoded", "views", "batches"}

// Budget is the run's memory budget, split into one account per kind of buffer. Each stage
// only takes from its own account and its output is given back by the next stage, so a full
// account stalls its producer (backpressure) but can never deadlock the run: the sink frees
// batches without needing anything, the batcher then frees views, and so on upstream.
type Budget struct {
	Encoded, Decoded, Views, Batches *Account

	total *usage // all accounts together
}

// usage is what is held now and the most ever held at once.
type usage struct{ inUse, peak atomic.Int64 }

// add changes what is held by n and raises the peak if it was passed.
func (u *usage) add(n int64) {
	now := u.inUse.Add(n)
	for {
		p := u.peak.Load()
		if now <= p || u.peak.CompareAndSwap(p, now) {
			return
		}
	}
}

// BudgetSplit sizes the accounts of a Budget, in bytes.
type BudgetSplit struct {
	Encoded, Decoded, Views, Batches int64
}

// Total is the whole budget.
func (s BudgetSplit) Total() int64 { return s.Encoded + s.Decoded + s.Views + s.Batches }

// NewBudget makes a budget with the given split.
func NewBudget(s BudgetSplit) *Budget {
	total := &usage{}
	return &Budget{
		Encoded: newAccount(kindEncoded, s.Encoded, total),
		Decoded: newAccount(kindDecoded, s.Decoded, total),
		Views:   newAccount(kindViews, s.Views, total),
		Batches: newAccount(kindBatches, s.Batches, total),
		total:   total,
	}
}

// Accounts lists the accounts in flow order.
func (b *Budget) Accounts() []*Account { return []*Account{b.Encoded, b.Decoded, b.Views, b.Batches} }

// Peak is the highest total ever held at once by all accounts together, sampled at each
// allocation.
func (b *Budget) Peak() int64 { return b.total.peak.Load() }

// InUse is what is held right now.
func (b *Budget) InUse() int64 {
	var n int64
	for _, a := range b.Accounts() {
		n += a.InUse()
	}
	return n
}

// Account is one share of the memory budget, with a pool of buffers it hands out.
type Account struct {
	kind  bufferKind
	limit int64
	sem   *semaphore.Weighted
	use   usage    // this account's
	total *usage   // the whole budget's
	pools sync.Map // size class -> *sync.Pool of *[]byte
}

func newAccount(k bufferKind, limit int64, total *usage) *Account {
	return &Account{kind: k, limit: limit, sem: semaphore.NewWeighted(limit), total: total}
}

// Name is the kind of buffer the account holds.
func (a *Account) Name() string { return kindNames[a.kind] }

// Limit is the account's size in bytes.
func (a *Account) Limit() int64 { return a.limit }

// InUse is the number of bytes held now.
func (a *Account) InUse() int64 { return a.use.inUse.Load() }

// Peak is the largest number of bytes ever held at once.
func (a *Account) Peak() int64 { return a.use.peak.Load() }

// ErrOverBudget reports a single buffer larger than its whole account: waiting would never end.
type ErrOverBudget struct {
	Account string
	Need    int64
	Limit   int64
}

func (e *ErrOverBudget) Error() string {
	return fmt.Sprintf("a %d-byte %s buffer is larger than its share of memory_budget (%d bytes)",
		e.Need, e.Account, e.Limit)
}

// Alloc takes a buffer of n bytes for it from the account's pool, waiting while the account
// is full. The buffer is given back by it.Release (or ReleaseEncoded, ReleaseImage).
// The contents of the returned buffer are undefined.
func (a *Account) Alloc(ctx context.Context, it *Item, n int) ([]byte, error) {
	class := SizeClass(n)
	if err := a.acquire(ctx, int64(class)); err != nil {
		return nil, err
	}
	var buf []byte
	if p, ok := a.pools.Load(class); ok {
		if b, _ := p.(*sync.Pool).Get().(*[]byte); b != nil {
			buf = (*b)[:n]
		}
	}
	if buf == nil {
		buf = make([]byte, n, class)
	}
	it.charges = append(it.charges, charge{account: a, n: int64(class), buf: buf})
	return buf, nil
}

// Reserve charges n bytes that are not a pooled buffer (an Arrow record, say) to the account.
// The caller gives them back with Return.
func (a *Account) Reserve(ctx context.Context, n int64) error { return a.acquire(ctx, n) }

// Return gives back bytes taken with Reserve.
func (a *Account) Return(n int64) { a.release(n, nil) }

func (a *Account) acquire(ctx context.Context, n int64) error {
	if n > a.limit {
		return &ErrOverBudget{Account: a.Name(), Need: n, Limit: a.limit}
	}
	if !a.sem.TryAcquire(n) {
		resume := WaitDownstream(ctx) // the stages after the caller hold the memory
		err := a.sem.Acquire(ctx, n)
		resume()
		if err != nil {
			return err
		}
	}
	a.use.add(n)
	a.total.add(n)
	return nil
}

func (a *Account) release(n int64, buf []byte) {
	if buf != nil {
		class := cap(buf)
		p, _ := a.pools.LoadOrStore(class, &sync.Pool{})
		b := buf[:0]
		p.(*sync.Pool).Put(&b)
	}
	a.use.inUse.Add(-n)
	a.total.inUse.Add(-n)
	a.sem.Release(n)
}

type charge struct {
	account *Account
	n       int64
	buf     []byte
}

// SizeClass is the capacity a pooled buffer of n bytes gets, and what Alloc charges its account:
// n rounded up to the next of 1, 1.25, 1.5 or 1.75 times a power of two, so that pooled
// buffers are reused across images of similar size while wasting at most a quarter.
func SizeClass(n int) int {
	if n <= 4096 {
		return 4096
	}
	hi := bits.Len(uint(n)) - 1 // 2^hi <= n < 2^(hi+1)
	step := 1 << (hi - 2)
	return (n + step - 1) / step * step
}
