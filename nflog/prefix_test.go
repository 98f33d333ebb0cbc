package nflog

import (
	"strings"
	"testing"

	"github.com/sysban/sysban/nft"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in   string
		kind Kind
		jail string
		ok   bool
	}{
		{nft.BanPrefix + "sshd", KindBanned, "sshd", true},
		{"sysban:ban:postfix-sasl", KindBanned, "postfix-sasl", true},
		{"sysban:ban:3proxy", KindBanned, "3proxy", true},
		{nft.ProbePrefix, KindProbe, "", true},
		{"sysban:ban:" + strings.Repeat("a", 52), KindBanned, strings.Repeat("a", 52), true},
		{"sysban:ban:" + strings.Repeat("a", 53), 0, "", false}, // longer than a prefix holds
		{"sysban:ban:", 0, "", false},
		{"sysban:ban:-x", 0, "", false},
		{"sysban:ban:ssh d", 0, "", false},
		{"sysban:ban:ssh\x00", 0, "", false},
		{"sysban:ban:sshd\n", 0, "", false},
		{"sysban:probe ", 0, "", false},
		{"sysban:probe:x", 0, "", false},
		{"SYSBAN:ban:sshd", 0, "", false},
		{"ulogd: ", 0, "", false},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		kind, jail, ok := ParsePrefix(tt.in)
		if kind != tt.kind || jail != tt.jail || ok != tt.ok {
			t.Errorf("ParsePrefix(%q) = %v, %q, %v; want %v, %q, %v", tt.in, kind, jail, ok, tt.kind, tt.jail, tt.ok)
		}
	}
}

// The reader accepts exactly the prefixes that fit the kernel's 64 bytes
// (63 and the NUL).
func TestPrefixFits(t *testing.T) {
	longest := nft.BanPrefix + strings.Repeat("j", 63-len(nft.BanPrefix))
	if _, jail, ok := ParsePrefix(longest); !ok || len(nft.BanPrefix+jail) != 63 {
		t.Errorf("the longest prefix that fits (63 bytes) is refused")
	}
	if _, _, ok := ParsePrefix(longest + "j"); ok {
		t.Errorf("a 64-byte prefix is accepted; the kernel never writes one")
	}
}

func TestParseHolder(t *testing.T) {
	table := "    0   1234     0 2 65535    100  1\n 7422 5678     0 2   128     10  1\n"
	for _, tt := range []struct {
		group uint16
		want  string
	}{{7422, "5678"}, {0, "1234"}, {7, ""}} {
		if got := parseHolder(table, tt.group); got != tt.want {
			t.Errorf("parseHolder(%d) = %q, want %q", tt.group, got, tt.want)
		}
	}
}
