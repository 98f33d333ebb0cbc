// Package deploy holds the files that install and watch sysban, and the
// tests that keep them honest; it has no Go code of its own.
//
//	systemd/     the unit (Type=notify, watchdog, unprivileged with
//	             CAP_NET_ADMIN only), checked with systemd-analyze
//	forwarders/  rsyslog, syslog-ng, BSD syslog.conf files the README
//	             points to; e2e tests run the real daemons on them
//	fleet/       the README's three-host fleet: each host's config and the
//	             script making the fleet's CA; TestFleetExample runs them
//	             on three network namespaces with the README's addresses
//	grafana/     a dashboard; prometheus/: alerts. Every metric they name
//	             must be one sysban exports (TestMetricNames)
//	kubernetes/  a DaemonSet and a sidecar Pod, decoded strictly into the
//	             Kubernetes API types by their own test package, so those
//	             dependencies stay out of everything else
package deploy
