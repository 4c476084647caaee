package objstore

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"pipeline/stages/shardlist"
)

// Expand expands shard patterns of every kind into the numbered shard list: brace groups
// everywhere (pipe: commands included, as WebDataset does), globs on local paths and in S3
// (by listing the bucket under the pattern's literal prefix). HTTP has no listing, so a glob
// in an http(s):// name is an error; a pipe: command is never globbed.
func (s *Store) Expand(ctx context.Context, patterns ...string) ([]shardlist.Shard, error) {
	return shardlist.ExpandFunc(func(name string) ([]string, error) { return s.glob(ctx, name) }, patterns...)
}

func (s *Store) glob(ctx context.Context, name string) ([]string, error) {
	switch KindOf(name) {
	case KindPipe:
		return []string{name}, nil
	case KindHTTP:
		return nil, fmt.Errorf("%s: a glob needs a listing, which HTTP has not: name the files with a brace range", name)
	case KindS3:
		return s.globS3(ctx, name)
	}
	return filepath.Glob(name)
}

// globS3 lists the keys under the literal prefix of name's key and matches them with
// path.Match, sorted by key.
func (s *Store) globS3(ctx context.Context, name string) ([]string, error) {
	bucket, pattern, err := splitS3(name)
	if err != nil {
		return nil, err
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c, err := s.s3.client(ctx)
	if err != nil {
		return nil, err
	}
	prefix := pattern[:strings.IndexAny(pattern, "*?[")]
	var out []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", name, s3Error(err))
		}
		for _, obj := range page.Contents {
			if ok, _ := path.Match(pattern, *obj.Key); ok {
				out = append(out, "s3://"+bucket+"/"+*obj.Key)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
