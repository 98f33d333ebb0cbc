package pipeline

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// fakeOffences answers Offences from a map and records the calls.
type fakeOffences struct {
	mu    sync.Mutex
	n     map[string]int // jail + " " + address (single) or prefix -> earlier bans
	err   error
	calls int
}

func (f *fakeOffences) Offences(jail string, p netip.Prefix) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return 0, f.err
	}
	if p.IsSingleIP() {
		return f.n[jail+" "+p.Addr().String()], nil
	}
	return f.n[jail+" "+p.String()], nil
}

func TestBanIncrementBanTime(t *testing.T) {
	const week = 7 * 24 * time.Hour
	on := BanIncrement{Enabled: true}
	tests := []struct {
		name   string
		inc    BanIncrement
		base   time.Duration
		prior  int
		jitter time.Duration
		want   time.Duration
	}{
		{"first offence gets bantime", on, time.Hour, 0, 0, time.Hour},
		{"second doubles", on, time.Hour, 1, 0, 2 * time.Hour},
		{"third quadruples", on, time.Hour, 2, 0, 4 * time.Hour},
		{"eighth is not capped yet", on, time.Hour, 7, 0, 128 * time.Hour},
		{"ninth is capped at the default week", on, time.Hour, 8, 0, week},
		{"huge count saturates at the cap", on, time.Hour, 1 << 20, 0, week},
		{"own multiplier", BanIncrement{Enabled: true, Multiplier: 1.5}, 10 * time.Minute, 2, 0, 22*time.Minute + 30*time.Second},
		{"multiplier 1 never grows", BanIncrement{Enabled: true, Multiplier: 1}, time.Hour, 50, 0, time.Hour},
		{"own cap", BanIncrement{Enabled: true, MaxTime: 3 * time.Hour}, time.Hour, 2, 0, 3 * time.Hour},
		{"cap below bantime never shortens", BanIncrement{Enabled: true, MaxTime: time.Minute}, time.Hour, 3, 0, time.Hour},
		{"jitter adds", on, time.Hour, 1, 5 * time.Minute, 2*time.Hour + 5*time.Minute},
		{"jitter stays under the cap", BanIncrement{Enabled: true, MaxTime: 2 * time.Hour}, time.Hour, 1, 5 * time.Minute, 2 * time.Hour},
		{"disabled", BanIncrement{Multiplier: 3}, time.Hour, 5, 0, time.Hour},
		{"permanent stays permanent", on, sysban.Permanent, 5, 0, sysban.Permanent},
		{"negative count is a first offence", on, time.Hour, -1, 0, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.inc.BanTime(tt.base, tt.prior, tt.jitter); got != tt.want {
				t.Errorf("BanTime(%v, %d, %v) = %v, want %v", tt.base, tt.prior, tt.jitter, got, tt.want)
			}
		})
	}
}

// TestIncrementDecides runs the pipeline with a fake offence counter: the
// bans it decides carry the increased bantime, and it remembers them for
// that long.
func TestIncrementDecides(t *testing.T) {
	const attacker = "192.0.2.9"
	inc := BanIncrement{Enabled: true, MaxTime: 24 * time.Hour}
	tests := []struct {
		name      string
		bantime   time.Duration
		inc       BanIncrement
		prior     int
		err       error
		want      time.Duration
		wantCalls int
		wantLog   string
	}{
		{"1st ban", time.Hour, inc, 0, nil, time.Hour, 1, ""},
		{"2nd ban", time.Hour, inc, 1, nil, 2 * time.Hour, 1, ""},
		{"3rd ban", time.Hour, inc, 2, nil, 4 * time.Hour, 1, ""},
		{"capped", time.Hour, inc, 9, nil, 24 * time.Hour, 1, ""},
		{"permanent jail is not asked", sysban.Permanent, inc, 3, nil, sysban.Permanent, 0, ""},
		{"disabled is not asked", time.Hour, BanIncrement{}, 3, nil, time.Hour, 0, ""},
		{"counter error falls back to bantime", time.Hour, inc, 3, errors.New("store: closed"), time.Hour, 1, "cannot count earlier bans"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var logs bytes.Buffer
			counter := &fakeOffences{n: map[string]int{"sshd " + attacker: tt.prior}, err: tt.err}
			jail := sshJail
			jail.BanTime, jail.Increment = tt.bantime, tt.inc
			p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{
				Now: clk.Now, Offences: counter, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			for range 3 {
				p.Handle(sshMsg(attacker))
			}
			bans := queued(p)
			if len(bans) != 1 || bans[0].Duration != tt.want {
				t.Fatalf("bans = %+v, want one of %v", bans, tt.want)
			}
			if counter.calls != tt.wantCalls {
				t.Errorf("Offences called %d times, want %d", counter.calls, tt.wantCalls)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tt.wantLog)
			}
			if tt.want == sysban.Permanent {
				return
			}
			// Failures just before the increased ban ends are "already
			// banned"; after it ends they count again.
			clk.Advance(tt.want - time.Second)
			for range 3 {
				p.Handle(sshMsg(attacker))
			}
			if b := queued(p); len(b) != 0 {
				t.Errorf("banned again %v into a ban of %v: %+v", tt.want-time.Second, tt.want, b)
			}
			clk.Advance(time.Second)
			for range 3 {
				p.Handle(sshMsg(attacker))
			}
			if b := queued(p); len(b) != 1 {
				t.Errorf("after the ban ended: bans %+v, want one", b)
			}
		})
	}
}

func TestIncrementJitter(t *testing.T) {
	counter := &fakeOffences{n: map[string]int{"sshd 192.0.2.9": 1}}
	jail := sshJail
	jail.Increment = BanIncrement{Enabled: true, RndTime: time.Minute}
	clk := newFakeClock()
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{Now: clk.Now, Offences: counter})
	seen := map[time.Duration]bool{}
	for range 20 {
		for range 3 {
			p.Handle(sshMsg("192.0.2.9"))
		}
		bans := queued(p)
		if len(bans) != 1 {
			t.Fatalf("bans = %+v, want one", bans)
		}
		d := bans[0].Duration
		if d < 2*time.Hour || d >= 2*time.Hour+time.Minute {
			t.Fatalf("duration %v outside [2h, 2h1m)", d)
		}
		seen[d] = true
		p.Forget("sshd", single(netip.MustParseAddr("192.0.2.9")))
	}
	if len(seen) < 2 {
		t.Errorf("20 bans with rndtime 1m all lasted %v: no jitter", seen)
	}
}

func TestIncrementValidation(t *testing.T) {
	tests := []struct {
		inc  BanIncrement
		want string
	}{
		{BanIncrement{Enabled: true, Multiplier: 0.5}, "pipeline: jails[0]: jail sshd: bantime increment: multiplier must be a number of at least 1"},
		{BanIncrement{Enabled: true, Multiplier: math.NaN()}, "pipeline: jails[0]: jail sshd: bantime increment: multiplier must be a number of at least 1"},
		{BanIncrement{Enabled: true, MaxTime: -time.Hour}, "pipeline: jails[0]: jail sshd: bantime increment: maxtime must be positive"},
		{BanIncrement{Enabled: true, RndTime: -time.Second}, "pipeline: jails[0]: jail sshd: bantime increment: rndtime must not be negative"},
		{BanIncrement{Enabled: true}, ""},
	}
	for _, tt := range tests {
		jail := sshJail
		jail.Increment = tt.inc
		err := Validate(Config{Jails: []JailSpec{jail}})
		if got := errString(err); got != tt.want {
			t.Errorf("%+v: error %q, want %q", tt.inc, got, tt.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
