package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// telemetryMaxBody fits a batch of meter.MaxBatchReadings readings in the
// JSON form.
const telemetryMaxBody = 32 << 20

// registerMeterRoutes adds telemetry ingestion, usage, SLA delivery and
// health findings; called from registerRoutes.
func (s *Server) registerMeterRoutes() {
	register(s, huma.Operation{OperationID: "push-telemetry", Method: http.MethodPost, Path: "/v1/telemetry", Tags: []string{"metering"},
		Summary: "Push a batch of GPU readings (the agent's call)",
		Description: "Body: the CSV wire format (`Content-Type: text/csv`; first line `# batch_id=ID agent=NAME`, then a header naming the columns " +
			"node, gpu, time_ms, util_pct, power_mw, energy_mj, temp_c, xid, power_violation_us, thermal_violation_us, remap_failure, uuid) " +
			"or the same as JSON (`application/json`, TelemetryBatch). Idempotent by batch ID (a replay answers the first result, replayed: true) " +
			"and by reading identity (node, GPU, time): duplicates, reordering and late data are normal input. Readings older than the late window " +
			"(24 h by default) are counted as too_late, those ahead of the clock as too_early, and left out. A node or GPU the fleet does not have is a 400 and nothing is applied.",
		MaxBodyBytes: telemetryMaxBody},
		tenant.PermTelemetryWrite, s.pushTelemetry)
	register(s, huma.Operation{OperationID: "get-usage", Method: http.MethodGet, Path: "/v1/usage", Tags: []string{"metering"},
		Summary: "Usage by lease and step: GPU-hours allocated, metered, used and healthy, and energy",
		Description: "A tenant sees only its own leases, and only for the time it held their nodes; operators also see each pool's internal use and idle time. " +
			"`format=csv` answers text/csv."},
		tenant.PermUsageRead, s.getUsage)
	register(s, huma.Operation{OperationID: "get-sla", Method: http.MethodGet, Path: "/v1/sla", Tags: []string{"metering"},
		Summary:     "SLA delivery of a guaranteed lease in a month: committed vs delivered healthy GPU-hours, availability, shortfall episodes and causes",
		Description: "Delivered = held (the lease's allocations) − unhealthy (telemetry: fatal XIDs, row-remap failures, thermal throttling), at most the commitment, hour by hour."},
		tenant.PermUsageRead, s.getSLA)
	register(s, huma.Operation{OperationID: "list-health-findings", Method: http.MethodGet, Path: "/v1/health/findings", Tags: []string{"metering"},
		Summary: "Health findings from telemetry, newest first (operators)"},
		tenant.PermNodesRead, s.listFindings)
}

// TelemetryReading is one GPU's reading in the JSON form.
type TelemetryReading struct {
	Node               string `json:"node" maxLength:"253"`
	GPU                int    `json:"gpu"`
	UUID               string `json:"uuid,omitempty" maxLength:"128"`
	TimeMS             int64  `json:"time_ms" doc:"Unix milliseconds."`
	UtilPct            int    `json:"util_pct"`
	PowerMW            int64  `json:"power_mw,omitempty"`
	EnergyMJ           int64  `json:"energy_mj,omitempty" doc:"DCGM total energy counter, millijoules."`
	TempC              int    `json:"temp_c,omitempty"`
	XID                int    `json:"xid,omitempty"`
	PowerViolationUS   int64  `json:"power_violation_us,omitempty"`
	ThermalViolationUS int64  `json:"thermal_violation_us,omitempty"`
	RemapFailure       bool   `json:"remap_failure,omitempty"`
}

// TelemetryBatch is a push in the JSON form.
type TelemetryBatch struct {
	BatchID  string             `json:"batch_id"`
	Agent    string             `json:"agent,omitempty"`
	Readings []TelemetryReading `json:"readings"`
}

// TelemetryResult answers a push.
type TelemetryResult struct {
	BatchID    string `json:"batch_id"`
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
	TooLate    int    `json:"too_late"`
	TooEarly   int    `json:"too_early"`
	Replayed   bool   `json:"replayed"`
}

type telemetryIn struct {
	ContentType string `header:"Content-Type"`
	RawBody     []byte `contentType:"text/csv"`
}

// decodeTelemetry reads a push body in either form.
func decodeTelemetry(contentType string, data []byte) (meter.Batch, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case meter.CSVContentType, "":
		b, err := meter.DecodeCSV(data, nil)
		if err != nil {
			var v valid.Error
			v.Add("body", nil, "%s", err.Error())
			return meter.Batch{}, v.Err()
		}
		return b, nil
	case "application/json":
		var in TelemetryBatch
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			var v valid.Error
			v.Add("body", nil, "must be a TelemetryBatch JSON object: %s", err.Error())
			return meter.Batch{}, v.Err()
		}
		b := meter.Batch{ID: in.BatchID, Agent: in.Agent, Readings: make([]meter.Reading, len(in.Readings))}
		for i, r := range in.Readings {
			b.Readings[i] = meter.Reading{Node: r.Node, GPU: r.GPU, UUID: r.UUID, Time: time.UnixMilli(r.TimeMS).UTC(), UtilPct: r.UtilPct,
				PowerMW: r.PowerMW, EnergyMJ: r.EnergyMJ, TempC: r.TempC, XID: r.XID, PowerViolationUS: r.PowerViolationUS,
				ThermalViolationUS: r.ThermalViolationUS, RemapFailure: r.RemapFailure}
		}
		return b, nil
	}
	var v valid.Error
	v.Add("Content-Type", contentType, "must be text/csv or application/json")
	return meter.Batch{}, v.Err()
}

func (s *Server) pushTelemetry(ctx context.Context, p tenant.Principal, in *telemetryIn) (*body[TelemetryResult], error) {
	start := time.Now()
	b, err := decodeTelemetry(in.ContentType, in.RawBody)
	if err != nil {
		s.meterMetrics.batches.WithLabelValues("refused").Inc()
		return nil, err
	}
	res, err := s.eng.Ingest(ctx, p, b)
	if err != nil {
		s.meterMetrics.batches.WithLabelValues("refused").Inc()
		return nil, err
	}
	m := s.meterMetrics
	if res.Replayed {
		m.batches.WithLabelValues("replayed").Inc()
	} else {
		m.batches.WithLabelValues("applied").Inc()
		m.readings.WithLabelValues("accepted").Add(float64(res.Accepted))
		m.readings.WithLabelValues("duplicate").Add(float64(res.Duplicates))
		m.readings.WithLabelValues("too_late").Add(float64(res.TooLate))
		m.readings.WithLabelValues("too_early").Add(float64(res.TooEarly))
	}
	m.seconds.Observe(time.Since(start).Seconds())
	return ok(TelemetryResult{BatchID: res.BatchID, Accepted: res.Accepted, Duplicates: res.Duplicates,
		TooLate: res.TooLate, TooEarly: res.TooEarly, Replayed: res.Replayed})
}

// meterMetrics count ingestion on /metrics.
type meterMetrics struct {
	batches  *prometheus.CounterVec
	readings *prometheus.CounterVec
	seconds  prometheus.Histogram
}

func newMeterMetrics(reg *prometheus.Registry) *meterMetrics {
	m := &meterMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neocloud_telemetry_batches_total",
			Help: "Telemetry batches pushed, by outcome: applied, replayed (a batch ID seen before), refused (bad input)."}, []string{"outcome"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neocloud_telemetry_readings_total",
			Help: "GPU readings of applied batches, by result: accepted, duplicate, too_late, too_early."}, []string{"result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "neocloud_telemetry_ingest_seconds",
			Help: "Time to decode and apply one batch, commit included.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
	}
	reg.MustRegister(m.batches, m.readings, m.seconds)
	return m
}

// UsageRow is one series' usage over one step. GPU-ms figures are exact;
// the GPU-hour figures are the same, for reading.
type UsageRow struct {
	From              time.Time `json:"from"`
	To                time.Time `json:"to"`
	Pool              string    `json:"pool"`
	Use               string    `json:"use" enum:"lease,internal,idle"`
	LeaseID           string    `json:"lease_id,omitempty"`
	TenantID          string    `json:"tenant_id,omitempty"`
	AllocatedGPUms    int64     `json:"allocated_gpu_ms"`
	MeteredGPUms      int64     `json:"metered_gpu_ms" doc:"GPU time covered by readings."`
	UsedGPUms         int64     `json:"used_gpu_ms" doc:"Covered time at or above the utilization threshold (5% by default)."`
	HealthyGPUms      int64     `json:"healthy_gpu_ms"`
	EnergyMJ          int64     `json:"energy_mj"`
	Readings          int64     `json:"readings"`
	AllocatedGPUHours float64   `json:"allocated_gpu_hours"`
	UsedGPUHours      float64   `json:"used_gpu_hours"`
	HealthyGPUHours   float64   `json:"healthy_gpu_hours"`
	EnergyKWh         float64   `json:"energy_kwh"`
}

// Usage is a usage answer.
type Usage struct {
	Step  string     `json:"step"`
	Items []UsageRow `json:"items"`
}

type usageIn struct {
	From     time.Time `query:"from" required:"true" doc:"RFC 3339."`
	To       time.Time `query:"to" required:"true" doc:"RFC 3339; at most 2,232 steps after from."`
	Step     string    `query:"step" enum:"hour,day,month" default:"hour"`
	LeaseID  string    `query:"lease" maxLength:"64"`
	TenantID string    `query:"tenant" maxLength:"63"`
	Pool     string    `query:"pool" maxLength:"100"`
	Use      string    `query:"use" enum:"lease,internal,idle,"`
	Format   string    `query:"format" enum:"json,csv" default:"json"`
}

type usageOut struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

const msPerHour = float64(time.Hour / time.Millisecond)

func usageRow(u engine.UsagePoint) UsageRow {
	return UsageRow{From: u.From, To: u.To, Pool: u.Pool, Use: string(u.Use), LeaseID: u.LeaseID, TenantID: u.TenantID,
		AllocatedGPUms: u.AllocatedGPUms, MeteredGPUms: u.GPUms, UsedGPUms: u.UsedMs, HealthyGPUms: u.HealthyMs, EnergyMJ: u.EnergyMJ, Readings: u.Readings,
		AllocatedGPUHours: float64(u.AllocatedGPUms) / msPerHour, UsedGPUHours: float64(u.UsedMs) / msPerHour,
		HealthyGPUHours: float64(u.HealthyMs) / msPerHour, EnergyKWh: float64(u.EnergyMJ) / 3.6e9}
}

func (s *Server) getUsage(ctx context.Context, p tenant.Principal, in *usageIn) (*usageOut, error) {
	pts, err := s.eng.Usage(ctx, p, engine.UsageQuery{From: in.From, To: in.To, Step: in.Step, LeaseID: in.LeaseID,
		TenantID: in.TenantID, Pool: in.Pool, Use: meter.Use(in.Use)})
	if err != nil {
		return nil, err
	}
	rows := make([]UsageRow, len(pts))
	for i, u := range pts {
		rows[i] = usageRow(u)
	}
	if in.Format == "csv" {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{"from", "to", "pool", "use", "lease_id", "tenant_id", "allocated_gpu_ms", "metered_gpu_ms", "used_gpu_ms",
			"healthy_gpu_ms", "energy_mj", "readings", "allocated_gpu_hours", "used_gpu_hours", "healthy_gpu_hours", "energy_kwh"})
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		for _, r := range rows {
			_ = w.Write([]string{r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Pool, r.Use, r.LeaseID, r.TenantID,
				i(r.AllocatedGPUms), i(r.MeteredGPUms), i(r.UsedGPUms), i(r.HealthyGPUms), i(r.EnergyMJ), i(r.Readings),
				f(r.AllocatedGPUHours), f(r.UsedGPUHours), f(r.HealthyGPUHours), f(r.EnergyKWh)})
		}
		w.Flush()
		return &usageOut{ContentType: "text/csv; charset=utf-8", Body: buf.Bytes()}, w.Error()
	}
	data, err := json.Marshal(Usage{Step: in.Step, Items: rows})
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return &usageOut{ContentType: "application/json", Body: data}, nil
}

// SLAEpisode is a run of hours short of the commitment.
type SLAEpisode struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	ShortGPUHours float64   `json:"short_gpu_hours"`
	ShortGPUms    int64     `json:"short_gpu_ms"`
	Causes        []string  `json:"causes"`
}

// SLA is a guaranteed lease's delivery in one month.
type SLA struct {
	LeaseID           string       `json:"lease_id"`
	TenantID          string       `json:"tenant_id"`
	Month             string       `json:"month" doc:"YYYY-MM (UTC)."`
	CommittedGPUHours float64      `json:"committed_gpu_hours"`
	HeldGPUHours      float64      `json:"held_gpu_hours"`
	UnhealthyGPUHours float64      `json:"unhealthy_gpu_hours"`
	DeliveredGPUHours float64      `json:"delivered_gpu_hours"`
	ShortGPUHours     float64      `json:"short_gpu_hours"`
	CommittedGPUms    int64        `json:"committed_gpu_ms"`
	DeliveredGPUms    int64        `json:"delivered_gpu_ms"`
	AvailabilityPct   float64      `json:"availability_pct"`
	AvailabilityPPM   int64        `json:"availability_ppm" doc:"Delivered / committed in parts per million, rounded down: exact, for credits."`
	Episodes          []SLAEpisode `json:"episodes"`
}

type slaIn struct {
	LeaseID string `query:"lease" required:"true" maxLength:"64"`
	Month   string `query:"month" pattern:"^[0-9]{4}-[0-9]{2}$" doc:"YYYY-MM (UTC); the current month when empty."`
}

func (s *Server) getSLA(ctx context.Context, p tenant.Principal, in *slaIn) (*body[SLA], error) {
	month := s.eng.Clock().Now()
	if in.Month != "" {
		m, err := time.Parse("2006-01", in.Month)
		if err != nil {
			var v valid.Error
			v.Add("month", in.Month, "must be YYYY-MM")
			return nil, v.Err()
		}
		month = m
	}
	r, err := s.eng.SLA(ctx, p, in.LeaseID, month)
	if err != nil {
		return nil, err
	}
	h := func(ms int64) float64 { return float64(ms) / msPerHour }
	out := SLA{LeaseID: r.LeaseID, TenantID: r.TenantID, Month: r.Month.Format("2006-01"),
		CommittedGPUHours: h(r.CommittedGPUms), HeldGPUHours: h(r.HeldGPUms), UnhealthyGPUHours: h(r.UnhealthyGPUms),
		DeliveredGPUHours: h(r.DeliveredGPUms), ShortGPUHours: h(r.ShortGPUms), CommittedGPUms: r.CommittedGPUms, DeliveredGPUms: r.DeliveredGPUms,
		AvailabilityPct: r.AvailabilityPct(), AvailabilityPPM: r.AvailabilityPPM, Episodes: []SLAEpisode{}}
	for _, ep := range r.Episodes {
		out.Episodes = append(out.Episodes, SLAEpisode{From: ep.From, To: ep.To, ShortGPUHours: h(ep.ShortGPUms), ShortGPUms: ep.ShortGPUms, Causes: ep.Causes})
	}
	return ok(out)
}

// HealthFinding is one problem the health rules found.
type HealthFinding struct {
	Node     string    `json:"node"`
	GPU      int       `json:"gpu" doc:"-1: the whole node (no data)."`
	At       time.Time `json:"at"`
	Severity string    `json:"severity" enum:"failed,degraded"`
	Rule     string    `json:"rule"`
	Detail   string    `json:"detail"`
}

// HealthFindings lists findings.
type HealthFindings struct {
	Items []HealthFinding `json:"items"`
}

type findingsIn struct {
	Node  string    `query:"node" maxLength:"253"`
	Since time.Time `query:"since"`
	Limit int       `query:"limit" minimum:"0" maximum:"10000"`
}

func (s *Server) listFindings(ctx context.Context, p tenant.Principal, in *findingsIn) (*body[HealthFindings], error) {
	fs, err := s.eng.Findings(ctx, p, engine.FindingFilter{Node: in.Node, Since: in.Since, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	out := HealthFindings{Items: make([]HealthFinding, len(fs))}
	for i, f := range fs {
		out.Items[i] = HealthFinding{Node: f.Node, GPU: f.GPU, At: f.At, Severity: string(f.Severity), Rule: f.Rule, Detail: f.Detail}
	}
	return ok(out)
}
