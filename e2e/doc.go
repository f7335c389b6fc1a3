// Package e2e runs LunaSentri as users do: it builds the binary and starts
// real server processes on loopback, then kills (-9), freezes (SIGSTOP) and
// restarts them while checking what clients and receivers see.
//
// It must never reach into the server's packages: it talks to the cluster
// only through the command line and the HTTP API in docs/api.md.
package e2e
