package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// FileName is the state file's name inside the state directory.
const FileName = "sysban.db"

// DefaultTimeout is how long Open waits for another process to release the
// file lock when Options.Timeout is zero.
const DefaultTimeout = time.Second

// schemaVersion is stored in the meta bucket; Open refuses a file written
// by a newer schema rather than misreading it.
const schemaVersion = 1

// defaultPurgeChunk bounds the deletes of one Purge transaction, so that
// purging a large history never holds the writer (and the ban path) for long.
const defaultPurgeChunk = 10000

var (
	bucketMeta    = []byte("meta")
	bucketBans    = []byte("bans")
	bucketHistory = []byte("history")
	keyVersion    = []byte("version")
)

// Options tune Open. The zero value is usable.
type Options struct {
	Now     func() time.Time // injected clock; default time.Now
	Logger  *slog.Logger     // default slog.Default(); the caller adds the component
	Timeout time.Duration    // how long to wait for the file lock; default DefaultTimeout
}

// Store is the durable ban state. It is safe for concurrent use; writes are
// serialised by bbolt (one writer at a time), reads run beside them.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	log  *slog.Logger

	purgeChunk int // deletes per Purge transaction; tests make it small

	// generation counts the write transactions that ended (committed or
	// not): readers that keep what they read (the nft Guard) read again
	// only when it moved. It moves after the commit, so a reader that
	// reads it before its own read transaction never keeps a state older
	// than the generation it noted.
	generation atomic.Uint64

	// nextExpiry is a lower bound of the earliest expiry among the current
	// bans (Unix nanoseconds; 0: unknown): Expire, every few seconds,
	// scans the bans only once it has come. Writers set it inside their
	// write transaction (bbolt runs one at a time); expiryMu orders
	// Expire's reset after a failed commit with them.
	expiryMu   sync.Mutex
	nextExpiry int64

	// names interns the jail names and sources the records repeat.
	names *names
}

// Record is one current ban as stored: the ban itself, how often the
// address has been banned in the jail, why, and who banned it.
type Record struct {
	sysban.Ban
	// Offences counts the bans of Addr in Jail that history remembers,
	// this one included (1 for a first offence). Store.Record sets it.
	Offences int
	// The embedded Ban's Lines are the failure lines that led to the ban,
	// oldest first; the store keeps at most MaxLines (the last ones), each
	// at most MaxLineBytes.
	// Source says who banned: "pipeline", "manual", "recidive", ...
	Source string
}

// EventKind says what happened in a history Event.
type EventKind uint8

const (
	EventBan   EventKind = 1
	EventUnban EventKind = 2
)

func (k EventKind) String() string {
	switch k {
	case EventBan:
		return "ban"
	case EventUnban:
		return "unban"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one entry of an address's history.
type Event struct {
	Kind     EventKind
	Time     time.Time // ban: its start; unban: when it was lifted
	Jail     string
	Addr     netip.Addr    // the banned address; a prefix ban's network address
	Bits     int           // the banned prefix's length (Addr.BitLen() for one address)
	Duration time.Duration // ban: its length (sysban.Permanent: forever)
	Failures int           // ban: failures that led to it
	Offences int           // ban: the offence count it was recorded with
	Source   string        // ban: who banned
	Reason   string        // unban: why ("manual", "reload", ...)
}

// Open opens the state file at path, creating it (mode 0600, its directory
// 0700) when missing. It fails with a clear error when another process
// holds the file (another sysban on the same state directory), or when the
// file is not a sysban state file or is damaged.
func Open(path string, opts Options) (s *Store, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create state directory: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: open %s: not a regular file", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	// bbolt validates the meta pages' checksums on open, but a damaged file
	// can still make it panic deeper down; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: open %s: damaged state file (%v); move it aside to start with empty state", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("store: open %s: locked by another process (is another sysban using this state directory?); waited %v: %w", path, opts.Timeout, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
			errors.Is(err, berrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
			return nil, fmt.Errorf("store: open %s: not a sysban state file, or damaged; move it aside to start with empty state: %w", path, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s = &Store{db: db, path: path, now: opts.Now, log: opts.Logger, purgeChunk: defaultPurgeChunk, names: newNames()}
	if err := s.update(s.initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// initSchema creates the buckets of a new file and checks an existing one.
func (s *Store) initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := false
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = true
			return nil
		})
		if foreign {
			return errors.New("not a sysban state file (a bbolt database without sysban's meta bucket)")
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(keyVersion, []byte{schemaVersion}); err != nil {
			return err
		}
	}
	v := meta.Get(keyVersion)
	if len(v) != 1 {
		return fmt.Errorf("damaged state file: schema version %x", v)
	}
	if v[0] > schemaVersion {
		return fmt.Errorf("state file has schema version %d, this sysban reads up to %d (written by a newer sysban?)", v[0], schemaVersion)
	}
	for _, b := range [][]byte{bucketBans, bucketHistory} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// view and update run a transaction and turn a bbolt panic (a damaged page)
// into an error; bbolt rolls the transaction back on the way out.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer s.recoverDamage(&err)
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer s.generation.Add(1) // after the commit (or the rollback)
	defer s.recoverDamage(&err)
	return s.db.Update(fn)
}

// releasePages drops this process's mappings of the file's pages
// (madvise MADV_DONTNEED) after a transaction that read most of the file.
// bbolt reads through a shared read-only mapping of the file, and every
// page a scan touched stayed in the process's resident set: with 100,000
// bans, 16 MiB of an enforce-only host's RSS for pages it reads again
// only at the next scan. For a clean shared file mapping MADV_DONTNEED
// loses nothing: the pages stay in the page cache, and the next read maps
// them again (a minor fault, no disk read). A read transaction holds
// bbolt's mmap lock, so the mapping cannot be replaced under the call.
func (s *Store) releasePages() {
	_ = s.view(func(tx *bolt.Tx) error {
		s.releaseMapped(tx)
		return nil
	})
}

// releaseMapped is releasePages inside a transaction, which holds the
// mmap lock (a write transaction remaps only when it commits).
func (s *Store) releaseMapped(tx *bolt.Tx) {
	addr, size := s.db.Info().Data, tx.Size()
	if size <= 0 {
		return
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		s.log.Debug("store: madvise", "err", errno)
	}
}

// scanRelease is how many records a read of every ban visits between two
// hand-backs of the pages it touched. Handing them back only at the end
// let a scan of 100,000 bans (the Guard's EachDue every few seconds, an
// Expire scan) raise an enforce-only host's RSS by the whole file, 9 MiB,
// for its duration; every 8,192 records it is under 1 MiB, for a dozen
// madvise calls and the minor faults of the branch pages mapped again.
const scanRelease = 8192

// scanPacer counts the records of a whole-file read and hands the pages
// back every scanRelease of them.
type scanPacer struct {
	s  *Store
	tx *bolt.Tx
	n  int
}

func (p *scanPacer) visited() {
	if p.n++; p.n%scanRelease == 0 {
		p.s.releaseMapped(p.tx)
	}
}

// Generation is a number that changes after every write transaction: while
// it stays the same, Due and EachDue return what they returned before
// (less what expired meanwhile). The nft Guard compares it before reading
// the bans again.
func (s *Store) Generation() uint64 { return s.generation.Load() }

func (s *Store) recoverDamage(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("damaged state file %s: %v", s.path, r)
	}
}

// Prefix is the network of a ban event.
func (e Event) Prefix() netip.Prefix { return netip.PrefixFrom(e.Addr, e.Bits) }

// checkBan says why a ban cannot be stored, or nil.
func checkBan(jail string, p netip.Prefix) error {
	switch {
	case jail == "":
		return errors.New("empty jail name")
	case len(jail) > maxJail:
		return fmt.Errorf("jail name of %d bytes", len(jail))
	case strings.IndexByte(jail, 0) >= 0:
		return fmt.Errorf("jail name %q contains NUL", jail)
	case !p.IsValid():
		return fmt.Errorf("jail %s: invalid address", jail)
	}
	return nil
}

// bulkRecord is the batch size from which Record fills pages to bulkFill.
const (
	bulkRecord = 1000
	bulkFill   = 0.9
)

// Record stores bans as current bans, in one transaction that is fsync'd
// before Record returns, and appends a ban event per ban to the history.
// It sets each stored ban's Offences from the history (earlier bans of the
// address in the jail, plus one), keeps the last MaxLines lines cut at
// MaxLineBytes, and takes the start time from the clock when it is zero. A
// ban replaces the current ban of the same jail and address.
//
// If any ban has an empty or invalid jail name or an invalid address,
// nothing is stored and the error says which.
func (s *Store) Record(bans []Record) error {
	if len(bans) == 0 {
		return nil
	}
	for i := range bans {
		if err := checkBan(bans[i].Jail, bans[i].Network()); err != nil {
			return fmt.Errorf("store: record: ban %d: %w", i, err)
		}
	}
	now := s.now()
	err := s.update(func(tx *bolt.Tx) error {
		cur, hist := tx.Bucket(bucketBans), tx.Bucket(bucketHistory)
		if len(bans) >= bulkRecord {
			// Large batches come sorted (a restore, a fleet resync): pages
			// split half full, bbolt's default, would leave the file, and
			// every scan of it, twice the size.
			cur.FillPercent, hist.FillPercent = bulkFill, bulkFill
		}
		for _, r := range bans {
			r.Prefix = r.Network()
			if r.Addr.IsValid() {
				r.Addr = sysban.CanonicalAddr(r.Addr)
			}
			if r.Start.IsZero() {
				r.Start = now
			}
			r.Lines = boundLines(r.Lines)
			r.Source = cut(r.Source, maxSource)
			n, err := countBans(hist, r.Jail, r.Prefix)
			if err != nil {
				return err
			}
			r.Offences = n + 1
			if !r.Permanent() {
				s.lowerNextExpiry(r.Expiry())
			}
			if err := cur.Put(banKey(r.Jail, r.Prefix), encodeRecord(r)); err != nil {
				return fmt.Errorf("put ban %s %s: %w", r.Jail, r.Prefix, err)
			}
			seq, err := hist.NextSequence()
			if err != nil {
				return err
			}
			ev := Event{Kind: EventBan, Jail: r.Jail, Bits: r.Prefix.Bits(), Duration: r.Duration, Failures: r.Failures, Offences: r.Offences, Source: r.Source}
			if err := hist.Put(historyKey(r.Prefix.Addr(), r.Start, seq), encodeEvent(ev)); err != nil {
				return fmt.Errorf("put history %s %s: %w", r.Jail, r.Prefix, err)
			}
		}
		return nil
	})
	if len(bans) >= bulkRecord {
		s.releasePages() // a large batch read most of the bans and history
	}
	if err != nil {
		return fmt.Errorf("store: record %d bans: %w", len(bans), err)
	}
	return nil
}

// countBans counts the ban events of p in jail in the history bucket
// (they are keyed by p's network address; the length tells a /64 from
// the single address that starts it).
func countBans(hist *bolt.Bucket, jail string, p netip.Prefix) (int, error) {
	prefix := addrPrefix(p.Addr())
	n := 0
	c := hist.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		kind, bits, j, err := eventJailKind(v)
		if err != nil {
			return 0, fmt.Errorf("history of %s: %w", p, err)
		}
		if bits < 0 {
			bits = p.Addr().BitLen()
		}
		if kind == EventBan && j == jail && bits == p.Bits() {
			n++
		}
	}
	return n, nil
}

// Due returns the current bans still in force at now, permanent ones
// included, in jail then address order: what must be in the kernel. A
// damaged entry is logged and skipped, so one bad record cannot keep every
// other ban from being restored.
func (s *Store) Due(now time.Time) ([]Record, error) {
	var out []Record
	bad := 0
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBans)
		out = make([]Record, 0, b.Stats().KeyN)
		pace := scanPacer{s: s, tx: tx}
		return b.ForEach(func(k, v []byte) error {
			pace.visited()
			r, err := decodeBan(s.names, k, v)
			if err != nil {
				if bad++; bad <= 10 { // then only the count: a damaged page may hold thousands
					s.log.Warn("skipping damaged ban record", "key", fmt.Sprintf("%x", k), "err", err)
				}
				return nil
			}
			if r.Permanent() || r.Expiry().After(now) {
				out = append(out, r)
			}
			return nil
		})
	})
	s.releasePages()
	if err != nil {
		return nil, fmt.Errorf("store: due: %w", err)
	}
	if bad > 0 {
		s.log.Warn("damaged ban records skipped", "count", bad, "file", s.path)
	}
	return out, nil
}

// EachDue calls fn for every current ban in force at now, as Due would
// list it but without its lines, one at a time: a caller that only asks what
// is in force (the fleet's resync) holds neither every record nor their
// lines. fn must not use the store. Damaged records are skipped and counted
// as in Due.
func (s *Store) EachDue(now time.Time, fn func(Record)) error {
	bad := 0
	err := s.view(func(tx *bolt.Tx) error {
		pace := scanPacer{s: s, tx: tx}
		return tx.Bucket(bucketBans).ForEach(func(k, v []byte) error {
			pace.visited()
			r, err := decodeBanHead(s.names, k, v)
			if err != nil {
				bad++
				return nil
			}
			if r.Permanent() || r.Expiry().After(now) {
				fn(r)
			}
			return nil
		})
	})
	s.releasePages()
	if err != nil {
		return fmt.Errorf("store: due: %w", err)
	}
	if bad > 0 {
		s.log.Warn("damaged ban records skipped", "count", bad, "file", s.path)
	}
	return nil
}

func decodeBan(in *names, k, v []byte) (Record, error) {
	jail, a, err := parseBanKeyIn(in, k)
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(in, jail, a, v)
}

// decodeBanHead is decodeBan without the lines.
func decodeBanHead(in *names, k, v []byte) (Record, error) {
	jail, a, err := parseBanKeyIn(in, k)
	if err != nil {
		return Record{}, err
	}
	return decodeRecordHead(in, jail, a, v)
}

// Restore applies every ban due now through next (the kernel), at most
// batch bans per call (batch <= 0: all in one), and returns how many it
// handed over. The bans keep their original start and duration, so the
// kernel gets each one's remaining time, not a fresh bantime. It does not
// write history: these are the same bans, not new offences.
func (s *Store) Restore(ctx context.Context, next sysban.Applier, now time.Time, batch int) (int, error) {
	due, err := s.Due(now)
	if err != nil {
		return 0, err
	}
	if batch <= 0 {
		batch = max(len(due), 1)
	}
	bans := make([]sysban.Ban, 0, min(batch, len(due)))
	var errs []error
	n := 0
	for chunk := range slices.Chunk(due, batch) {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("store: restore: %w", err)
		}
		bans = bans[:0]
		for _, r := range chunk {
			bans = append(bans, r.Ban)
		}
		if err := next.Apply(ctx, bans); err != nil {
			errs = append(errs, err)
		}
		n += len(bans)
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("store: restore: %w", err)
	}
	return n, nil
}

// Lookup returns the current bans in every jail that cover p (an address
// is a /32 or /128): p's own ban and the bans of every wider prefix that
// contains it, widest first per jail (expired ones that Purge has not
// removed yet included: check Expiry).
func (s *Store) Lookup(p netip.Prefix) ([]Record, error) {
	if !p.IsValid() {
		return nil, errors.New("store: lookup: invalid address")
	}
	p = sysban.CanonicalPrefix(p)
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		return eachJail(tx.Bucket(bucketBans), func(c *bolt.Cursor, jail string) error {
			// One seek per length that could cover p: a CLI query,
			// not a hot path.
			for bits := 0; bits <= p.Bits(); bits++ {
				cover, _ := p.Addr().Prefix(bits)
				k := banKey(jail, cover)
				if gk, v := c.Seek(k); bytes.Equal(gk, k) {
					r, err := decodeRecord(s.names, jail, cover, v)
					if err != nil {
						return fmt.Errorf("ban %s %s: %w", jail, cover, err)
					}
					out = append(out, r)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: lookup %s: %w", p, err)
	}
	return out, nil
}

// eachJail calls fn once per jail that has current bans, without reading
// every ban: after each jail it seeks past the jail's whole key range.
// fn may move the cursor.
func eachJail(b *bolt.Bucket, fn func(c *bolt.Cursor, jail string) error) error {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		jail, _, err := parseBanKey(k)
		if err != nil {
			return err
		}
		if err := fn(c, jail); err != nil {
			return err
		}
		// jail+0x01 sorts after every jail+0x00+addr key of this jail.
		k, _ = c.Seek(append([]byte(jail), 1))
	}
	return nil
}

// Offences returns how many bans of p in jail the history remembers (it
// forgets what Purge removed): the input of bantime.increment and of
// recidive-style decisions. A prefix banned again is a repeat offender
// whichever address inside it offended.
func (s *Store) Offences(jail string, p netip.Prefix) (int, error) {
	if !p.IsValid() {
		return 0, errors.New("store: offences: invalid address")
	}
	p = sysban.CanonicalPrefix(p)
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = countBans(tx.Bucket(bucketHistory), jail, p)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: offences %s %s: %w", jail, p, err)
	}
	return n, nil
}

// History returns the events of a, newest first, at most limit of them
// (limit <= 0: all).
func (s *Store) History(a netip.Addr, limit int) ([]Event, error) {
	if !a.IsValid() {
		return nil, errors.New("store: history: invalid address")
	}
	a = sysban.CanonicalAddr(a)
	prefix := addrPrefix(a)
	// The key just past a's range: the address plus one, as 16 bytes.
	end := netip.AddrFrom16(a.As16()).Next()
	var out []Event
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		var k, v []byte
		if end.IsValid() {
			k, _ = c.Seek(addrPrefix(end))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else { // a is the last address there is
			k, v = c.Last()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			e.Addr = a
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history %s: %w", a, err)
	}
	return out, nil
}

// Remove lifts the current bans of exactly nets (an address is a /32 or
// /128; a wider ban covering it is not lifted) in jail (every jail when
// jail is ""), records an unban event with reason for each, and returns the
// bans it removed so that the caller can take them out of the kernel.
// Prefixes without a current ban are ignored.
func (s *Store) Remove(jail string, nets []netip.Prefix, reason string) ([]Record, error) {
	for _, p := range nets {
		if !p.IsValid() {
			return nil, errors.New("store: remove: invalid address")
		}
	}
	var removed []Record
	err := s.update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		cur := tx.Bucket(bucketBans)
		var jails []string
		if jail != "" {
			jails = []string{jail}
		} else if err := eachJail(cur, func(_ *bolt.Cursor, j string) error {
			jails = append(jails, j)
			return nil
		}); err != nil {
			return err
		}
		for _, p := range nets {
			p = sysban.CanonicalPrefix(p)
			for _, j := range jails {
				k := banKey(j, p)
				v := cur.Get(k)
				if v == nil {
					continue
				}
				r, err := decodeRecord(s.names, j, p, v)
				if err != nil {
					// Still lift it: a damaged record must not make a ban stick.
					s.log.Warn("removing damaged ban record", "jail", j, "prefix", p, "err", err)
					r = Record{Ban: sysban.Ban{Jail: j, Prefix: p}}
				}
				if err := cur.Delete(k); err != nil {
					return err
				}
				if err := s.putUnban(tx, r, reason); err != nil {
					return err
				}
				removed = append(removed, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: remove: %w", err)
	}
	return removed, nil
}

// RemoveJail lifts every current ban of jail (every jail when jail is ""),
// e.g. when a reload drops the jail or for "unban --all", records an unban
// event with reason for each, and returns them.
func (s *Store) RemoveJail(jail, reason string) ([]Record, error) {
	var removed []Record
	err := s.update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		cur := tx.Bucket(bucketBans)
		prefix := []byte(nil)
		if jail != "" {
			prefix = append([]byte(jail), 0)
		}
		var keys [][]byte
		c := cur.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decodeBan(s.names, k, v)
			if err != nil {
				s.log.Warn("removing damaged ban record", "key", fmt.Sprintf("%x", k), "err", err)
			} else {
				removed = append(removed, r)
			}
			keys = append(keys, bytes.Clone(k))
		}
		// Delete after the scan: deleting under a moving bbolt cursor skips keys.
		for _, k := range keys {
			if err := cur.Delete(k); err != nil {
				return err
			}
		}
		for _, r := range removed {
			if err := s.putUnban(tx, r, reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: remove jail %q: %w", jail, err)
	}
	return removed, nil
}

// Enforce turns the observed bans of jail still due at now into enforced
// ones (observe mode was turned off) and returns them, for the caller to
// put in the kernel. History is not written: the offence was recorded when
// the ban was decided.
func (s *Store) Enforce(jail string, now time.Time) ([]Record, error) {
	var out []Record
	err := s.update(func(tx *bolt.Tx) error {
		out = out[:0]
		cur := tx.Bucket(bucketBans)
		prefix := append([]byte(jail), 0)
		type change struct {
			k []byte
			r Record
		}
		var changes []change
		c := cur.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decodeBan(s.names, k, v)
			if err != nil || !r.Observed || (!r.Permanent() && !r.Expiry().After(now)) {
				continue
			}
			r.Observed = false
			changes = append(changes, change{bytes.Clone(k), r})
		}
		// Written after the scan: a Put under a moving cursor may skip keys.
		for _, ch := range changes {
			if err := cur.Put(ch.k, encodeRecord(ch.r)); err != nil {
				return err
			}
			out = append(out, ch.r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: enforce %s: %w", jail, err)
	}
	return out, nil
}

// Expire moves current bans whose time ran out by now to history as unban
// events with reason "expired", and returns them, so the daemon can count
// and announce what the kernel lifted on its own. At most limit per call
// keeps each transaction short.
//
// It scans the bans only once the earliest expiry it knows of has come:
// the daemon calls it every few seconds, and a scan of 100,000 bans every
// 5 s kept every page of them resident and cost a write transaction (an
// fsync) each time, with nothing to expire for an hour.
func (s *Store) Expire(now time.Time, limit int) ([]Record, error) {
	if !s.expiryDue(now) {
		return nil, nil
	}
	var expired []Record
	err := s.update(func(tx *bolt.Tx) error {
		expired = expired[:0]
		cur := tx.Bucket(bucketBans)
		var keys [][]byte
		next := int64(math.MaxInt64) // the earliest expiry of the bans kept
		c := cur.Cursor()
		pace := scanPacer{s: s, tx: tx}
		k, v := c.First()
		for ; k != nil && len(keys) < limit; k, v = c.Next() {
			pace.visited()
			// Most bans are not over: only their heads are decoded, the
			// lines of the expired ones only (they are announced).
			r, err := decodeBanHead(s.names, k, v)
			if err != nil || r.Permanent() {
				continue // damaged records are left for Due to report
			}
			if r.Expiry().After(now) {
				next = min(next, r.Expiry().UnixNano())
				continue
			}
			if r, err = decodeBan(s.names, k, v); err != nil {
				continue
			}
			keys = append(keys, bytes.Clone(k))
			expired = append(expired, r)
		}
		if k != nil {
			next = 0 // stopped at limit: the rest is unknown
		}
		for _, k := range keys {
			if err := cur.Delete(k); err != nil {
				return err
			}
		}
		for _, r := range expired {
			if err := s.putUnban(tx, r, "expired"); err != nil {
				return err
			}
		}
		s.setNextExpiry(next)
		return nil
	})
	s.releasePages()
	if err != nil {
		s.setNextExpiry(0) // rolled back: scan again next time
		return nil, fmt.Errorf("store: expire: %w", err)
	}
	return expired, nil
}

// expiryDue reports whether a ban may have expired by now.
func (s *Store) expiryDue(now time.Time) bool {
	s.expiryMu.Lock()
	defer s.expiryMu.Unlock()
	return s.nextExpiry == 0 || s.nextExpiry <= now.UnixNano()
}

func (s *Store) setNextExpiry(ns int64) {
	s.expiryMu.Lock()
	s.nextExpiry = ns
	s.expiryMu.Unlock()
}

// lowerNextExpiry notes a ban stored with expiry t.
func (s *Store) lowerNextExpiry(t time.Time) {
	s.expiryMu.Lock()
	if s.nextExpiry != 0 {
		s.nextExpiry = max(min(s.nextExpiry, t.UnixNano()), 1)
	}
	s.expiryMu.Unlock()
}

func (s *Store) putUnban(tx *bolt.Tx, r Record, reason string) error {
	hist := tx.Bucket(bucketHistory)
	seq, err := hist.NextSequence()
	if err != nil {
		return err
	}
	p := r.Network()
	ev := Event{Kind: EventUnban, Jail: r.Jail, Bits: p.Bits(), Reason: cut(reason, maxSource)}
	return hist.Put(historyKey(p.Addr(), s.now(), seq), encodeEvent(ev))
}

// Purge deletes history events older than olderThan (the dbpurgeage
// horizon: Offences forgets them) and current bans that have expired by
// now, in transactions of at most 10,000 deletes so that the ban path
// never waits long. It returns how many entries it deleted.
func (s *Store) Purge(olderThan time.Time) (int, error) {
	now := s.now()
	total := 0
	defer s.releasePages()
	for {
		n, more, err := s.purgeSome(olderThan, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: purge: %w", err)
		}
		if !more {
			return total, nil
		}
	}
}

// purgeSome deletes up to s.purgeChunk entries; more says whether it
// stopped at the limit.
func (s *Store) purgeSome(olderThan, now time.Time) (n int, more bool, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		n, more = 0, false
		var keys [][]byte
		cur := tx.Bucket(bucketBans)
		c := cur.Cursor()
		for k, v := c.First(); k != nil && len(keys) < s.purgeChunk; k, v = c.Next() {
			r, err := decodeBan(s.names, k, v)
			if err != nil {
				continue // left for Due to report; never guessed expired
			}
			if !r.Permanent() && !r.Expiry().After(now) {
				keys = append(keys, bytes.Clone(k))
			}
		}
		for _, k := range keys {
			if err := cur.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)

		keys = keys[:0]
		cut := timeKey(olderThan)
		hist := tx.Bucket(bucketHistory)
		c = hist.Cursor()
		for k, _ := c.First(); k != nil && n+len(keys) < s.purgeChunk; k, _ = c.Next() {
			if len(k) == 32 && binary.BigEndian.Uint64(k[16:24]) < cut {
				keys = append(keys, bytes.Clone(k))
			}
		}
		for _, k := range keys {
			if err := hist.Delete(k); err != nil {
				return err
			}
		}
		n += len(keys)
		more = n >= s.purgeChunk
		return nil
	})
	return n, more, err
}

// BansSince returns the ban events of every address that started at or
// after since, oldest first: what recidive-style counting must replay after
// a restart so that its window does not start afresh. It reads the whole
// history (keyed by address, not time), which Purge keeps bounded; a
// damaged entry is logged and skipped like in Due.
func (s *Store) BansSince(since time.Time) ([]Event, error) {
	var out []Event
	bad := 0
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
			if len(k) == 32 && keyTime(binary.BigEndian.Uint64(k[16:])).Before(since) {
				return nil // too old: skip without decoding the value
			}
			e, err := decodeEvent(k, v)
			if err != nil {
				bad++
				return nil
			}
			if e.Kind == EventBan {
				out = append(out, e)
			}
			return nil
		})
	})
	s.releasePages()
	if err != nil {
		return nil, fmt.Errorf("store: bans since %s: %w", since.Format(time.RFC3339), err)
	}
	if bad > 0 {
		s.log.Warn("history: skipped damaged entries", "entries", bad)
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}
