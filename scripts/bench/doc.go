// Command bench measures sysban against the performance targets of issue 5:
// offline matching, UDP and TCP ingestion, ban latency, memory and nftables
// throughput. It generates its own deterministic traffic (a seeded mix of
// failures from sshd, postfix, dovecot, sendmail, named, openvpn and apache
// amid ~80% benign lines), drives the real binary and the real kernel inside
// network namespaces it creates, and prints each target beside the measured
// value and its ratio to the target or to a bare Go receiver measured in the
// same run.
//
// Run it from the repository root as root:
//
//	sudo go run ./scripts/bench                 # every section, ~3-4 minutes
//	sudo go run ./scripts/bench -sections match,tcp -lines 200000
//
// All traffic stays on loopback inside namespaces named sbbench<pid>-N, which
// are deleted on exit. docs/performance.md records the method and a run.
package main
