package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/sysban/sysban/procmem"
)

// returnStartupMemory hands back what start-up (or a reload) used once and
// an idle daemon would otherwise sit on: the garbage of decoding the config
// and compiling filters, which the runtime returns to the kernel only
// slowly, and the binary's pages only that work touched (every package's
// initialiser, nats' too without a fleet; the decoder, the compiler). The
// pages stay in the page cache; what runs later maps its own back.
func returnStartupMemory(log *slog.Logger) {
	debug.FreeOSMemory()
	if n, err := procmem.DropStartupPages(); err != nil {
		log.Warn("the binary's start-up pages not returned", "err", err)
	} else {
		log.Debug("the binary's start-up pages returned to the page cache", "bytes", n)
	}
}
