// Package config loads and validates sysban's configuration: the built-in
// configs/sysban.yaml, a user file layered over it, conf.d/*.yaml overlays in
// name order (fail2ban's jail.local / jail.d habit) and SYSBAN_* environment
// overrides, merged with viper and decoded strictly. Unknown keys, bad
// durations, addresses, ports, regexes and dangling jail->filter references
// are errors that name the file (or variable), the key and why. A Config is
// immutable; reload builds a new one.
//
// Where things are:
//
//   - load.go merges the layers and matches SYSBAN_* variables to keys.
//   - decode.go reads the merged settings section by section. Each section
//     has a decoder of its own with the keys it accepts declared beside the
//     code that reads them: listen.go, jails.go (defaults and jails),
//     filters.go (and ParseFilter, a filter file on its own), nflog.go,
//     actions.go (actions and notify), sections.go (nft, state, control,
//     metrics, log). Adding a key to a section is a change in its file
//     only: key checking and the environment follow the same list, and
//     TestEveryKeyIsRead fails for a key declared but never read.
//   - decoder.go holds the readers of single values (strings, lists,
//     numbers, durations, addresses) that every error goes through;
//     values.go and ports.go parse durations, prefixes and ports.
//
// The rules of specs another package owns are that package's: the pipeline
// validates filters and jails (pipeline.ValidateFilter, ValidateJail), notify
// validates actions. config only puts the file and the key in front of
// their reasons, so `sysban check`, reload and the daemon's start refuse the
// same things with the same words.
package config
