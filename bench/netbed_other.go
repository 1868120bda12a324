//go:build !linux

package bench

import (
	"context"
	"errors"
)

// RunNetbed needs Linux network namespaces.
func RunNetbed(ctx context.Context, cfg NetbedConfig) (*NetbedResult, error) {
	return nil, errors.New("netbed: needs Linux (network namespaces, tc)")
}
