// Package shardlist turns shard patterns into a numbered list of shard paths and splits that
// list across ranks (processes) and reader workers.
//
// A pattern may hold brace groups and glob characters:
//
//	/data/train-{000000..000127}.tar   numeric range, zero-padded to the width of its bounds
//	/data/part-{0..3}.tar              numeric range without padding
//	/data/{train,extra}-000.tar        comma list
//	/data/train-*.tar                  glob (filepath.Match syntax), matches sorted by name
//
// Braces are expanded first, then each result that still holds a glob character is globbed.
// A path named literally (by a brace range, say) is kept even when the file does not exist, so
// that the reader reports it as a missing shard instead of the run silently shrinking; a glob
// that matches nothing is an error at once.
package shardlist

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Shard is one shard file with its number: its position in the expanded list of all shards,
// the same in every rank, so that a sample's global index can be built from it.
type Shard struct {
	Path   string
	Number int
}

// maxExpansion bounds what one pattern may expand to, so that a typo like {0..99999999} fails
// instead of eating memory.
const maxExpansion = 1 << 22

// Expand expands the patterns in order into a list of shards. A path produced twice is kept
// once, at its first place.
func Expand(patterns ...string) ([]Shard, error) { return ExpandFunc(filepath.Glob, patterns...) }

// ExpandFunc is Expand with glob matching the names that hold glob characters (package
// objstore passes one that also lists object stores).
func ExpandFunc(glob func(name string) ([]string, error), patterns ...string) ([]Shard, error) {
	var out []Shard
	seen := map[string]bool{}
	for _, p := range patterns {
		paths, err := expandOne(p, glob)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			if seen[path] {
				continue
			}
			seen[path] = true
			out = append(out, Shard{Path: path, Number: len(out)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("shard patterns %q name no shard", patterns)
	}
	return out, nil
}

func expandOne(pattern string, glob func(string) ([]string, error)) ([]string, error) {
	names, err := Braces(pattern)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range names {
		if !strings.ContainsAny(name, "*?[") {
			out = append(out, name)
			continue
		}
		matches, err := glob(name)
		if err != nil {
			return nil, fmt.Errorf("shard pattern %q: %w", pattern, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("shard pattern %q: %s matches no file", pattern, name)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}

// Braces expands every brace group of s, left to right: "a{1..3}b" gives a1b, a2b, a3b.
// A group that is neither a range nor a comma list ("{x}") is kept as it is.
func Braces(s string) ([]string, error) {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}, nil
	}
	close := matchingBrace(s, open)
	if close < 0 {
		return nil, fmt.Errorf("pattern %q: unbalanced '{'", s)
	}
	prefix, body, suffix := s[:open], s[open+1:close], s[close+1:]
	alts, err := alternatives(body)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", s, err)
	}
	if alts == nil { // not a brace group: keep "{body}" literally and go on after it
		rest, err := Braces(suffix)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(rest))
		for i, r := range rest {
			out[i] = s[:close+1] + r
		}
		return out, nil
	}
	var out []string
	for _, a := range alts {
		more, err := Braces(prefix + a + suffix)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
		if len(out) > maxExpansion {
			return nil, fmt.Errorf("pattern %q expands to more than %d names", s, maxExpansion)
		}
	}
	return out, nil
}

func matchingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// alternatives returns the choices of one brace group's body, or nil when the body is not a
// range or a comma list.
func alternatives(body string) ([]string, error) {
	if lo, hi, ok := strings.Cut(body, ".."); ok && isDigits(lo) && isDigits(hi) {
		return numericRange(lo, hi)
	}
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, body[start:i])
				start = i + 1
			}
		}
	}
	if parts == nil {
		return nil, nil
	}
	return append(parts, body[start:]), nil
}

// numericRange expands lo..hi; when either bound has a leading zero the numbers are padded to
// the width of the wider bound, as in bash and WebDataset.
func numericRange(lo, hi string) ([]string, error) {
	a, err := strconv.Atoi(lo)
	if err != nil {
		return nil, fmt.Errorf("range bound %q: %w", lo, err)
	}
	b, err := strconv.Atoi(hi)
	if err != nil {
		return nil, fmt.Errorf("range bound %q: %w", hi, err)
	}
	if b < a {
		return nil, fmt.Errorf("range {%s..%s} runs backwards", lo, hi)
	}
	if b-a >= maxExpansion {
		return nil, fmt.Errorf("range {%s..%s} has more than %d values", lo, hi, maxExpansion)
	}
	width := 0
	if (len(lo) > 1 && lo[0] == '0') || (len(hi) > 1 && hi[0] == '0') {
		width = max(len(lo), len(hi))
	}
	out := make([]string, 0, b-a+1)
	for n := a; n <= b; n++ {
		out = append(out, fmt.Sprintf("%0*d", width, n))
	}
	return out, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ForRank returns the part of list that rank (of world ranks) reads: every world-th element
// starting at rank, so ranks are disjoint and together cover the list. It is an error when the
// list has fewer elements than there are ranks: some rank would get nothing and stall the
// others at their first collective step.
func ForRank[T any](list []T, rank, world int) ([]T, error) {
	if world < 1 || rank < 0 || rank >= world {
		return nil, fmt.Errorf("rank %d of world size %d is not a valid rank", rank, world)
	}
	if len(list) < world {
		return nil, fmt.Errorf("%d shards cannot be split over %d ranks: each rank needs at least one", len(list), world)
	}
	return Stride(list, rank, world), nil
}

// Stride returns every n-th element of list starting at i: worker i's share of n workers.
func Stride[T any](list []T, i, n int) []T {
	var out []T
	for k := i; k < len(list); k += n {
		out = append(out, list[k])
	}
	return out
}

// RankFromEnv reads the rank and world size that torchrun (and most launchers) export as RANK
// and WORLD_SIZE; unset means rank 0 of 1.
func RankFromEnv() (rank, world int, err error) {
	rank, world = 0, 1
	if v := os.Getenv("RANK"); v != "" {
		if rank, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("env RANK=%q: %w", v, err)
		}
	}
	if v := os.Getenv("WORLD_SIZE"); v != "" {
		if world, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("env WORLD_SIZE=%q: %w", v, err)
		}
	}
	if world < 1 || rank < 0 || rank >= world {
		return 0, 0, fmt.Errorf("env RANK=%d WORLD_SIZE=%d is not a valid rank", rank, world)
	}
	return rank, world, nil
}
