package pipeline

import (
	"errors"
	"fmt"
)

// Skip reasons: the bad-input classes a run counts separately in its summary.
const (
	ReasonCorrupt     = "corrupt_image"      // the image bytes do not decode
	ReasonUnsupported = "unsupported_format" // not a JPEG or PNG
	ReasonEmpty       = "empty_member"       // a zero-byte image member
	ReasonNoImage     = "no_image"           // a sample with a label but no image
	ReasonNoLabel     = "no_label"           // a sample with an image but no label
	ReasonBadLabel    = "bad_label"          // a label that does not parse
	ReasonTooLarge    = "too_large"          // more pixels than decode.max_pixels
	ReasonTooSmall    = "too_small"          // smaller than the views need
	ReasonPanic       = "worker_panic"       // a stage (or the source) panicked on this sample
)

// SampleError is a problem with one sample's data. Under on_error: skip the sample is dropped
// and counted by Reason; under on_error: fail the run stops with this error.
type SampleError struct {
	Meta   Meta
	Stage  string // the stage that found the problem; set by the runtime
	Reason string // one of the Reason* constants
	Err    error
}

func (e *SampleError) Error() string {
	where := e.Meta.String()
	if e.Stage != "" {
		where = e.Stage + ": " + where
	}
	return fmt.Sprintf("%s: %s: %v", where, e.Reason, e.Err)
}

func (e *SampleError) Unwrap() error { return e.Err }

// Bad returns a SampleError for the sample described by m.
func Bad(m Meta, reason string, err error) *SampleError {
	return &SampleError{Meta: m, Reason: reason, Err: err}
}

// Badf is Bad with a formatted message.
func Badf(m Meta, reason, format string, args ...any) *SampleError {
	return Bad(m, reason, fmt.Errorf(format, args...))
}

// AsSampleError reports whether err is (or wraps) a SampleError.
func AsSampleError(err error) (*SampleError, bool) {
	var se *SampleError
	ok := errors.As(err, &se)
	return se, ok
}

// ShardError is a problem with a whole shard or file: it is missing, unreadable or truncated.
// Under on_error: skip the source moves on to the next shard and the run lists the shard in its
// summary; the samples read from it before the fault still count.
type ShardError struct {
	Shard  string
	Reason string // "missing_shard", "truncated_shard", "unreadable_shard"
	Err    error
}

func (e *ShardError) Error() string { return fmt.Sprintf("shard %s: %s: %v", e.Shard, e.Reason, e.Err) }

func (e *ShardError) Unwrap() error { return e.Err }

// AsShardError reports whether err is (or wraps) a ShardError.
func AsShardError(err error) (*ShardError, bool) {
	var se *ShardError
	ok := errors.As(err, &se)
	return se, ok
}
