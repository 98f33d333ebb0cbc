package config

import (
	"reflect"
	"testing"

	"github.com/sysban/sysban"
)

func TestNFLOGDefaults(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := NFLOG{
		Enabled: false, Group: 7422, Rate: 200, Snaplen: 128, Banned: true,
		TrapTCP: []sysban.PortRange{{First: 23, Last: 23}, {First: 3389, Last: 3389}, {First: 5900, Last: 5900}},
	}
	if !reflect.DeepEqual(cfg.NFLOG, want) {
		t.Errorf("nflog = %+v, want %+v", cfg.NFLOG, want)
	}
	if cfg.NFLOG.Watching() {
		t.Error("the built-in config watches traffic: nflog must be off by default")
	}
	for _, j := range cfg.Jails {
		if j.Name == "portprobe" {
			if j.Enabled || j.Filter != "portprobe" || len(j.Ports) != 0 || j.Protocol != sysban.All || j.MaxRetry != 3 {
				t.Errorf("portprobe jail = %+v, want disabled, all ports and protocols, maxretry 3", j)
			}
			return
		}
	}
	t.Error("no portprobe jail in the built-in config")
}

func TestNFLOGSection(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		want    func(n NFLOG) bool
		wantErr string // substring; "" = must load
	}{
		{
			name: "enabled with trap ports and the jail",
			yaml: "nflog: {enabled: true, group: 5, rate: 50, snaplen: 96, banned: false, trapports: {tcp: [telnet, 2323, 8000-8010], udp: [161]}}\njails: {portprobe: {enabled: true}}",
			want: func(n NFLOG) bool {
				return n.Enabled && n.Group == 5 && n.Rate == 50 && n.Snaplen == 96 && !n.Banned &&
					reflect.DeepEqual(n.TrapTCP, []sysban.PortRange{{First: 23, Last: 23}, {First: 2323, Last: 2323}, {First: 8000, Last: 8010}}) &&
					reflect.DeepEqual(n.TrapUDP, []sysban.PortRange{{First: 161, Last: 161}}) && n.Watching()
			},
		},
		{
			name: "environment",
			yaml: "nflog: {enabled: true}",
			env:  []string{"SYSBAN_NFLOG_GROUP=9", "SYSBAN_NFLOG_TRAPPORTS_UDP=161,5060"},
			want: func(n NFLOG) bool {
				return n.Group == 9 && reflect.DeepEqual(n.TrapUDP, []sysban.PortRange{{First: 161, Last: 161}, {First: 5060, Last: 5060}})
			},
		},
		{
			name: "banned only, no trap ports",
			yaml: "nflog: {enabled: true, trapports: {tcp: []}}",
			want: func(n NFLOG) bool { return n.Banned && len(n.TrapTCP) == 0 && n.Watching() },
		},
		{name: "watches nothing", yaml: "nflog: {enabled: true, banned: false, trapports: {tcp: []}}", wantErr: "nflog.enabled: nflog is enabled but watches nothing"},
		{name: "group out of range", yaml: "nflog: {group: 65536}", wantErr: "nflog.group: 65536 is out of range [0, 65535]"},
		{name: "rate zero", yaml: "nflog: {rate: 0}", wantErr: "nflog.rate: 0 is out of range"},
		{name: "snaplen too small for headers", yaml: "nflog: {snaplen: 40}", wantErr: "nflog.snaplen: 40 is out of range [64, 4096]"},
		{name: "bad trap port", yaml: "nflog: {trapports: {tcp: [70000]}}", wantErr: "nflog.trapports.tcp: port 70000: want 1-65535"},
		{name: "unknown protocol", yaml: "nflog: {trapports: {sctp: [1]}}", wantErr: "nflog.trapports.sctp: unknown key"},
		{name: "typo", yaml: "nflog: {enable: true}", wantErr: `nflog.enable: unknown key (did you mean "enabled"?)`},
		{name: "banned not a bool", yaml: "nflog: {banned: maybe}", wantErr: "nflog.banned: want true or false"},
		{name: "portprobe jail without nflog", yaml: "jails: {portprobe: {enabled: true}}", wantErr: "jail portprobe reads the probes of nflog.trapports, but nflog is not enabled"},
		{name: "portprobe jail without trap ports", yaml: "nflog: {enabled: true, trapports: {tcp: []}}\njails: {portprobe: {enabled: true}}", wantErr: "would never ban anyone"},
		{name: "unknown env key", yaml: "", env: []string{"SYSBAN_NFLOG_TRAPPORTS_ICMP=1"}, wantErr: "SYSBAN_NFLOG_TRAPPORTS_ICMP: no such setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseCase(t, tt.yaml, tt.env, tt.wantErr)
			if cfg == nil {
				return
			}
			if !tt.want(cfg.NFLOG) {
				t.Errorf("nflog = %+v", cfg.NFLOG)
			}
		})
	}
}
