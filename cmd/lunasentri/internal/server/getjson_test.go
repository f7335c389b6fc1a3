package server

import (
	"net/http"
	"testing"
)

// getJSON GETs url and decodes the answer into out; anything but 200
// fails the test. The helpers that return decoded state use it: an HTTP
// error decoding to nothing would make checks such as "not a member" or
// "wiped" pass on it.
func getJSON(t testing.TB, url string, out any) {
	t.Helper()
	if code := call(t, "GET", url, testToken, nil, out); code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", url, code)
	}
}
