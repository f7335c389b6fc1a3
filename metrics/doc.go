// Package metrics owns LunaSentri's Prometheus collectors and their
// registration on a registry the caller injects.
//
// Cluster-wide numbers (transitions, machines by status, pending
// deliveries) are read from the replicated FSM at scrape time, so every node
// reports the same values and they survive restarts and snapshot restores.
// Raft, gossip and readiness are read from their sources at scrape time too;
// sources beyond State and Raft are optional (see Options), and a Raft source
// that also implements GossipSource or ReadySource serves those metrics.
// Latencies (Raft apply, heartbeat flush, detection, notification delay) are
// histograms fed by the packages that measure them.
//
// It must never register on the global Prometheus registry, never label a
// metric by machine unless the operator opted in (Options.PerMachine), and
// never add more than an unlabelled atomic increment to the heartbeat path.
package metrics
