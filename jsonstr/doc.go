// Package jsonstr writes strings as JSON exactly as encoding/json does, for
// the hand-written encoders of outputs written often enough that
// encoding/json's reflection shows (sysban test --json, the fleet's bucket
// values). Attacker text reaches both, so the escaping is one piece of
// code, held byte for byte to encoding/json by its tests.
package jsonstr
