// Package sysban holds the domain types that flow through the daemon's
// stages — Message (receiver -> pipeline), Failure and Ban (pipeline -> nft)
// and the jail rule shape the nft backend enforces — so that every stage can
// see them without importing another stage. It has no behaviour of its own
// beyond small value helpers.
//
// Data flows one way: receiver -> pipeline -> nft. Each stage declares the
// small interface it needs from the next (receiver.Handler, pipeline.Banner);
// cmd/sysban wires the concrete types together.
package sysban
