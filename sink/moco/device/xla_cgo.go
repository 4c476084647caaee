//go:build cgo

package device

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// openXLA loads the PJRT plugin (dlopen: this needs cgo).
func openXLA(config string) (backends.Backend, error) {
	b, err := xla.New(config)
	if err != nil {
		return nil, fmt.Errorf("xla plugin %s: %w", config, err)
	}
	return b, nil
}
