// Package fsm is LunaSentri's replicated state machine: machines, their
// liveness (last_seen, status), notification channels, the event history and
// the outbox of pending deliveries.
//
// It owns the command framing (one append-only type byte, then the body),
// Apply, Snapshot/Restore and the read-only queries every node serves from
// its own replica.
//
// It must never read a clock, draw randomness, touch the network or send a
// notification inside Apply: every time and id comes inside the command, so
// every node that applies the same log reaches byte-identical state. It
// imports none of LunaSentri's other packages; they import it.
package fsm
