package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// loadTest runs the server flag parsing and config merging on args, with
// env as the environment and file (if not empty) written to a config file
// passed with -config.
func loadTest(t *testing.T, args []string, env map[string]string, file string) (serverConfig, error) {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "server.hcl")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"-config", path}, args...)
	}
	c := testCLI(env)
	fs := newFlagSet("server", "", "")
	sf := registerServerFlags(fs)
	if _, err := c.parse(fs, args); err != nil {
		return serverConfig{}, err
	}
	return loadServerConfig(fs, sf, c.env, "myhost")
}

// testCLI is a cli with a fake environment and throwaway output.
func testCLI(env map[string]string) *cli {
	c := newCLI(func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
	c.hostname = func() (string, error) { return "myhost", nil }
	c.runServer = func(context.Context, server.Options) error { return errors.New("runServer not stubbed") }
	return c
}

// required are the settings every test needs to get past validation.
func requiredArgs() []string { return []string{"-data-dir", "/d", "-admin-token", "tok"} }

func TestLoadServerConfig_Defaults(t *testing.T) {
	got, err := loadTest(t, requiredArgs(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := defaultServerConfig("myhost")
	want.DataDir, want.AdminToken = "/d", "tok"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if want.NodeID != "myhost" || want.HTTPAddr != ":8080" || want.RaftAddr != ":8300" || want.GossipAddr != ":8301" ||
		want.OfflineThreshold != 2*time.Minute || want.CheckInterval != time.Second ||
		want.HeartbeatFlushInterval != 250*time.Millisecond || want.FailoverGrace != 0 ||
		want.MaxEvents != 10000 || want.LogLevel != "info" ||
		want.ServerStabilization != 10*time.Second || want.DeadServerCleanup != 30*time.Second {
		t.Errorf("defaults drifted from DESIGN.md: %+v", want)
	}
}

func TestLoadServerConfig_Precedence(t *testing.T) {
	// Each setting is given in up to three places; the highest wins.
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		args  []string
		check func(serverConfig) any
		want  any
	}{
		{"threshold default", "", nil, nil, func(c serverConfig) any { return c.OfflineThreshold }, 2 * time.Minute},
		{"threshold file", `offline_threshold = "3m"`, nil, nil, func(c serverConfig) any { return c.OfflineThreshold }, 3 * time.Minute},
		{"threshold env over file", `offline_threshold = "3m"`, map[string]string{"MACHINE_OFFLINE_THRESHOLD": "4m"}, nil, func(c serverConfig) any { return c.OfflineThreshold }, 4 * time.Minute},
		{"threshold flag over env", `offline_threshold = "3m"`, map[string]string{"MACHINE_OFFLINE_THRESHOLD": "4m"}, []string{"-offline-threshold", "5m"}, func(c serverConfig) any { return c.OfflineThreshold }, 5 * time.Minute},
		{"check interval env", "", map[string]string{"MACHINE_HEARTBEAT_CHECK_INTERVAL": "500ms"}, nil, func(c serverConfig) any { return c.CheckInterval }, 500 * time.Millisecond},
		{"check interval flag over env", "check_interval = \"2s\"", map[string]string{"MACHINE_HEARTBEAT_CHECK_INTERVAL": "500ms"}, []string{"-check-interval=3s"}, func(c serverConfig) any { return c.CheckInterval }, 3 * time.Second},
		{"admin token env over file", `admin_token = "file"`, map[string]string{"LUNASENTRI_ADMIN_TOKEN": "env"}, nil, func(c serverConfig) any { return c.AdminToken }, "env"},
		{"admin token flag over env", `admin_token = "file"`, map[string]string{"LUNASENTRI_ADMIN_TOKEN": "env"}, []string{"-admin-token", "flag"}, func(c serverConfig) any { return c.AdminToken }, "flag"},
		{"cluster secret env", `cluster_secret = "file"`, map[string]string{"LUNASENTRI_CLUSTER_SECRET": "env"}, nil, func(c serverConfig) any { return c.ClusterSecret }, "env"},
		{"telegram token file", `telegram_bot_token = "123:abc"`, nil, nil, func(c serverConfig) any { return c.TelegramBotToken }, "123:abc"},
		{"telegram token env over file", `telegram_bot_token = "123:abc"`, map[string]string{"TELEGRAM_BOT_TOKEN": "456:def"}, nil, func(c serverConfig) any { return c.TelegramBotToken }, "456:def"},
		{"telegram url env", "", map[string]string{"TELEGRAM_API_URL": "http://127.0.0.1:9/"}, nil, func(c serverConfig) any { return c.TelegramAPIURL }, "http://127.0.0.1:9"},
		{"node id flag over file", `node_id = "a"`, nil, []string{"-node-id", "b"}, func(c serverConfig) any { return c.NodeID }, "b"},
		{"node id file over hostname", `node_id = "a"`, nil, nil, func(c serverConfig) any { return c.NodeID }, "a"},
		{"join file list", `join = ["10.0.0.1:8301", "10.0.0.2:8301"]`, nil, nil, func(c serverConfig) any { return c.Join }, []string{"10.0.0.1:8301", "10.0.0.2:8301"}},
		{"join flag over file", `join = ["10.0.0.1:8301"]`, nil, []string{"-join", "a:1, b:2"}, func(c serverConfig) any { return c.Join }, []string{"a:1", "b:2"}},
		{"bootstrap expect file", `bootstrap_expect = 3`, nil, nil, func(c serverConfig) any { return c.BootstrapExpect }, 3},
		{"bootstrap expect flag", `bootstrap_expect = 3`, nil, []string{"-bootstrap-expect", "5"}, func(c serverConfig) any { return c.BootstrapExpect }, 5},
		{"log json file", `log_json = true`, nil, nil, func(c serverConfig) any { return c.LogJSON }, true},
		{"log json flag off", `log_json = true`, nil, []string{"-log-json=false"}, func(c serverConfig) any { return c.LogJSON }, false},
		{"failover grace zero", `failover_grace = "0s"`, nil, nil, func(c serverConfig) any { return c.FailoverGrace }, time.Duration(0)},
		{"failover grace flag", "", nil, []string{"-failover-grace", "7s"}, func(c serverConfig) any { return c.FailoverGrace }, 7 * time.Second},
		{"null in file is unset", `http_addr = null`, nil, nil, func(c serverConfig) any { return c.HTTPAddr }, ":8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadTest(t, append(append([]string{}, requiredArgs()[:2]...), tt.args...), withToken(tt.env), tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if v := tt.check(got); !reflect.DeepEqual(v, tt.want) {
				t.Errorf("got %#v, want %#v", v, tt.want)
			}
		})
	}
}

// withToken adds an admin token to env unless it has one.
func withToken(env map[string]string) map[string]string {
	out := map[string]string{"LUNASENTRI_ADMIN_TOKEN": "tok"}
	for k, v := range env {
		out[k] = v
	}
	return out
}

func TestLoadServerConfig_EveryFileKey(t *testing.T) {
	file := `
node_id                  = "n1"
data_dir                 = "/var/lib/lunasentri"
http_addr                = "0.0.0.0:9080"
raft_addr                = "10.0.0.1:9300"
gossip_addr              = "10.0.0.1:9301"
advertise                = "10.0.0.1"
bootstrap_expect         = 3
join                     = ["10.0.0.2:9301", "10.0.0.3:9301"]
offline_threshold        = "90s"
check_interval           = "2s"
heartbeat_flush_interval = "100ms"
failover_grace           = "20s"
admin_token              = "admin"
cluster_secret           = "cluster"
max_events               = 500
log_level                = "DEBUG"
log_json                 = true
telegram_bot_token       = "123:abc"
telegram_api_url         = "https://tg.example"
gossip_key               = "AAAAAAAAAAAAAAAAAAAAAA=="
leave_on_terminate       = true
server_stabilization     = "3s"
dead_server_cleanup      = "1m"
raft_multiplier          = 3
`
	got, err := loadTest(t, nil, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	want := serverConfig{
		NodeID: "n1", DataDir: "/var/lib/lunasentri", HTTPAddr: "0.0.0.0:9080", RaftAddr: "10.0.0.1:9300",
		GossipAddr: "10.0.0.1:9301", Advertise: "10.0.0.1", BootstrapExpect: 3,
		Join:             []string{"10.0.0.2:9301", "10.0.0.3:9301"},
		OfflineThreshold: 90 * time.Second, CheckInterval: 2 * time.Second,
		HeartbeatFlushInterval: 100 * time.Millisecond, FailoverGrace: 20 * time.Second,
		AdminToken: "admin", ClusterSecret: "cluster", MaxEvents: 500, LogLevel: "debug", LogJSON: true,
		TelegramBotToken: "123:abc", TelegramAPIURL: "https://tg.example",
		GossipKey: "AAAAAAAAAAAAAAAAAAAAAA==", LeaveOnTerminate: true,
		ServerStabilization: 3 * time.Second, DeadServerCleanup: time.Minute, RaftMultiplier: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadServerConfig_JSONFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.json")
	os.WriteFile(path, []byte(`{"data_dir": "/d", "join": ["a:1"], "max_events": 7}`), 0o600)
	got, err := loadTest(t, []string{"-config", path}, withToken(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/d" || !reflect.DeepEqual(got.Join, []string{"a:1"}) || got.MaxEvents != 7 {
		t.Errorf("got %+v", got)
	}
}

func TestLoadServerConfig_Errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // the whole message; "config F:" stands for the file prefix
	}{
		{"missing data dir", []string{"-admin-token", "t"}, nil, "", "-data-dir is required"},
		{"missing admin token", []string{"-data-dir", "/d"}, nil, "", "-admin-token (or LUNASENTRI_ADMIN_TOKEN) is required"},
		{"empty admin token flag beats env", []string{"-data-dir", "/d", "-admin-token", ""}, map[string]string{"LUNASENTRI_ADMIN_TOKEN": "x"}, "", "-admin-token (or LUNASENTRI_ADMIN_TOKEN) is required"},
		{"bad duration flag", append([]string{"-offline-threshold", "abc"}, requiredArgs()...), nil, "", `invalid duration "abc" for -offline-threshold`},
		{"zero duration flag", append([]string{"-check-interval", "0s"}, requiredArgs()...), nil, "", `invalid duration "0s" for -check-interval: must be positive`},
		{"negative grace", append([]string{"-failover-grace", "-1s"}, requiredArgs()...), nil, "", `invalid duration "-1s" for -failover-grace: must not be negative`},
		{"bad duration env", requiredArgs(), map[string]string{"MACHINE_OFFLINE_THRESHOLD": "2 minutes"}, "", `invalid duration "2 minutes" for MACHINE_OFFLINE_THRESHOLD`},
		{"bad duration env even if flag wins", append([]string{"-check-interval", "1s"}, requiredArgs()...), map[string]string{"MACHINE_HEARTBEAT_CHECK_INTERVAL": "x"}, "", `invalid duration "x" for MACHINE_HEARTBEAT_CHECK_INTERVAL`},
		{"bad duration file", requiredArgs(), nil, `offline_threshold = "abc"`, `config F: invalid duration "abc" for offline_threshold`},
		{"number as duration in file", requiredArgs(), nil, `check_interval = 5`, `config F: invalid duration "5" for check_interval`},
		{"unknown key", requiredArgs(), nil, "data_dir = \"/d\"\nfoo = 1\n", `config F: unknown key "foo"`},
		{"block", requiredArgs(), nil, "server {\n}\n", `config F: unexpected block "server" (only key = value settings are allowed)`},
		{"wrong type", requiredArgs(), nil, `max_events = "many"`, `config F: max_events: must be a number`},
		{"fraction", requiredArgs(), nil, `bootstrap_expect = 2.5`, `config F: bootstrap_expect: must be a whole number, not 2.5`},
		{"zero max events", append([]string{"-max-events", "0"}, requiredArgs()...), nil, "", `invalid number "0" for -max-events: must be positive`},
		{"raft multiplier too large", append([]string{"-raft-multiplier", "11"}, requiredArgs()...), nil, "", `-raft-multiplier: raft multiplier 11: must be between 1 and 10`},
		{"zero raft multiplier", append([]string{"-raft-multiplier", "0"}, requiredArgs()...), nil, "", `invalid number "0" for -raft-multiplier: must be positive`},
		{"bad number", append([]string{"-bootstrap-expect", "three"}, requiredArgs()...), nil, "", `invalid number "three" for -bootstrap-expect`},
		{"bad address", append([]string{"-http-addr", "8080"}, requiredArgs()...), nil, "", `invalid address "8080" for -http-addr: want HOST:PORT`},
		{"bad join entry", append([]string{"-join", "a:1,b"}, requiredArgs()...), nil, "", `invalid address "b" for -join: want HOST:PORT`},
		{"bad log level", append([]string{"-log-level", "loud"}, requiredArgs()...), nil, "", `invalid log level "loud" for -log-level: want trace, debug, info, warn or error`},
		{"bad telegram url", requiredArgs(), map[string]string{"TELEGRAM_API_URL": "api.telegram.org"}, "", `invalid URL "api.telegram.org" for TELEGRAM_API_URL: want http:// or https://`},
		{"bad bool", append([]string{"-log-json=maybe"}, requiredArgs()...), nil, "", `invalid boolean "maybe" for -log-json`},
		{"unknown flag", []string{"-foo"}, nil, "", "server: flag provided but not defined: -foo"},
		{"gossip key not base64", requiredArgs(), map[string]string{"LUNASENTRI_GOSSIP_KEY": "not base64!"}, "", "invalid gossip key for LUNASENTRI_GOSSIP_KEY: not base64"},
		{"gossip key too short", append([]string{"-gossip-key", "AAAA"}, requiredArgs()...), nil, "", "invalid gossip key for -gossip-key: decodes to 3 bytes, want 16, 24 or 32 (lunasentri keygen makes one)"},
		{"variables in file", requiredArgs(), nil, `node_id = var.x`, ""},
		{"syntax error", requiredArgs(), nil, `node_id = `, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadTest(t, tt.args, tt.env, tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if tt.file != "" {
				if !strings.HasPrefix(msg, "config ") || !strings.Contains(msg, "server.hcl: ") {
					t.Errorf("error %q does not name the config file", msg)
				}
				_, rest, _ := strings.Cut(msg, "server.hcl: ")
				msg = "config F: " + rest
			}
			if tt.want != "" && msg != tt.want {
				t.Errorf("got  %q\nwant %q", msg, tt.want)
			}
		})
	}
}

func TestLoadServerConfig_MissingFile(t *testing.T) {
	_, err := loadTest(t, []string{"-config", "/nonexistent/server.hcl"}, nil, "")
	if err == nil || err.Error() != "config /nonexistent/server.hcl: no such file or directory" {
		t.Errorf("got %v", err)
	}
}

func TestLoadServerConfig_NoHostname(t *testing.T) {
	c := testCLI(withToken(nil))
	fs := newFlagSet("server", "", "")
	sf := registerServerFlags(fs)
	c.parse(fs, []string{"-data-dir", "/d"})
	_, err := loadServerConfig(fs, sf, c.env, "")
	if err == nil || !strings.Contains(err.Error(), "-node-id is required") {
		t.Errorf("got %v", err)
	}
}

func TestBuildServerOptions_CopiesEverything(t *testing.T) {
	cfg := serverConfig{
		NodeID: "n", DataDir: "/d", HTTPAddr: "h:1", RaftAddr: "r:2", GossipAddr: "g:3", Advertise: "a",
		BootstrapExpect: 3, Join: []string{"x:1"}, OfflineThreshold: time.Minute, CheckInterval: 2 * time.Second,
		HeartbeatFlushInterval: time.Millisecond, FailoverGrace: 9 * time.Second, AdminToken: "t",
		ClusterSecret: "s", TelegramBotToken: "tg", TelegramAPIURL: "http://tg", MaxEvents: 4,
		GossipKey: "k", LeaveOnTerminate: true, ServerStabilization: 5 * time.Second, DeadServerCleanup: 6 * time.Second,
		PerMachineMetrics: true, StatusPageMatch: "public=yes", FlapThreshold: 7, FlapWindow: 3 * time.Minute,
		SMTPAddr: "smtp:587", SMTPUsername: "u", SMTPPassword: "p", SMTPTLS: "starttls", SMTPFrom: "a@b.c",
		TLSCert: "c.pem", TLSKey: "k.pem", TLSCA: "ca.pem", TLSVerifyIncoming: true,
		WebhookDenyPrivate: true, RaftMultiplier: 2,
	}
	logger := hclog.NewNullLogger()
	got := buildServerOptions(cfg, logger)
	want := server.Options{
		NodeID: "n", DataDir: "/d", HTTPAddr: "h:1", RaftAddr: "r:2", GossipAddr: "g:3", Advertise: "a",
		BootstrapExpect: 3, Join: []string{"x:1"}, OfflineThreshold: time.Minute, CheckInterval: 2 * time.Second,
		HeartbeatFlushInterval: time.Millisecond, FailoverGrace: 9 * time.Second, AdminToken: "t",
		ClusterSecret: "s", TelegramBotToken: "tg", TelegramAPIURL: "http://tg", MaxEvents: 4,
		GossipKey: "k", LeaveOnTerminate: true, ServerStabilization: 5 * time.Second, DeadServerCleanup: 6 * time.Second,
		PerMachineMetrics: true, StatusPageMatch: "public=yes", FlapThreshold: 7, FlapWindow: 3 * time.Minute,
		SMTPAddr: "smtp:587", SMTPUsername: "u", SMTPPassword: "p", SMTPTLS: "starttls", SMTPFrom: "a@b.c",
		TLSCert: "c.pem", TLSKey: "k.pem", TLSCA: "ca.pem", TLSVerifyIncoming: true,
		WebhookDenyPrivate: true, RaftMultiplier: 2,
		Version: version, Revision: revision, Logger: logger,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Every Options field must be filled by the builder: a new field left
	// out would otherwise silently take its zero value. Test-only knobs are
	// the exception.
	testOnly := map[string]bool{"RaftConfig": true, "GossipProbeInterval": true}
	v := reflect.ValueOf(got)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() && !testOnly[v.Type().Field(i).Name] {
			t.Errorf("buildServerOptions leaves Options.%s zero", v.Type().Field(i).Name)
		}
	}
}
