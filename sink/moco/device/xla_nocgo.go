//go:build !cgo

package device

import (
	"errors"

	"github.com/gomlx/gomlx/backends"
)

// openXLA: loading a PJRT plugin needs dlopen, so a pure-Go build has no XLA backend.
func openXLA(string) (backends.Backend, error) {
	return nil, errors.New("this pipeline was built without cgo (CGO_ENABLED=0), so it cannot load a PJRT plugin: rebuild with cgo for `backend: xla`, or use `backend: go`")
}
