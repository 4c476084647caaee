package objstore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// httpBackendFactory shares one client (and its connection pool) among the HTTP objects.
type httpBackendFactory struct{ client *http.Client }

func newHTTPBackendFactory(cfg Config) *httpBackendFactory {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Duration(*cfg.ReadTimeout)
	t.MaxIdleConnsPerHost = 16
	// Shards are compressed already (or JPEGs); a transparent gzip would hide the byte offsets
	// that range requests resume at.
	t.DisableCompression = true
	return &httpBackendFactory{client: &http.Client{Transport: t}}
}

func (f *httpBackendFactory) backend(url string) *httpBackend {
	return &httpBackend{client: f.client, url: url}
}

// httpBackend reads a file from a web server: HEAD for its size and ETag, GET with Range to
// stream it from an offset, If-Match so that a replaced file is refused by the server (and the
// answer's ETag checked too, for servers that ignore If-Match).
type httpBackend struct {
	client *http.Client
	url    string
}

func (h *httpBackend) resumable() bool { return true }

func (h *httpBackend) stat(ctx context.Context) (objectInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, h.url, nil)
	if err != nil {
		return objectInfo{}, permanent{err}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return objectInfo{}, err
	}
	resp.Body.Close()
	if err := statusError(resp, http.StatusOK); err != nil {
		return objectInfo{}, err
	}
	if resp.ContentLength < 0 {
		return objectInfo{}, permanent{fmt.Errorf("HEAD %s: the server gives no Content-Length", h.url)}
	}
	return objectInfo{size: resp.ContentLength, etag: resp.Header.Get("ETag")}, nil
}

func (h *httpBackend) get(ctx context.Context, off int64, want objectInfo) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, permanent{err}
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	if want.etag != "" {
		req.Header.Set("If-Match", want.etag)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return h.wholeBody(resp, off, want)
	}
	if err := statusError(resp, http.StatusPartialContent); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if err := checkVersion(h.url, want, resp.Header.Get("ETag"), resp.Header.Get("Content-Range"), off); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

// wholeBody serves a range from the whole file, for servers that ignore Range (Python's
// http.server, some CDNs): the bytes before off are read and dropped, so a resume there costs
// the file's start again.
func (h *httpBackend) wholeBody(resp *http.Response, off int64, want objectInfo) (io.ReadCloser, error) {
	if resp.ContentLength >= 0 && resp.ContentLength != want.size {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: size %d, was %d when opened: %w", h.url, resp.ContentLength, want.size, ErrChanged)
	}
	if err := checkVersion(h.url, want, resp.Header.Get("ETag"), "", off); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

// statusError maps an answer's status to an error: a missing file wraps os.ErrNotExist, a
// failed If-Match is ErrChanged, other 4xx are permanent, 5xx and 429 are worth a retry.
func statusError(resp *http.Response, want int) error {
	if resp.StatusCode == want {
		return nil
	}
	what := fmt.Sprintf("%s %s: %s", resp.Request.Method, resp.Request.URL, resp.Status)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return permanent{fmt.Errorf("%s: %w", what, os.ErrNotExist)}
	case resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%s: %w", what, ErrChanged)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%s", what)
	}
	return permanent{fmt.Errorf("%s", what)}
}

// checkVersion compares an answer's ETag and Content-Range ("bytes 10-99/100") with what the
// object had when it was opened.
func checkVersion(name string, want objectInfo, etag, contentRange string, off int64) error {
	if want.etag != "" && etag != "" && etag != want.etag {
		return fmt.Errorf("%s: ETag %s, was %s when opened: %w", name, etag, want.etag, ErrChanged)
	}
	if contentRange == "" {
		return nil
	}
	spec, total, ok := strings.Cut(strings.TrimPrefix(contentRange, "bytes "), "/")
	first, _, _ := strings.Cut(spec, "-")
	size, err1 := strconv.ParseInt(total, 10, 64)
	start, err2 := strconv.ParseInt(first, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil // "*" totals and the like: nothing to compare
	}
	if size != want.size {
		return fmt.Errorf("%s: size %d, was %d when opened: %w", name, size, want.size, ErrChanged)
	}
	if start != off {
		return permanent{fmt.Errorf("%s: asked for bytes from %d, got them from %d", name, off, start)}
	}
	return nil
}
