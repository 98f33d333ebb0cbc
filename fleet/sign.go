package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nkeys"
)

// sigDomain starts every signed text, so that a node's signature over a
// ban can never be taken for its signature over anything else (its NATS
// login nonce is signed with the same key).
const sigDomain = "sysban-fleet-value-v1\n"

// signer signs this node's values with the ed25519 key of its nkey. The
// private key is derived once: nkeys derives it from the seed at every
// Sign.
type signer struct{ priv ed25519.PrivateKey }

func newSigner(kp nkeys.KeyPair) (*signer, error) {
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("fleet: nkey: %w", err)
	}
	_, raw, err := nkeys.DecodeSeed(seed)
	if err != nil || len(raw) != ed25519.SeedSize {
		return nil, fmt.Errorf("fleet: nkey: not an ed25519 seed")
	}
	return &signer{priv: ed25519.NewKeyFromSeed(raw)}, nil
}

// signedText is what a signature covers: the domain, the key and the value
// as JSON without its signature. An enforcer verifies the value it
// decoded, re-encoded; so field order, spacing or unknown fields in the
// bytes do not matter, only what the value says.
func signedText(key string, v Value) ([]byte, error) {
	v.Sig = ""
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(sigDomain+key+"\n"), b...), nil
}

// sign returns v signed for key. v first makes one JSON round trip, so
// that what is signed is what an enforcer decodes (a log line with invalid
// UTF-8 reads back with U+FFFD, a time zone as an offset).
func (s *signer) sign(key string, v Value) (Value, error) {
	v.Sig = ""
	b, err := json.Marshal(v)
	if err != nil {
		return v, err
	}
	var norm Value
	if err := json.Unmarshal(b, &norm); err != nil {
		return v, err
	}
	text, err := signedText(key, norm)
	if err != nil {
		return v, err
	}
	norm.Sig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.priv, text))
	return norm, nil
}

// sign signs v when this node has an nkey; unsigned (and logged) when
// signing fails, which only an unencodable value does, and publishMsg
// refuses that one anyway.
func (n *Node) sign(k Key, v Value) Value {
	if n.signer == nil {
		return v
	}
	sv, err := n.signer.sign(k.String(), v)
	if err != nil {
		n.log.Warn("fleet: signing a value", "key", k.String(), "err", err)
		return v
	}
	return sv
}

// checkedSet remembers the entries whose signature was good: every
// resync reads the whole bucket again, and one ed25519 verification per
// entry would cost seconds of CPU for 100,000 bans each time. An entry is
// remembered by a hash of its key and bytes keyed with a secret drawn at
// start, so a server that cannot compute it cannot make an altered entry
// pass for a checked one. 8 bytes an entry (plus the map's own).
type checkedSet struct {
	secret [32]byte

	mu    sync.Mutex
	sums  map[uint64]struct{}
	limit int
}

func newCheckedSet() *checkedSet {
	c := &checkedSet{sums: map[uint64]struct{}{}, limit: 4096}
	rand.Read(c.secret[:])
	return c
}

func (c *checkedSet) sum(key string, data []byte) uint64 {
	h := sha256.New()
	h.Write(c.secret[:])
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(data)
	var out [sha256.Size]byte
	return binary.LittleEndian.Uint64(h.Sum(out[:0]))
}

func (c *checkedSet) has(sum uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.sums[sum]
	return ok
}

// add remembers sum. When the set outgrows twice the bucket (entries
// replaced or expired leave theirs behind) it starts afresh, so the
// next resync checks everything once more; while the bucket's size is
// not known yet (the first snapshot) it grows.
func (c *checkedSet) add(sum uint64, bucketLen func() int) {
	c.mu.Lock()
	full := len(c.sums) >= c.limit
	c.mu.Unlock()
	bucket := 0
	if full {
		bucket = bucketLen() // takes the node's lock: not under ours
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !full || len(c.sums) < c.limit:
	case bucket == 0 || len(c.sums) < 2*bucket:
		c.limit = 2 * len(c.sums)
	default:
		c.sums, c.limit = map[uint64]struct{}{}, max(4096, 2*bucket)
	}
	c.sums[sum] = struct{}{}
}

// trustKeys are the public keys of the nodes whose values must carry a
// good signature.
type trustKeys map[string]ed25519.PublicKey

var (
	errUnsigned = errors.New("no signature, but the node has a known key")
	errBadSig   = errors.New("bad signature")
)

// newTrustKeys decodes node=public nkey pairs (checked by Config.Validate).
func newTrustKeys(keys map[string]string) (trustKeys, error) {
	t := trustKeys{}
	for node, pub := range keys {
		raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(pub))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("fleet: trustkeys.%s: %q is not a user public nkey", node, pub)
		}
		t[node] = ed25519.PublicKey(raw)
	}
	return t, nil
}

// check verifies v, read under key, against its node's known key. A node
// without a known key is not checked: its values are accepted unsigned
// (and a signature it carries cannot be verified).
func (t trustKeys) check(key string, v Value) error {
	pub, ok := t[v.Node]
	if !ok {
		return nil
	}
	if v.Sig == "" {
		return errUnsigned
	}
	sig, err := base64.RawURLEncoding.DecodeString(v.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errBadSig
	}
	text, err := signedText(key, v)
	if err != nil || !ed25519.Verify(pub, text, sig) {
		return errBadSig
	}
	return nil
}

// signatureRefused checks v (decoded from data, read under key) and counts
// and logs a refusal. Entries already checked are not checked again.
func (n *Node) signatureRefused(key string, data []byte, v Value) bool {
	if _, known := n.trust[v.Node]; !known {
		return false
	}
	sum := n.checked.sum(key, data)
	if n.checked.has(sum) {
		return false
	}
	err := n.trust.check(key, v)
	if err == nil {
		n.checked.add(sum, func() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.known.bans) })
		return false
	}
	n.stats.refused.WithLabelValues(RefusedSignature).Inc()
	n.log.Warn("fleet: entry refused", "key", key, "reason", RefusedSignature, "err", err, slog.String("node", v.Node))
	return true
}
