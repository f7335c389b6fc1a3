// Package jsonscan reads the small, fixed subsets of JSON that the
// heartbeat batch hot paths write (fsm's Raft entries, transport's
// forwarded batches) without encoding/json's reflection.
//
// It owns tokens (white space, literals, plain strings of printable ASCII
// with no escapes, integers, balanced objects) and the one structure both
// batches share, their list of beats. It must never accept
// anything encoding/json would read differently: a caller that gets false
// falls back to encoding/json, and both callers fuzz that the two agree.
// It imports nothing of LunaSentri's.
package jsonscan
