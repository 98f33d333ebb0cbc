package nflog

import "github.com/sysban/sysban/nft"

// Kind is what a logged packet was logged for.
type Kind uint8

const (
	KindBanned Kind = iota + 1 // from an address banned in a jail
	KindProbe                  // a new connection to a trap port
)

// ParsePrefix reads the log prefix the nft rules wrote (nft.ParseLogPrefix
// says which are sysban's): a ban and its jail, or a probe. ok is false for
// anything else.
func ParsePrefix(s string) (kind Kind, jail string, ok bool) {
	jail, probe, ok := nft.ParseLogPrefix(s)
	switch {
	case !ok:
		return 0, "", false
	case probe:
		return KindProbe, "", true
	}
	return KindBanned, jail, true
}
