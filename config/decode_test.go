package config

import (
	"strings"
	"testing"
)

// TestEveryKeyIsRead gives each declared key of each section a value no
// reader accepts and checks that the error names that key: a key declared
// but never read would be accepted silently, a key read but not declared
// would be refused as unknown.
func TestEveryKeyIsRead(t *testing.T) {
	const bad = "[[1]]" // not a string, number, bool, duration, list of strings or map
	var keys []string
	for _, k := range envKeys([]string{"sshd"}, []string{"myapp"}) {
		// Maps the built-in config sets: viper's merge keeps a map where
		// a later layer puts a list, so the value never reaches the
		// decoder. Their keys are tested one by one.
		if k != "defaults.bantimeincrement" && k != "nflog.trapports" && k != "jails.sshd.escalate" {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "notify.queuesize", "notify.draintimeout", "notify.whois", "notify.whois.server",
		"notify.whois.timeout", "actions.a.on", "actions.a.mail", "actions.a.webhook", "actions.a.exec")
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			parts := strings.Split(key, ".")
			var y strings.Builder
			for i, p := range parts {
				y.WriteString(strings.Repeat("  ", i) + p + ":")
				if i < len(parts)-1 {
					y.WriteString("\n")
				}
			}
			y.WriteString(" " + bad + "\n")
			_, err := Parse("test.yaml", []byte(y.String()), nil)
			if err == nil {
				t.Fatalf("%s: %s accepted", key, bad)
			}
			msg := err.Error()
			if !strings.Contains(msg, "test.yaml: "+key+":") && !strings.Contains(msg, "test.yaml: "+key+"[0]:") {
				t.Errorf("no error names %s:\n%v", key, err)
			}
			if strings.Contains(msg, key+": unknown key") {
				t.Errorf("%s is declared but refused as unknown:\n%v", key, err)
			}
		})
	}
}
