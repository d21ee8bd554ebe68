package agent

import "errors"

// ErrNoNVML is NewNVML's error in a binary built without the nvml tag.
var ErrNoNVML = errors.New("nvml: this binary was built without NVML (rebuild with -tags nvml and cgo enabled)")

// NVML is a Source.
var _ Source = (*NVML)(nil)
