package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"pipeline/pipeline"
)

// writeShards writes n shards of per samples each under dir; sample keys are s<shard>_<i> and
// labels i. bad lists sample keys written without a label.
func writeShards(t *testing.T, dir string, n, per int, bad map[string]bool) string {
	t.Helper()
	for s := 0; s < n; s++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add := func(name, data string) {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < per; i++ {
			key := fmt.Sprintf("s%d_%02d", s, i)
			add(key+".jpg", "img-"+key)
			if !bad[key] {
				add(key+".cls", fmt.Sprint(i))
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("train-%03d.tar", s)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, fmt.Sprintf("train-{000..%03d}.tar", n-1))
}

func newAccount(limit int64) *pipeline.Account {
	return pipeline.NewBudget(pipeline.BudgetSplit{Encoded: limit, Decoded: 1, Views: 1, Batches: 1}).Encoded
}

func intp(v int) *int { return &v }

// outcome renders one Next result: "e<epoch>:<key>", "e<epoch>:<key>!<reason>" or
// "shard!<reason>:<file>".
func outcome(t *testing.T, it *pipeline.Item, err error) string {
	t.Helper()
	if se, ok := pipeline.AsSampleError(err); ok {
		return fmt.Sprintf("e%d:%s!%s", se.Meta.Epoch, se.Meta.Key, se.Reason)
	}
	if se, ok := pipeline.AsShardError(err); ok {
		return "shard!" + se.Reason + ":" + filepath.Base(se.Shard)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := "img-" + it.Key; it.Encoded != nil && string(it.Encoded) != want {
		t.Fatalf("%s carries %q, want %q", it.Meta, it.Encoded, want)
	}
	return fmt.Sprintf("e%d:%s", it.Epoch, it.Key)
}

// drain reads src to the end and checks that every byte it handed out comes back.
func drain(t *testing.T, src *Source, acct *pipeline.Account) []string {
	t.Helper()
	var out []string
	for {
		it, err := src.Next(context.Background())
		if err == io.EOF {
			break
		}
		out = append(out, outcome(t, it, err))
		if it != nil {
			it.Release()
		}
		if len(out) > 100000 {
			t.Fatal("source does not end")
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if acct.InUse() != 0 {
		t.Fatalf("%d bytes still held at the end", acct.InUse())
	}
	return out
}

func run(t *testing.T, cfg Config, opt Options) []string {
	t.Helper()
	acct := newAccount(1 << 20)
	opt.Account = acct
	src, err := Open(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, src, acct)
}

func samplesOnly(out []string) []string {
	var s []string
	for _, o := range out {
		if !strings.HasPrefix(o, "shard!") {
			s = append(s, o)
		}
	}
	return s
}

// tailAfter is out after its k-th sample (all of it for k = 0), bad shards included.
func tailAfter(out []string, k int) []string {
	for i, o := range out {
		if k == 0 {
			return out[i:]
		}
		if !strings.HasPrefix(o, "shard!") {
			k--
		}
	}
	return nil
}

func TestDeterministicAndShuffled(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 6, 10, nil)
	cfg := Config{Shards: Patterns{pattern}, ShuffleBuffer: 16, Readers: 3, Rank: intp(0), WorldSize: intp(1)}
	a := run(t, cfg, Options{Seed: 7, Epochs: 2})
	b := run(t, cfg, Options{Seed: 7, Epochs: 2})
	if !slices.Equal(a, b) {
		t.Fatal("the same config and seed gave two different streams")
	}
	if len(a) != 120 {
		t.Fatalf("%d samples in 2 epochs, want 120", len(a))
	}
	c := run(t, cfg, Options{Seed: 8, Epochs: 2})
	if slices.Equal(a, c) {
		t.Fatal("another seed gave the same stream")
	}
	// each epoch holds every sample once, in another order
	e0, e1 := a[:60], a[60:]
	for i := range e1 {
		e1[i] = strings.Replace(e1[i], "e1:", "e0:", 1)
	}
	if slices.Equal(e0, e1) {
		t.Fatal("both epochs have the same order")
	}
	s0, s1 := slices.Sorted(slices.Values(e0)), slices.Sorted(slices.Values(e1))
	if !slices.Equal(s0, s1) || len(slices.Compact(s0)) != 60 {
		t.Fatal("an epoch is not a permutation of the 60 samples")
	}
}

func TestShuffleBufferIsAPermutation(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 2, 20, nil)
	no := false
	plain := run(t, Config{Shards: Patterns{pattern}, ShuffleShards: &no, Rank: intp(0), WorldSize: intp(1)}, Options{})
	for i := 1; i < len(plain); i++ {
		if plain[i-1] >= plain[i] {
			t.Fatalf("without shuffling the stream is out of shard order at %d: %q", i, plain[i-1:i+1])
		}
	}
	shuffled := run(t, Config{Shards: Patterns{pattern}, ShuffleShards: &no, ShuffleBuffer: 8, Rank: intp(0), WorldSize: intp(1)}, Options{Seed: 3})
	if slices.Equal(plain, shuffled) {
		t.Fatal("the shuffle buffer did not change the order")
	}
	if !slices.Equal(plain, slices.Sorted(slices.Values(shuffled))) {
		t.Fatalf("the shuffle buffer lost or duplicated samples: %q", shuffled)
	}
}

func TestRanksDisjointAndCovering(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 7, 5, nil)
	all := map[string]int{}
	for rank := 0; rank < 3; rank++ {
		out := run(t, Config{Shards: Patterns{pattern}, ShuffleBuffer: 4, Rank: intp(rank), WorldSize: intp(3)}, Options{Seed: 1})
		if len(out) == 0 {
			t.Fatalf("rank %d read nothing", rank)
		}
		for _, o := range out {
			all[o]++
		}
	}
	if len(all) != 35 {
		t.Fatalf("ranks together read %d distinct samples, want 35", len(all))
	}
	for k, n := range all {
		if n != 1 {
			t.Fatalf("%s read by %d ranks", k, n)
		}
	}
	_, err := Open(Config{Shards: Patterns{pattern}, Rank: intp(0), WorldSize: intp(8)}, Options{Account: newAccount(1 << 20)})
	if err == nil || !strings.Contains(err.Error(), "8 ranks") {
		t.Fatalf("7 shards over 8 ranks: got %v", err)
	}
	t.Setenv("RANK", "1")
	t.Setenv("WORLD_SIZE", "7")
	fromEnv := run(t, Config{Shards: Patterns{pattern}}, Options{})
	if len(fromEnv) != 5 || !strings.HasPrefix(fromEnv[0], "e0:s1_") {
		t.Fatalf("rank 1 of 7 from the env read %q, want the 5 samples of shard 1", fromEnv)
	}
}

// resumeConfigs covers the paths a resume has to replay exactly: several readers, shuffle
// buffers of every size, bad samples, a missing and a truncated shard.
func resumeConfigs(t *testing.T) []Config {
	dir := t.TempDir()
	pattern := writeShards(t, dir, 4, 9, map[string]bool{"s1_03": true, "s2_08": true})
	// shard 004 is missing; shard 002 is cut in the middle of its sample 5
	full, err := os.ReadFile(filepath.Join(dir, "train-002.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train-002.tar"), full[:5*2048+700], 0o644); err != nil {
		t.Fatal(err)
	}
	pattern = strings.Replace(pattern, "003}", "004}", 1)
	var cfgs []Config
	for _, readers := range []int{1, 3} {
		for _, buffer := range []int{0, 5, 64} {
			cfgs = append(cfgs, Config{Shards: Patterns{pattern}, ShuffleBuffer: buffer, Readers: readers, Rank: intp(0), WorldSize: intp(1)})
		}
	}
	return cfgs
}

func TestResumeEqualsTail(t *testing.T) {
	for _, cfg := range resumeConfigs(t) {
		t.Run(fmt.Sprintf("readers%d_buffer%d", cfg.Readers, cfg.ShuffleBuffer), func(t *testing.T) {
			opt := Options{Seed: 11, Epochs: 2}
			full := run(t, cfg, opt)
			if !slices.Contains(full, "shard!missing_shard:train-004.tar") || !slices.Contains(full, "shard!truncated_shard:train-002.tar") {
				t.Fatalf("the broken shards are not reported: %q", full)
			}
			samples := samplesOnly(full)
			if n := len(samples); n != 2*(9*3+5) {
				t.Fatalf("%d samples in 2 epochs, want %d", n, 2*(9*3+5))
			}
			perEpoch := int64(len(samples) / 2)
			// A resumed run yields what the full run yielded after its k-th sample: the samples,
			// and the bad shards it had not reported yet (no shard twice).
			for k := range samples {
				start := Position{Epoch: k / int(perEpoch), Offset: int64(k) % perEpoch}
				opt.Start = start
				tail, want := run(t, cfg, opt), tailAfter(full, k)
				if !slices.Equal(tail, want) {
					t.Fatalf("resume at %+v:\n got %q\nwant %q", start, tail, want)
				}
			}
			// the end of an epoch is a valid resume point too
			opt.Start = Position{Epoch: 0, Offset: perEpoch}
			if tail := samplesOnly(run(t, cfg, opt)); !slices.Equal(tail, samples[perEpoch:]) {
				t.Fatalf("resume at the end of epoch 0: got %q", tail)
			}
			opt.Start = Position{Epoch: 0, Offset: perEpoch + 1}
			if _, err := readErr(cfg, opt); err == nil || !strings.Contains(err.Error(), "past the end") {
				t.Fatalf("resume past the end of an epoch: got %v", err)
			}
			// right after the whole run: nothing left; past it: a state from another config
			opt.Start = Position{Epoch: 2, Offset: 0}
			if tail := run(t, cfg, opt); len(tail) != 0 {
				t.Fatalf("resume after the last epoch: got %q", tail)
			}
			for _, st := range []Position{{Epoch: 2, Offset: 1}, {Epoch: 5, Offset: 3}} {
				opt.Start = st
				if _, err := Open(cfg, Options{Seed: 11, Epochs: 2, Start: st, Account: newAccount(1 << 20)}); err == nil || !strings.Contains(err.Error(), "past the end of the run's 2 epochs") {
					t.Fatalf("resume at %+v of a 2-epoch run: got %v", st, err)
				}
			}
		})
	}
}

func readErr(cfg Config, opt Options) ([]string, error) {
	opt.Account = newAccount(1 << 20)
	src, err := Open(cfg, opt)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	for {
		it, err := src.Next(context.Background())
		if err == io.EOF {
			return nil, nil
		}
		if err != nil && !errors.As(err, new(*pipeline.SampleError)) && !errors.As(err, new(*pipeline.ShardError)) {
			return nil, err
		}
		if it != nil {
			it.Release()
		}
	}
}

// countingAccount counts allocations (from several readers at once).
type countingAccount struct {
	*pipeline.Account
	allocs atomic.Int64
}

func (c *countingAccount) Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error) {
	c.allocs.Add(1)
	return c.Account.Alloc(ctx, it, n)
}

// TestResumeReadsOnlyTheTail counts the images a resumed run reads: exactly the samples it
// delivers, none of those delivered before the resume point.
func TestResumeReadsOnlyTheTail(t *testing.T) {
	root := t.TempDir()
	for c := 0; c < 3; c++ {
		for i := 0; i < 10; i++ {
			p := filepath.Join(root, fmt.Sprintf("class%d", c), fmt.Sprintf("%02d.jpg", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(fmt.Sprintf("img-class%d/%02d.jpg", c, i)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tars := writeShards(t, t.TempDir(), 4, 8, nil)
	for _, cfg := range []Config{
		{Folder: root, ShuffleBuffer: 6, Readers: 2, Rank: intp(0), WorldSize: intp(1)},
		{Shards: Patterns{tars}, ShuffleBuffer: 5, Readers: 3, Rank: intp(0), WorldSize: intp(1)},
	} {
		opt := Options{Seed: 5}
		full := run(t, cfg, opt)
		for _, k := range []int{1, 7, 17, len(full) - 1} {
			opt.Start = Position{Offset: int64(k)}
			acct := &countingAccount{Account: newAccount(1 << 20)}
			opt.Account = acct.Account
			src, err := Open(cfg, opt)
			if err != nil {
				t.Fatal(err)
			}
			src.alloc.acct = acct
			if tail := drain(t, src, acct.Account); !slices.Equal(tail, full[k:]) {
				t.Fatalf("resume at %d:\n got %q\nwant %q", k, tail, full[k:])
			}
			if acct.allocs.Load() != int64(len(full)-k) {
				t.Fatalf("resume at %d of %d read %d images, want %d", k, len(full), acct.allocs.Load(), len(full)-k)
			}
		}
	}
}

func TestPositionAdvanceTracksNext(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 2, 4, map[string]bool{"s0_01": true})
	acct := newAccount(1 << 20)
	src, err := Open(Config{Shards: Patterns{pattern}, ShuffleBuffer: 3, Rank: intp(0), WorldSize: intp(1)}, Options{Epochs: 3, Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	var pos Position
	for {
		it, err := src.Next(context.Background())
		if err == io.EOF {
			break
		}
		se, bad := pipeline.AsSampleError(err)
		switch {
		case bad:
			pos = pos.Advance(se.Meta)
		case err != nil:
			t.Fatal(err)
		default:
			pos = pos.Advance(it.Meta)
			it.Release()
		}
		if got := src.Position(); got != pos {
			t.Fatalf("Position() = %+v, Advance gives %+v", got, pos)
		}
	}
	if pos != (Position{Epoch: 2, Offset: 8}) {
		t.Fatalf("last position %+v, want epoch 2 offset 8", pos)
	}
}

func TestShuffleBufferOverBudgetFails(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 1, 40, nil)
	acct := newAccount(64 << 10) // 16 buffers of 4 KiB
	src, err := Open(Config{Shards: Patterns{pattern}, ShuffleBuffer: 32, Rank: intp(0), WorldSize: intp(1)}, Options{Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lower shuffle_buffer") {
		t.Fatalf("a shuffle buffer larger than the budget must fail, got %v", err)
	}
}

func TestCloseReleasesReadAhead(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 4, 10, nil)
	acct := newAccount(1 << 20)
	src, err := Open(Config{Shards: Patterns{pattern}, ShuffleBuffer: 10, Readers: 4, Rank: intp(0), WorldSize: intp(1)}, Options{Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	it.Release()
	if acct.InUse() == 0 {
		t.Fatal("nothing read ahead: the test shows nothing")
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if acct.InUse() != 0 {
		t.Fatalf("%d bytes still held after Close", acct.InUse())
	}
}

func TestCancelStopsReaders(t *testing.T) {
	pattern := writeShards(t, t.TempDir(), 4, 10, nil)
	acct := newAccount(1 << 20)
	src, err := Open(Config{Shards: Patterns{pattern}, Readers: 4, Rank: intp(0), WorldSize: intp(1)}, Options{Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	it, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	it.Release()
	cancel()
	for {
		it, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("after cancel: got %v", err)
			}
			break
		}
		it.Release() // read ahead before the cancel
	}
	src.Close()
	if acct.InUse() != 0 {
		t.Fatalf("%d bytes still held", acct.InUse())
	}
}

func TestFolderAndSynthetic(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"b/1.png", "a/2.jpg", "a/1.JPEG"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("img-"+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	no := false
	got := run(t, Config{Folder: root, ShuffleShards: &no, Rank: intp(0), WorldSize: intp(1)}, Options{})
	if want := []string{"e0:a/1.JPEG", "e0:a/2.jpg", "e0:b/1.png"}; !slices.Equal(got, want) {
		t.Fatalf("folder: got %q, want %q", got, want)
	}

	acct := newAccount(1 << 20)
	src, err := Open(Config{Synthetic: &SyntheticConfig{Count: 10, Width: 32, Height: 24}, ShuffleBuffer: 4, Rank: intp(1), WorldSize: intp(2)},
		Options{Epochs: 2, Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	var idx []int64
	for {
		it, err := src.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(it.Encoded) < 100 || it.Encoded[0] != 0xff || it.Encoded[1] != 0xd8 {
			t.Fatalf("synthetic sample %d is not a JPEG", it.Index)
		}
		idx = append(idx, it.Index)
		it.Release()
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	if want := []int64{1, 1, 3, 3, 5, 5, 7, 7, 9, 9}; !slices.Equal(idx, want) {
		t.Fatalf("rank 1 of 2, 2 epochs of 10 synthetic samples: indexes %v, want %v", idx, want)
	}
}

func TestConfigYAML(t *testing.T) {
	var c struct {
		Source Config `yaml:"source"`
	}
	doc := "source:\n  shards: /data/train-{000000..000003}.tar\n  shuffle_buffer: 100\n  labels: optional\n  read_timeout: 30s\n  read_retries: 2\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Source.Shards, Patterns{"/data/train-{000000..000003}.tar"}) || c.Source.ShuffleBuffer != 100 {
		t.Fatalf("parsed %+v", c.Source)
	}
	cfg, err := c.Source.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(*cfg.ReadTimeout) != 30*time.Second || *cfg.ReadRetries != 2 {
		t.Fatalf("read_timeout %v, read_retries %d", *cfg.ReadTimeout, *cfg.ReadRetries)
	}
	if _, err := (Config{Folder: "x", ReadRetries: ptrTo(-1)}).withDefaults(); err == nil {
		t.Fatal("read_retries: -1 must be an error")
	}
	// Unset, the bound is on; 0 turns it off.
	def, err := (Config{Folder: "x"}).withDefaults()
	if err != nil || time.Duration(*def.ReadTimeout) != DefaultReadTimeout || *def.ReadRetries != DefaultReadRetries {
		t.Fatalf("defaults: read_timeout %v, read_retries %v (%v)", def.ReadTimeout, def.ReadRetries, err)
	}
	var off struct {
		Source Config `yaml:"source"`
	}
	if err := yaml.Unmarshal([]byte("source:\n  folder: x\n  read_timeout: 0\n"), &off); err != nil {
		t.Fatal(err)
	}
	if cfg, err := off.Source.withDefaults(); err != nil || *cfg.ReadTimeout != 0 {
		t.Fatalf("read_timeout: 0 gave %v (%v), want 0 (off)", cfg.ReadTimeout, err)
	}
	if !*cfg.ShuffleShards || cfg.Readers != 1 || cfg.Labels != LabelsOptional {
		t.Fatalf("defaults %+v", cfg)
	}
	doc = "source:\n  shards: [a.tar, b.tar]\n  synthetic: {count: 5}\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Source.Shards) != 2 {
		t.Fatalf("list of shards parsed as %q", c.Source.Shards)
	}
	if _, err := c.Source.withDefaults(); err == nil {
		t.Fatal("shards and synthetic together must be an error")
	}
	if _, err := (Config{Folder: "x", Labels: "maybe"}).withDefaults(); err == nil {
		t.Fatal("labels: maybe must be an error")
	}
}
