// Package dcgm reads what an NVIDIA DCGM exporter (dcgm-exporter) serves
// on /metrics — the Prometheus text format — into meter.Readings: one per
// GPU per scrape, named by the fleet's node names.
//
// Of the exporter's metrics, Parse keeps these and ignores the rest:
//
//	DCGM_FI_DEV_GPU_UTIL                  %          → UtilPct
//	DCGM_FI_DEV_POWER_USAGE               W (float)  → PowerMW, rounded to the milliwatt
//	DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION  mJ counter → EnergyMJ
//	DCGM_FI_DEV_GPU_TEMP                  °C         → TempC
//	DCGM_FI_DEV_XID_ERRORS                last XID   → XID
//	DCGM_FI_DEV_POWER_VIOLATION           µs counter → PowerViolationUS (optional)
//	DCGM_FI_DEV_THERMAL_VIOLATION         µs counter → ThermalViolationUS (optional)
//	DCGM_FI_DEV_ROW_REMAP_FAILURE         0 or 1     → RemapFailure
//
// A GPU is known by its labels: gpu (the index on the host), UUID,
// Hostname, device ("nvidia3"). Label names are matched without regard to
// case (exporters print Hostname or hostname, UUID or uuid). A GPU's node
// is its Hostname unless a Mapping names another: by hostname, or by GPU
// UUID (node and index) for exporters whose Hostname is a pod's name.
//
// Counters pass through as the exporter reports them: a counter that
// drops (the energy counter after a GPU reset or driver reload) is for the
// meter to read as a reset, not for Parse to hide.
//
// testdata/ holds scrapes in dcgm-exporter's shape for its default
// counters (an 8-GPU H100 SXM node, a GB200 NVL72 compute tray, XID
// errors, an energy-counter reset); testdata/gen writes them again.
package dcgm
