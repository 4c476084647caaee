package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// maxKeysPerReason bounds the sample keys a summary keeps for each skip reason.
const maxKeysPerReason = 100

// SkipLog counts skipped samples and shards by reason, keeping the first keys of each.
type SkipLog struct {
	mu      sync.Mutex
	samples map[string]*SkipCount
	shards  []ShardSkip
}

// SkipCount is the number of samples skipped for one reason, with up to 100 of their keys.
type SkipCount struct {
	Count int64    `json:"count"`
	Keys  []string `json:"keys"`
}

// ShardSkip is a shard that was dropped in part or in whole.
type ShardSkip struct {
	Shard  string `json:"shard"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// SkipReport is a copy of a SkipLog.
type SkipReport struct {
	Total   int64                 `json:"total"`
	Reasons map[string]*SkipCount `json:"by_reason"`
	Shards  []ShardSkip           `json:"shards"`
}

// Empty reports whether nothing was skipped, neither a sample nor a shard.
func (r SkipReport) Empty() bool { return r.Total == 0 && len(r.Shards) == 0 }

// Brief lists the bad shards and the skip reasons, the first few of each, in one line: what
// to tell a user whose run produced nothing.
func (r SkipReport) Brief() string {
	var parts []string
	for i, sh := range r.Shards {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more shard errors", len(r.Shards)-3))
			break
		}
		parts = append(parts, sh.Error)
	}
	reasons := make([]string, 0, len(r.Reasons))
	for reason := range r.Reasons {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	for _, reason := range reasons {
		c := r.Reasons[reason]
		parts = append(parts, fmt.Sprintf("%d skipped as %s (%s)", c.Count, reason, strings.Join(c.Keys[:min(len(c.Keys), 3)], ", ")))
	}
	return strings.Join(parts, "; ")
}

func (l *SkipLog) add(se *SampleError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.samples == nil {
		l.samples = map[string]*SkipCount{}
	}
	c := l.samples[se.Reason]
	if c == nil {
		c = &SkipCount{}
		l.samples[se.Reason] = c
	}
	c.Count++
	if len(c.Keys) < maxKeysPerReason {
		c.Keys = append(c.Keys, se.Meta.String())
	}
}

// Add records a sample dropped outside the runtime's stages (by the batcher, say).
func (l *SkipLog) Add(se *SampleError) { l.add(se) }

func (l *SkipLog) addShard(e *ShardError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shards = append(l.shards, ShardSkip{Shard: e.Shard, Reason: e.Reason, Error: e.Error()})
}

// Report copies the log.
func (l *SkipLog) Report() SkipReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := SkipReport{Reasons: map[string]*SkipCount{}, Shards: append([]ShardSkip{}, l.shards...)}
	for k, c := range l.samples {
		r.Total += c.Count
		r.Reasons[k] = &SkipCount{Count: c.Count, Keys: append([]string(nil), c.Keys...)}
	}
	sort.Slice(r.Shards, func(i, j int) bool { return r.Shards[i].Shard < r.Shards[j].Shard })
	return r
}
