package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sysban/sysban/notify"
)

// Notify is the notification section: queueing for every action and the
// shared whois client.
type Notify struct {
	QueueSize    int
	DrainTimeout time.Duration
	Whois        notify.WhoisOptions
}

// actionKeys are the keys of actions.NAME, read by decodeActions; the
// keys below mail, webhook and exec are the fields of notify's spec types
// (structInto).
var actionKeys = []string{"on", "mail", "webhook", "exec"}

// notifyKeys and whoisKeys are the keys of notify and notify.whois, read
// by decodeNotify.
var (
	notifyKeys = []string{"queuesize", "draintimeout", "whois"}
	whoisKeys  = []string{"server", "timeout"}
)

// decodeActions reads the actions section into notify.ActionSpecs, each
// validated by notify itself so the rules live in one place.
func (d *decoder) decodeActions(root map[string]any) map[string]notify.ActionSpec {
	out := map[string]notify.ActionSpec{}
	d.namedEntries(root, "actions", "action", nameRule, "one of mail, webhook, exec", func(key, name string, am map[string]any) {
		d.checkKeys(key, am, actionKeys)
		spec := notify.ActionSpec{Name: name, On: d.strings(am, key+".on")}
		if _, ok := am["mail"]; ok {
			spec.Mail = &notify.MailSpec{}
			d.structInto(d.section(am, key+".mail"), key+".mail", spec.Mail)
		}
		if _, ok := am["webhook"]; ok {
			spec.Webhook = &notify.WebhookSpec{}
			d.structInto(d.section(am, key+".webhook"), key+".webhook", spec.Webhook)
		}
		if _, ok := am["exec"]; ok {
			spec.Exec = &notify.ExecSpec{}
			d.structInto(d.section(am, key+".exec"), key+".exec", spec.Exec)
		}
		if err := spec.Validate(); err != nil {
			d.fail(key, "%v", err)
		}
		out[name] = spec
	})
	return out
}

func (d *decoder) decodeNotify(root map[string]any) Notify {
	nm := d.section(root, "notify")
	d.checkKeys("notify", nm, notifyKeys)
	var n Notify
	if _, ok := nm["queuesize"]; ok {
		n.QueueSize = d.intRange(nm, "notify.queuesize", 1, 1<<20)
	}
	if _, ok := nm["draintimeout"]; ok {
		n.DrainTimeout = d.duration(nm, "notify.draintimeout", false)
	}
	if _, ok := nm["whois"]; ok {
		wm := d.section(nm, "notify.whois")
		d.checkKeys("notify.whois", wm, whoisKeys)
		n.Whois.Server = d.str(wm, "notify.whois.server")
		if _, ok := wm["timeout"]; ok {
			n.Whois.Timeout = d.duration(wm, "notify.whois.timeout", false)
		}
	}
	return n
}

// structInto fills the exported fields of the struct ptr points to from m,
// matching lower-cased field names, so notify's spec types are the schema.
// Supported field types: string, bool, int, []string, time.Duration and
// map[string]string.
func (d *decoder) structInto(m map[string]any, key string, ptr any) {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	var names []string
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if !t.Field(i).IsExported() {
			continue
		}
		n := strings.ToLower(t.Field(i).Name)
		names = append(names, n)
		fields[n] = i
	}
	d.checkKeys(key, m, names)
	durationType := reflect.TypeOf(time.Duration(0))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		i, ok := fields[k]
		if !ok {
			continue
		}
		fk := key + "." + k
		f := v.Field(i)
		switch {
		case f.Type() == durationType:
			f.SetInt(int64(d.duration(m, fk, false)))
		case f.Kind() == reflect.String:
			f.SetString(d.str(m, fk))
		case f.Kind() == reflect.Bool:
			f.SetBool(d.boolean(m, fk))
		case f.Kind() == reflect.Int:
			f.SetInt(int64(d.intRange(m, fk, -1, 1<<30)))
		case f.Type() == reflect.TypeOf([]string(nil)):
			f.Set(reflect.ValueOf(d.strings(m, fk)))
		case f.Type() == reflect.TypeOf(map[string]string(nil)):
			sm := d.section(m, fk)
			out := make(map[string]string, len(sm))
			for _, sk := range slices.Sorted(maps.Keys(sm)) {
				out[sk] = d.str(sm, fk+"."+sk)
			}
			f.Set(reflect.ValueOf(out))
		default:
			panic(fmt.Sprintf("config: structInto: unsupported field %s %s", t.Field(i).Name, f.Type()))
		}
	}
}
