// Package pipeline turns parsed syslog messages into ban decisions.
//
// Its one job: route each sysban.Message by program to the filters that care
// about it, match the text against those filters' anchored patterns to find
// the offending address, count failures per address per jail in a sliding
// findtime window, and when an address reaches maxretry hand a sysban.Ban to
// the firewall stage (a Banner) in batches.
//
// Data flows one way (receiver -> pipeline -> nft); Pipeline implements the
// receiver's Handler and needs only a Banner from the next stage. Memory is
// bounded: routing caches, tracked addresses per jail and the ban queue all
// have fixed limits, because every byte of input comes from the network.
package pipeline
