// Package clusterinfo is what a server says about the cluster: its own
// Raft status, the members, the Raft configuration. Package cluster fills
// these types, transport serves them as JSON (the field tags are the API's,
// docs/api.md) and transport/ui shows them.
//
// It is a leaf that imports nothing of ours, so cluster and transport,
// which may not import each other, share one definition instead of
// mirroring it and copying field by field in cmd.
package clusterinfo
