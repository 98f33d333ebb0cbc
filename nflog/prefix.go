package nflog

import (
	"strings"

	"github.com/sysban/sysban/nft"
)

// Kind is what a logged packet was logged for.
type Kind uint8

const (
	KindBanned Kind = iota + 1 // from an address banned in a jail
	KindProbe                  // a new connection to a trap port
)

// maxJailLen is the longest jail name a prefix can carry: the kernel's
// NFLOG prefix holds 63 bytes and a NUL.
const maxJailLen = 63 - len(nft.BanPrefix)

// ParsePrefix reads the log prefix the nft rules wrote: nft.BanPrefix and a
// jail name, or nft.ProbePrefix. ok is false for anything else (another
// program's rule logging to the same group). The jail name is checked
// against the characters jail names may hold, so a foreign rule cannot
// feed arbitrary text into metric labels.
func ParsePrefix(s string) (kind Kind, jail string, ok bool) {
	if s == nft.ProbePrefix {
		return KindProbe, "", true
	}
	jail, found := strings.CutPrefix(s, nft.BanPrefix)
	if !found || !validJail(jail) {
		return 0, "", false
	}
	return KindBanned, jail, true
}

// validJail accepts what nft accepts as a jail name (ASCII letters, digits,
// '_', and '-' or '.' after the first byte) within the prefix's room.
func validJail(s string) bool {
	if s == "" || len(s) > maxJailLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case i > 0 && (c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
