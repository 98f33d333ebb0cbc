// Package e2e holds sysban's end-to-end tests: the real binary, started in a
// fresh network namespace, fed by real forwarders (util-linux logger over UDP,
// TCP and unix sockets; rsyslogd with RSYSLOG_ForwardFormat), checked against
// the real kernel ruleset (`nft -j list set`) and real packets across a veth
// pair. They need root, iproute2, nftables, rsyslog, bsdutils and socat, and
// skip with a message saying what is missing when they cannot run.
package e2e
