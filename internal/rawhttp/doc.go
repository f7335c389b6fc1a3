// Package rawhttp reads one HTTP/1.1 response's status and framing off a
// kept-alive connection, for the two load generators that write prebuilt
// heartbeat requests themselves: the bench's raw client
// (cmd/lunasentri-bench) and the e2e fleet's (e2e/fleet_client_test.go).
// Both exist because net/http's client costs about as much CPU as the
// servers they load on a shared machine.
//
// It owns only the reading of a response: status line, headers, a
// Content-Length or chunked body (discarded), and whether the connection
// may carry the next request. It must never be used by the server or the
// agent, which speak net/http. It imports nothing of ours.
package rawhttp
