// Command gen writes the dcgm package's testdata: DCGM exporter scrapes in
// the shape dcgm-exporter prints them for its default counters (with the
// DCP fields the 3.x default set enabled), from fixed seeds. From the
// repository root:
//
//	go run ./internal/meter/dcgm/testdata/gen internal/meter/dcgm/testdata
//	go test ./internal/meter/dcgm/ -run TestParseGolden -update
package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

type gpu struct {
	idx                    int
	uuid, bus              string
	smClk, memClk          int
	memTemp, temp          int
	powerW                 float64
	energyMJ               int64
	replay                 int64
	util, memUtil          int
	xid                    int
	fbFree, fbUsed         int
	nvlink                 int64
	uncRows, corRows       int64
	remapFail              int
	gr, tensor, dram       float64
	pcieTx, pcieRx         int64
	powerViolUS, thermViol int64
}

type node struct {
	host, model, driver string
	gpus                []gpu
	violations          bool
}

type metric struct {
	name, typ, help string
	val             func(g gpu) string
	violation       bool
}

func i(v int64) string   { return fmt.Sprintf("%d", v) }
func f(v float64) string { return fmt.Sprintf("%f", v) }

// watts prints a power as DCGM does: NVML counts milliwatts.
func watts(v float64) string { return fmt.Sprintf("%f", math.Round(v*1000)/1000) }

var metrics = []metric{
	{"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", func(g gpu) string { return i(int64(g.smClk)) }, false},
	{"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", func(g gpu) string { return i(int64(g.memClk)) }, false},
	{"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", func(g gpu) string { return i(int64(g.memTemp)) }, false},
	{"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", func(g gpu) string { return i(int64(g.temp)) }, false},
	{"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", func(g gpu) string { return watts(g.powerW) }, false},
	{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", func(g gpu) string { return i(g.energyMJ) }, false},
	{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", func(g gpu) string { return i(g.replay) }, false},
	{"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", func(g gpu) string { return i(int64(g.util)) }, false},
	{"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", func(g gpu) string { return i(int64(g.memUtil)) }, false},
	{"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", func(g gpu) string { return "0" }, false},
	{"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", func(g gpu) string { return "0" }, false},
	{"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", func(g gpu) string { return i(int64(g.xid)) }, false},
	{"DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints (in us).", func(g gpu) string { return i(g.powerViolUS) }, true},
	{"DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling duration due to thermal constraints (in us).", func(g gpu) string { return i(g.thermViol) }, true},
	{"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", func(g gpu) string { return i(int64(g.fbFree)) }, false},
	{"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", func(g gpu) string { return i(int64(g.fbUsed)) }, false},
	{"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes", func(g gpu) string { return i(g.nvlink) }, false},
	{"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors", func(g gpu) string { return i(g.uncRows) }, false},
	{"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors", func(g gpu) string { return i(g.corRows) }, false},
	{"DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed", func(g gpu) string { return i(int64(g.remapFail)) }, false},
	{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active (in %).", func(g gpu) string { return f(g.gr) }, false},
	{"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active (in %).", func(g gpu) string { return f(g.tensor) }, false},
	{"DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active sending or receiving data (in %).", func(g gpu) string { return f(g.dram) }, false},
	{"DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.", func(g gpu) string { return i(g.pcieTx) }, false},
	{"DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.", func(g gpu) string { return i(g.pcieRx) }, false},
}

func write(path string, n node) {
	var b strings.Builder
	for _, m := range metrics {
		if m.violation && !n.violations {
			continue
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, g := range n.gpus {
			fmt.Fprintf(&b, "%s{gpu=\"%d\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia%d\",modelName=\"%s\",Hostname=\"%s\",DCGM_FI_DRIVER_VERSION=\"%s\"} %s\n",
				m.name, g.idx, g.uuid, g.bus, g.idx, n.model, n.host, n.driver, m.val(g))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		panic(err)
	}
}

func uuid(r *rand.Rand) string {
	h := func(n int) string {
		s := ""
		for range n {
			s += fmt.Sprintf("%x", r.IntN(16))
		}
		return s
	}
	return fmt.Sprintf("GPU-%s-%s-%s-%s-%s", h(8), h(4), h(4), h(4), h(12))
}

// busy returns a GPU under a training job.
func busy(r *rand.Rand, idx int, bus string, model string) gpu {
	g := gpu{idx: idx, uuid: uuid(r), bus: bus}
	switch model {
	case "h100":
		g.smClk, g.memClk = 1980-15*r.IntN(4), 2619
		g.temp = 52 + r.IntN(14)
		g.memTemp = g.temp + 4 + r.IntN(6)
		g.powerW = 560 + r.Float64()*130
		g.energyMJ = 180_000_000_000 + r.Int64N(40_000_000_000)
		g.fbUsed = 76_000 + r.IntN(3000)
		g.fbFree = 81_559 - g.fbUsed - 480
		g.nvlink = 9_000_000_000_000 + r.Int64N(2_000_000_000_000)
	case "gb200":
		g.smClk, g.memClk = 2062-15*r.IntN(4), 3996
		g.temp = 41 + r.IntN(12)
		g.memTemp = g.temp + 3 + r.IntN(5)
		g.powerW = 880 + r.Float64()*240
		g.energyMJ = 95_000_000_000 + r.Int64N(30_000_000_000)
		g.fbUsed = 176_000 + r.IntN(8000)
		g.fbFree = 189_471 - g.fbUsed - 1240
		g.nvlink = 31_000_000_000_000 + r.Int64N(5_000_000_000_000)
	}
	g.util = 88 + r.IntN(13)
	g.memUtil = 30 + r.IntN(35)
	g.gr = 0.82 + r.Float64()*0.17
	g.tensor = 0.31 + r.Float64()*0.3
	g.dram = 0.4 + r.Float64()*0.35
	g.pcieTx = 40_000_000 + r.Int64N(200_000_000)
	g.pcieRx = 80_000_000 + r.Int64N(400_000_000)
	g.powerViolUS = r.Int64N(5_000_000_000)
	g.thermViol = 0
	return g
}

func h100(r *rand.Rand) node {
	buses := []string{"00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0", "00000000:9A:00.0", "00000000:AB:00.0", "00000000:BA:00.0", "00000000:DB:00.0"}
	n := node{host: "h100-a-n0017", model: "NVIDIA H100 80GB HBM3", driver: "550.127.05"}
	for k, bus := range buses {
		n.gpus = append(n.gpus, busy(r, k, bus, "h100"))
	}
	return n
}

func main() {
	dir := os.Args[1]
	// (a) an 8-GPU H100 SXM node under a training job.
	r := rand.New(rand.NewPCG(17, 1))
	write(filepath.Join(dir, "h100-sxm-8gpu.prom"), h100(r))

	// (b) a GB200 NVL72 compute tray: 4 GPUs (two Grace-Blackwell superchips).
	r = rand.New(rand.NewPCG(7, 3))
	tray := node{host: "gb200-a-r07-t03", model: "NVIDIA GB200", driver: "570.133.20"}
	for k, bus := range []string{"00000008:01:00.0", "00000009:01:00.0", "00000018:01:00.0", "00000019:01:00.0"} {
		tray.gpus = append(tray.gpus, busy(r, k, bus, "gb200"))
	}
	write(filepath.Join(dir, "gb200-nvl72-tray.prom"), tray)

	// An H100 node whose exporter also collects the violation counters:
	// GPU 3 fell off the bus (XID 79), GPU 5's job hit XID 13, GPU 6
	// failed to remap a row, GPU 1 is thermally throttled.
	r = rand.New(rand.NewPCG(17, 2))
	n := h100(r)
	n.host = "h100-a-n0018"
	n.violations = true
	n.gpus[3].xid, n.gpus[3].util, n.gpus[3].powerW, n.gpus[3].memUtil = 79, 0, 71.204, 0
	n.gpus[3].gr, n.gpus[3].tensor, n.gpus[3].dram = 0, 0, 0
	n.gpus[5].xid = 13
	n.gpus[6].uncRows, n.gpus[6].remapFail = 9, 1
	n.gpus[1].thermViol, n.gpus[1].temp = 18_250_000, 87
	write(filepath.Join(dir, "h100-sxm-8gpu-xid.prom"), n)

	// Two consecutive scrapes 10 s apart; GPU 2 was reset between them
	// (nvidia-smi -r): its energy counter restarts near 0.
	r = rand.New(rand.NewPCG(17, 4))
	n = h100(r)
	n.host = "h100-a-n0019"
	write(filepath.Join(dir, "h100-sxm-8gpu-energy-1.prom"), n)
	for k := range n.gpus {
		g := &n.gpus[k]
		g.energyMJ += int64(g.powerW * 10_000)
		g.powerW += r.Float64()*20 - 10
		g.util = 88 + r.IntN(13)
		g.nvlink += 4_000_000_000 + r.Int64N(1_000_000_000)
	}
	g := &n.gpus[2]
	g.energyMJ, g.powerW, g.util, g.fbUsed, g.fbFree = 4518, 68.51, 0, 0, 81_079
	g.gr, g.tensor, g.dram, g.memUtil = 0, 0, 0, 0
	write(filepath.Join(dir, "h100-sxm-8gpu-energy-2.prom"), n)
}
