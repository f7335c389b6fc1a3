package main

import (
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// hostInfo is what the agent reports about its machine without being asked
// (docs/api.md "Machines", agent.info): os, arch, kernel, boot_time and the
// primary IP. Everything in it must stay the same from beat to beat — the
// cluster stores facts only when they change — so uptime is reported as the
// boot time (uptime = now − boot_time), never as a counter.
func hostInfo(firstServer string) map[string]string {
	info := map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}
	if k := kernelRelease(); k != "" {
		info["kernel"] = k
	}
	if bt, ok := bootTime(); ok {
		info["boot_time"] = bt.UTC().Format(time.RFC3339)
	}
	if ip := primaryIP(firstServer); ip != "" {
		info["ip"] = ip
	}
	return info
}

// kernelRelease is `uname -r` on Linux; "" elsewhere.
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// bootTime reads btime from /proc/stat (whole seconds, stable across reads,
// unlike now − /proc/uptime which would jitter by a second).
func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(secs, 0), true
		}
	}
	return time.Time{}, false
}

// primaryIP is the local address this machine uses to reach the server: the
// kernel picks the route for a UDP "connection", which sends no packet.
func primaryIP(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}
