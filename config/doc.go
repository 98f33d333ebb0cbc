// Package config loads and validates sysban's configuration: the built-in
// configs/sysban.yaml, a user file layered over it, conf.d/*.yaml overlays in
// name order (fail2ban's jail.local / jail.d habit) and SYSBAN_* environment
// overrides, merged with viper and decoded strictly. Unknown keys, bad
// durations, addresses, ports, regexes and dangling jail->filter references
// are errors that name the file (or variable), the key and why. A Config is
// immutable; reload builds a new one.
package config
