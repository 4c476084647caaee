package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// lazyS3 makes the S3 client once, at the first s3:// name, so that a run without one reads
// no AWS config.
type lazyS3 struct {
	cfg  Config
	once sync.Once
	c    *s3.Client
	err  error
}

func (l *lazyS3) client(ctx context.Context) (*s3.Client, error) {
	l.once.Do(func() { l.c, l.err = newS3Client(ctx, l.cfg) })
	return l.c, l.err
}

// newS3Client loads the AWS config as the AWS SDKs do (environment, shared config and
// credentials files, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) and applies cfg's overrides.
func newS3Client(ctx context.Context, cfg Config) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	// Our own retries resume a stream at the byte it was cut; the SDK's would retry only the
	// start of a request, with counts of their own.
	opts = append(opts, awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("remote: loading the AWS config: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		custom := o.BaseEndpoint != nil
		if custom && o.Region == "" {
			o.Region = "us-east-1" // S3-compatible stores take any region; the SDK needs one
		}
		o.UsePathStyle = custom
		if cfg.PathStyle != nil {
			o.UsePathStyle = *cfg.PathStyle
		}
		// Checksums only where S3 requires them: many S3-compatible stores reject the
		// trailing checksums newer SDKs send by default.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// splitS3 splits s3://bucket/key.
func splitS3(name string) (bucket, key string, err error) {
	rest := strings.TrimPrefix(name, "s3://")
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%s: want s3://bucket/key", name)
	}
	return bucket, key, nil
}

// s3Backend reads one object: HeadObject for its size and ETag, GetObject with Range and
// IfMatch to stream it from an offset.
type s3Backend struct {
	c           *s3.Client
	bucket, key string
}

func (b *s3Backend) resumable() bool { return true }

func (b *s3Backend) stat(ctx context.Context) (objectInfo, error) {
	out, err := b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &b.key})
	if err != nil {
		return objectInfo{}, s3Error(err)
	}
	return objectInfo{size: aws.ToInt64(out.ContentLength), etag: aws.ToString(out.ETag)}, nil
}

func (b *s3Backend) get(ctx context.Context, off int64, want objectInfo) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &b.key, Range: aws.String(fmt.Sprintf("bytes=%d-", off))}
	if want.etag != "" {
		in.IfMatch = aws.String(want.etag)
	}
	out, err := b.c.GetObject(ctx, in)
	if err != nil {
		return nil, s3Error(err)
	}
	name := "s3://" + b.bucket + "/" + b.key
	if err := checkVersion(name, want, aws.ToString(out.ETag), aws.ToString(out.ContentRange), off); err != nil {
		out.Body.Close()
		return nil, err
	}
	return out.Body, nil
}

// s3Error maps an S3 error as statusError maps an HTTP answer.
func s3Error(err error) error {
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return err // no answer: the network; worth a retry
	}
	switch code := re.HTTPStatusCode(); {
	case code == 404:
		return permanent{fmt.Errorf("%w: %w", err, os.ErrNotExist)}
	case code == 412:
		return fmt.Errorf("%w: %w", err, ErrChanged)
	case code >= 500 || code == 429:
		return err
	}
	return permanent{err}
}

// Put uploads a local file to an s3:// name.
func (s *Store) Put(ctx context.Context, name, localPath string) error {
	c, bucket, key, err := s.s3Target(ctx, name)
	if err != nil {
		return err
	}
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	return withRetries(ctx, s.cfg, func() error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return permanent{err}
		}
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f})
		if err != nil {
			return fmt.Errorf("uploading %s to %s: %w", localPath, name, s3Error(err))
		}
		return nil
	})
}

// Exists tells whether an s3:// object exists.
func (s *Store) Exists(ctx context.Context, name string) (bool, error) {
	c, bucket, key, err := s.s3Target(ctx, name)
	if err != nil {
		return false, err
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err = s3Error(err); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes an s3:// object.
func (s *Store) Delete(ctx context.Context, name string) error {
	c, bucket, key, err := s.s3Target(ctx, name)
	if err != nil {
		return err
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	return s3Error(err)
}

func (s *Store) s3Target(ctx context.Context, name string) (*s3.Client, string, string, error) {
	if KindOf(name) != KindS3 {
		return nil, "", "", fmt.Errorf("%s: only s3:// names can be written", name)
	}
	bucket, key, err := splitS3(name)
	if err != nil {
		return nil, "", "", err
	}
	c, err := s.s3.client(ctx)
	return c, bucket, key, err
}
