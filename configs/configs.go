// Package configs embeds sysban's built-in configuration, the file
// configs/sysban.yaml that `sysban run` uses when no --config is given and that
// every user config is layered over. Keeping it a plain YAML file means users
// read exactly what the binary runs on.
package configs

import _ "embed"

// Default is the text of configs/sysban.yaml.
//
//go:embed sysban.yaml
var Default []byte
