package api

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neocloud/neocloud/internal/engine"
)

type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	unaudited prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, eng *engine.Engine) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neocloud_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "neocloud_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route"}),
	}
	m.unaudited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "neocloud_auth_refusals_unaudited_total",
		Help: "Requests without a valid key refused over the audit rate: counted here and in the next audit entry, not one row each.",
	})
	reg.MustRegister(m.requests, m.duration, m.unaudited, &poolCollector{eng: eng})
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// poolCollector reports the fleet's GPUs and nodes per pool and state when
// scraped, read from the store (one grouped query).
type poolCollector struct {
	eng *engine.Engine
}

var (
	poolGPUsDesc = prometheus.NewDesc("neocloud_pool_gpus", "GPUs in service per pool.",
		[]string{"pool"}, nil)
	poolNodesDesc = prometheus.NewDesc("neocloud_pool_nodes", "Nodes in service per pool and node state.",
		[]string{"pool", "state"}, nil)
	poolITWattsDesc = prometheus.NewDesc("neocloud_pool_it_power_watts", "IT power at full load of the nodes in service per pool.",
		[]string{"pool"}, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolGPUsDesc
	ch <- poolNodesDesc
	ch <- poolITWattsDesc
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pools, err := c.eng.Pools(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(poolGPUsDesc, err)
		return
	}
	for _, p := range pools {
		for st, n := range p.ByState {
			ch <- prometheus.MustNewConstMetric(poolNodesDesc, prometheus.GaugeValue, float64(n), p.ID, string(st))
		}
		ch <- prometheus.MustNewConstMetric(poolGPUsDesc, prometheus.GaugeValue, float64(p.GPUs), p.ID)
		ch <- prometheus.MustNewConstMetric(poolITWattsDesc, prometheus.GaugeValue, float64(p.ITPower), p.ID)
	}
}
