// Package filters holds the filters sysban ships, as data: each is a Spec
// (programs, anchored patterns with <HOST>, modes, vars, multi-line
// correlations) that package pipeline compiles and runs. This package
// imports nothing of sysban's, so pipeline, config and the commands can all
// read it.
//
// Layout, one filter per file:
//
//	spec.go               Spec and Correlation, the filter's fields
//	registry.go           All: the built-in filters, sorted by name
//	NAME.go               one filter (dashes as underscores: postfix_sasl.go)
//	shared_*.go           pieces several filters use (postfix's client
//	                      field, sendmail's queue-id correlations)
//	testdata/NAME.log     its annotated sample log; NAME.MODE.log for a
//	                      mode (format in testdata/README.md)
//	NAME_test.go          its table of lines, hostile ones included
//	fixture_test.go       runs every sample; TestRegistry holds the
//	                      registry, files and samples together
//	injection_test.go     fuzz targets that fill attacker-written fields
//	internal/gendoc       writes the table in docs/filters.md from All
//
// How a pattern binds the host. Log lines are full of attacker-written
// text: user names, passwords, HELO names, envelope addresses, paths, ident
// replies, certificate names. Every pattern is anchored at the start (^),
// and binds <HOST> by one of two rules; the comment above it says which:
//
//   - leftmost: the peer comes right after a fixed daemon-written prefix,
//     reached through fields the attacker cannot write or that cannot
//     contain a space or a bracket (postfix's "RCPT from name[IP]"), so
//     attacker text can only come after it;
//   - rightmost: attacker text comes first (a greedy .* over it) and
//     everything after the peer is daemon-written and matched strictly to
//     the end of the line ($), so the last candidate is the real one.
//
// Where attacker text sits on both sides of the peer (sendmail's echoed
// recipient, qmail's CHKUSER fields), the attacker fields are matched by
// classes that cannot hold their own delimiters: a line whose attacker
// fields contain them is a miss, never a wrong host. Each pattern carries
// the daemon's line it was written from, with the daemon version or
// distribution where forms differ.
package filters
