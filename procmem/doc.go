// Package procmem reads where a process's resident memory is, from
// /proc/PID/smaps, and lets the daemon give back the pages of its own
// executable that only start-up touched.
//
// Start-up runs code and reads tables that an idle daemon never touches
// again: every linked package's initialiser (about 400 of them, nats-server
// and the rest of the fleet's code among them even when no fleet is
// configured), the config decoder, the filter compiler, the nftables set-up.
// The kernel maps each page those touch into the process, and 64 KiB around
// it from the page cache (fault-around), so after start-up about 16 MiB of
// the 24 MiB binary counted in the daemon's RSS. DropStartupPages unmaps the
// read-only pages of the executable once; they stay in the page cache, and
// whatever runs later maps its pages again with a minor fault.
package procmem
