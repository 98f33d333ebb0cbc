package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sysban/sysban"
)

// Journal makes bans durable before they reach the kernel: the middle link
// of the ban chain (see sysban.Applier), between the pipeline and nft.
// Store first, kernel second: the store is what a restart, a reboot or a
// flushed ruleset restores from, so a ban only in the kernel could vanish,
// while a ban only in the store is put back (nft Guard, Restore). The
// pipeline announces a ban only after Apply returned nil.
type Journal struct {
	store  *Store
	next   sysban.Applier
	source string
}

// JournalOption configures a Journal.
type JournalOption func(*Journal)

// WithSource sets the Source recorded with every ban (default "pipeline").
func WithSource(source string) JournalOption {
	return func(j *Journal) { j.source = source }
}

var _ sysban.Applier = (*Journal)(nil)

// NewJournal returns a Journal that records bans in s and then applies them
// through next.
func NewJournal(s *Store, next sysban.Applier, opts ...JournalOption) *Journal {
	j := &Journal{store: s, next: next, source: "pipeline"}
	for _, o := range opts {
		o(j)
	}
	return j
}

// Apply records bans (one fsync'd transaction) and then applies them
// through next. It returns nil only when both succeeded: only then is a ban
// applied in the sense of the durability contract.
//
// If recording fails (disk full, damaged file), the bans still go to the
// kernel, because protecting the host now matters more than remembering the
// ban later, and the recording error is returned. If next fails, the records
// stay: the bans are restored at the next start or reconcile, and next's
// error is returned. Bans with an invalid address or jail name are neither
// recorded nor applied, and reported in the error; the others proceed.
func (j *Journal) Apply(ctx context.Context, bans []sysban.Ban) error {
	if len(bans) == 0 {
		return nil
	}
	var errs []error
	valid := bans
	recs := make([]Record, 0, len(bans))
	for i, b := range bans {
		if err := checkBan(b.Jail, b.Network()); err != nil {
			if len(errs) == 0 { // first bad one: from here on, copy the good ones
				valid = slices.Clone(bans[:i])
			}
			errs = append(errs, fmt.Errorf("store: journal: skipped ban: %w", err))
			continue
		}
		if len(errs) > 0 {
			valid = append(valid, b)
		}
		recs = append(recs, Record{Ban: b, Source: j.source})
	}
	// A ban without a start would be stored as starting now but reach the
	// kernel as already over; give both the same start.
	var now time.Time
	for i := range recs {
		if recs[i].Start.IsZero() {
			if now.IsZero() {
				now = j.store.now()
				valid = slices.Clone(valid) // never write to the caller's slice
			}
			recs[i].Start = now
			valid[i].Start = now
		}
	}
	if len(recs) > 0 {
		if err := j.store.Record(recs); err != nil {
			errs = append(errs, fmt.Errorf("store: journal: bans not durable: %w", err))
		}
		if err := j.next.Apply(ctx, valid); err != nil {
			errs = append(errs, fmt.Errorf("store: journal: %w", err))
		}
	}
	return errors.Join(errs...)
}
