package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzServerConfigFile (issue 11): any config file is applied or refused
// with an error naming the file, never a panic.
func FuzzServerConfigFile(f *testing.F) {
	for _, s := range []string{"node_id = \"a\"\n", "join = [\"h:1\", \"h:2\"]\n", "bootstrap_expect = 3.5\n", "x {\n}\n",
		"offline_threshold = \"-1s\"\n", "tls_cert = 1\n", "{}", "admin_token = \"${env}\"\n", "\x00"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		path := filepath.Join(dir, "c.hcl")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := defaultServerConfig("h")
		_ = applyConfigFile(&cfg, serverSettings(), path)
	})
}
