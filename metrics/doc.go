// Package metrics exposes sysban's Prometheus metrics: it reads the
// counters the stages already keep (receiver listener stats, pipeline jail
// stats) at scrape time, records the few events no stage counts (unbans by
// reason, nftables write latency, reloads) through a Recorder, and serves
// them on /metrics.
//
// Everything is registered on a registry the caller passes in; nothing is
// package-level, so tests and several daemons in one process never share
// state.
package metrics
