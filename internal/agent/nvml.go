//go:build nvml

package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

// NVML reads the local host's GPUs through NVML (libnvidia-ml.so, loaded
// when NewNVML runs), for hosts without a DCGM exporter. It reads what the
// exporter's kept metrics hold: utilization, power, total energy,
// temperature, the power and thermal violation counters and row-remap
// failures; XIDs arrive as NVML events, and each reading carries the
// GPU's last one.
type NVML struct {
	host    string
	mapping *dcgm.Mapping

	mu      sync.Mutex
	devices []nvmlDevice
	events  nvml.EventSet // nil when the driver offers no XID events
	lastXID map[string]int
	closed  bool
}

type nvmlDevice struct {
	dev   nvml.Device
	index int
	uuid  string
}

// NewNVML initializes NVML and finds the host's GPUs. host names the
// node (through m, which may be nil, as a DCGM exporter's Hostname label
// would). Close releases NVML.
func NewNVML(host string, m *dcgm.Mapping) (*NVML, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml: init: %w", ret)
	}
	n := &NVML{host: host, mapping: m, lastXID: map[string]int{}}
	count, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		_ = nvml.Shutdown()
		return nil, fmt.Errorf("nvml: device count: %w", ret)
	}
	set, ret := nvml.EventSetCreate()
	if ret == nvml.SUCCESS {
		n.events = set
	}
	for i := range count {
		dev, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			n.Close()
			return nil, fmt.Errorf("nvml: GPU %d: %w", i, ret)
		}
		uuid, ret := dev.GetUUID()
		if ret != nvml.SUCCESS {
			n.Close()
			return nil, fmt.Errorf("nvml: GPU %d: UUID: %w", i, ret)
		}
		if n.events != nil {
			// Not every GPU or driver offers XID events; without them XID
			// reads 0.
			_ = dev.RegisterEvents(nvml.EventTypeXidCriticalError, n.events)
		}
		n.devices = append(n.devices, nvmlDevice{dev: dev, index: i, uuid: uuid})
	}
	return n, nil
}

// Name returns "nvml".
func (n *NVML) Name() string { return "nvml" }

// Read returns one reading per GPU, stamped at. A metric the GPU does not
// support reads 0.
func (n *NVML) Read(_ context.Context, at time.Time) ([]meter.Reading, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("nvml: closed")
	}
	n.drainEvents()
	at = at.UTC().Truncate(time.Millisecond)
	out := make([]meter.Reading, 0, len(n.devices))
	for _, d := range n.devices {
		node, idx, ok := n.mapping.Resolve(n.host, d.uuid, d.index)
		if !ok {
			return nil, fmt.Errorf("nvml: GPU %d (%s): %w: no host name", d.index, d.uuid, dcgm.ErrUnmapped)
		}
		r := meter.Reading{Node: node, GPU: idx, UUID: d.uuid, Time: at, XID: n.lastXID[d.uuid]}
		if u, ret := d.dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			r.UtilPct = int(min(u.Gpu, 100))
		}
		if mw, ret := d.dev.GetPowerUsage(); ret == nvml.SUCCESS {
			r.PowerMW = int64(mw)
		}
		if mj, ret := d.dev.GetTotalEnergyConsumption(); ret == nvml.SUCCESS {
			r.EnergyMJ = int64(min(mj, 1<<53))
		}
		if c, ret := d.dev.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			r.TempC = int(c)
		}
		// NVML counts violation time in nanoseconds; DCGM and the meter
		// in microseconds.
		if v, ret := d.dev.GetViolationStatus(nvml.PERF_POLICY_POWER); ret == nvml.SUCCESS {
			r.PowerViolationUS = int64(min(v.ViolationTime/1000, 1<<53))
		}
		if v, ret := d.dev.GetViolationStatus(nvml.PERF_POLICY_THERMAL); ret == nvml.SUCCESS {
			r.ThermalViolationUS = int64(min(v.ViolationTime/1000, 1<<53))
		}
		if _, _, _, failed, ret := d.dev.GetRemappedRows(); ret == nvml.SUCCESS {
			r.RemapFailure = failed
		}
		out = append(out, r)
	}
	return out, nil
}

// drainEvents reads the XID events NVML has queued, without waiting.
func (n *NVML) drainEvents() {
	if n.events == nil {
		return
	}
	for {
		ev, ret := n.events.Wait(0)
		if ret != nvml.SUCCESS {
			return
		}
		if ev.EventType&nvml.EventTypeXidCriticalError == 0 || ev.Device == nil {
			continue
		}
		if uuid, ret := ev.Device.GetUUID(); ret == nvml.SUCCESS {
			n.lastXID[uuid] = int(min(ev.EventData, 1<<31-1))
		}
	}
}

// Close releases NVML; Read fails afterwards.
func (n *NVML) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.events != nil {
		_ = n.events.Free()
	}
	if ret := nvml.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml: shutdown: %w", ret)
	}
	return nil
}
