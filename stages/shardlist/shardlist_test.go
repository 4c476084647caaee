package shardlist

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBraces(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"plain.tar", []string{"plain.tar"}},
		{"t-{000000..000002}.tar", []string{"t-000000.tar", "t-000001.tar", "t-000002.tar"}},
		{"t-{0..3}.tar", []string{"t-0.tar", "t-1.tar", "t-2.tar", "t-3.tar"}},
		{"t-{8..11}", []string{"t-8", "t-9", "t-10", "t-11"}},
		{"t-{08..10}", []string{"t-08", "t-09", "t-10"}},
		{"{a,b}-{0..1}", []string{"a-0", "a-1", "b-0", "b-1"}},
		{"x{a,{b,c}}y", []string{"xay", "xby", "xcy"}},
		{"keep{x}{0..1}", []string{"keep{x}0", "keep{x}1"}},
	}
	for _, c := range cases {
		got, err := Braces(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Braces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"a{0..3", "a{5..1}", "a{0..99999999}"} {
		if _, err := Braces(bad); err == nil {
			t.Errorf("Braces(%q) accepted a bad pattern", bad)
		}
	}
}

func TestExpandGlobAndMissing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"train-2.tar", "train-0.tar", "train-1.tar", "other.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Expand(filepath.Join(dir, "train-*.tar"), filepath.Join(dir, "train-{1..3}.tar"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, s := range got {
		if s.Number != i {
			t.Errorf("shard %s numbered %d, want %d", s.Path, s.Number, i)
		}
		names = append(names, filepath.Base(s.Path))
	}
	// glob matches sorted; the brace range keeps train-3.tar although it does not exist, and
	// train-1/2 named twice are kept once.
	want := []string{"train-0.tar", "train-1.tar", "train-2.tar", "train-3.tar"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("Expand = %q, want %q", names, want)
	}
	if _, err := Expand(filepath.Join(dir, "nothing-*.tar")); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("a glob matching nothing must fail, got %v", err)
	}
}

func TestForRankDisjointAndCovering(t *testing.T) {
	list := make([]int, 11)
	for i := range list {
		list[i] = i
	}
	for world := 1; world <= 11; world++ {
		seen := map[int]int{}
		for rank := 0; rank < world; rank++ {
			part, err := ForRank(list, rank, world)
			if err != nil {
				t.Fatal(err)
			}
			if len(part) == 0 {
				t.Fatalf("world %d rank %d got nothing", world, rank)
			}
			for _, x := range part {
				seen[x]++
			}
		}
		for _, x := range list {
			if seen[x] != 1 {
				t.Fatalf("world %d: element %d read %d times", world, x, seen[x])
			}
		}
	}
	if _, err := ForRank(list, 0, 12); err == nil {
		t.Fatal("11 shards over 12 ranks must be an error")
	}
	if _, err := ForRank(list, 3, 3); err == nil {
		t.Fatal("rank 3 of 3 must be an error")
	}
}

func TestRankFromEnv(t *testing.T) {
	t.Setenv("RANK", "2")
	t.Setenv("WORLD_SIZE", "4")
	r, w, err := RankFromEnv()
	if err != nil || r != 2 || w != 4 {
		t.Fatalf("RankFromEnv = %d, %d, %v; want 2, 4", r, w, err)
	}
	t.Setenv("RANK", "4")
	if _, _, err := RankFromEnv(); err == nil {
		t.Fatal("RANK=4 WORLD_SIZE=4 must be an error")
	}
	t.Setenv("RANK", "")
	t.Setenv("WORLD_SIZE", "")
	if r, w, err := RankFromEnv(); err != nil || r != 0 || w != 1 {
		t.Fatalf("unset env = %d, %d, %v; want 0, 1", r, w, err)
	}
}
