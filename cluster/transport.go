package cluster

import "github.com/hashicorp/raft"

// unpipelinedTransport is hashicorp's TCP transport with pipelined
// AppendEntries turned off, so Raft replicates one request at a time.
//
// Pipeline replication can deadlock (hashicorp/raft net_transport.go:
// netPipeline.AppendEntries waits on inprogressCh while decodeResponses
// waits on doneCh, after pipelineDecode returned on a follower's
// Success=false, e.g. a just-removed server). The stuck goroutines keep
// Raft's Shutdown from ever returning; we saw it when a leader left the
// cluster. grafana/pyroscope disabled pipelining for the same hang. Our
// write rate is a few batched entries per second, so pipelining buys
// nothing here.
type unpipelinedTransport struct {
	*raft.NetworkTransport
}

// AppendEntriesPipeline makes Raft fall back to plain AppendEntries.
func (unpipelinedTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
