//go:build !nvml

package agent

import (
	"context"
	"time"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

// NVML reads the local GPUs through NVML. This build has no NVML: build
// with -tags nvml (and cgo) for one that does.
type NVML struct{}

// NewNVML returns ErrNoNVML: this binary was built without the nvml tag.
func NewNVML(string, *dcgm.Mapping) (*NVML, error) { return nil, ErrNoNVML }

// Name returns "nvml".
func (*NVML) Name() string { return "nvml" }

// Read returns ErrNoNVML.
func (*NVML) Read(context.Context, time.Time) ([]meter.Reading, error) { return nil, ErrNoNVML }

// Close does nothing.
func (*NVML) Close() error { return nil }
