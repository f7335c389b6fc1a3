// Package tlsutil owns LunaSentri's TLS material: it loads PEM files into
// tls.Configs for the API server, for server-to-server calls (Raft and the
// internal HTTP endpoints, both mutually authenticated against the
// cluster's CA) and for clients (agent, CLI), and it creates a private CA
// and certificates with the standard library (`lunasentri tls ca create`,
// `lunasentri tls cert create`), in the manner of `consul tls`.
//
// Server certificates carry both the server and client auth key usages, so
// a node presents the same certificate whichever side of a connection it
// is; client certificates (`-client`) carry only client auth and can never
// pass as a server: peers require the server usage of each other.
//
// It must never read flags or the environment, log, or keep package-level
// state: callers pass file names and get configs back.
package tlsutil
