package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

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

// signatureRefused checks v (read under key) and counts and logs a refusal.
func (n *Node) signatureRefused(key string, v Value) bool {
	err := n.trust.check(key, v)
	if err == nil {
		return false
	}
	n.stats.refused.WithLabelValues(RefusedSignature).Inc()
	n.log.Warn("fleet: entry refused", "key", key, "reason", RefusedSignature, "err", err, slog.String("node", v.Node))
	return true
}
