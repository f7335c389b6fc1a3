// Package server assembles one LunaSentri node from the building blocks:
// the FSM, the Raft cluster, the leader-only monitor and dispatcher, the
// HTTP API and the metrics. It owns the adapters between them (each package
// defines the small interface it consumes) and the start and shutdown order.
//
// It must never hold business logic of its own: a decision made here is a
// decision hidden from the packages' tests.
package server
