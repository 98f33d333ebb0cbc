package sysban

import "context"

// Applier puts bans in force. It is the one seam of the ban chain, which
// every link both implements and calls:
//
//	pipeline.Pipeline (decides) -> store.Journal (records, fsync) -> nft.Backend (kernel sets)
//
// The pipeline hands each batch of bans it decided to an Applier; the
// Journal records the batch and passes it on to its own next Applier;
// store.Store.Restore and the nft Guard replay recorded bans through the
// same seam. cmd/sysban wires the links (and may wrap one, as its
// announcer does to notify after a batch went through).
//
// Apply returns nil only when every ban of the batch is in force as far as
// this link and the ones after it are concerned. It must not retain bans after it
// returns.
type Applier interface {
	Apply(ctx context.Context, bans []Ban) error
}
