//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStatus holds the memory fields of /proc/PID/status, in bytes.
type procStatus struct {
	VmRSS, VmHWM, RssAnon, RssFile int64
	Threads                        int64
}

func readStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	return parseStatus(b)
}

// parseStatus parses the text of /proc/PID/status.
func parseStatus(b []byte) (procStatus, error) {
	var s procStatus
	fields := map[string]*int64{
		"VmRSS": &s.VmRSS, "VmHWM": &s.VmHWM, "RssAnon": &s.RssAnon, "RssFile": &s.RssFile, "Threads": &s.Threads,
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		p := fields[name]
		if !ok || p == nil {
			continue
		}
		f := strings.Fields(value)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("status field %s: %w", name, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		*p = v
		found++
	}
	if s.VmRSS == 0 {
		return s, fmt.Errorf("no VmRSS in status (%d fields found)", found)
	}
	return s, nil
}

// sumStatus reads and adds up the status of every pid.
func sumStatus(pids []int) (procStatus, error) {
	var sum procStatus
	for _, pid := range pids {
		s, err := readStatus(pid)
		if err != nil {
			return sum, err
		}
		sum.VmRSS += s.VmRSS
		sum.VmHWM += s.VmHWM
		sum.RssAnon += s.RssAnon
		sum.RssFile += s.RssFile
		sum.Threads += s.Threads
	}
	return sum, nil
}

// countFDs returns the number of open descriptors of every pid together.
func countFDs(pids []int) (int, error) {
	n := 0
	for _, pid := range pids {
		d, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return 0, err
		}
		n += len(d)
	}
	return n, nil
}

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// cpuTime returns the user+system CPU time of every pid together.
func cpuTime(pids []int) (time.Duration, error) {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		t, err := parseStatCPU(b)
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatCPU returns utime+stime, in ticks, from /proc/PID/stat. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat: %d fields", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat times %q %q", f[11], f[12])
	}
	return u + s, nil
}

// sockstat is the TCP line of /proc/net/sockstat. Mem is in pages; it is
// the kernel's socket buffer memory, which no process RSS includes.
type sockstat struct {
	InUse, TimeWait, Alloc, MemPages int64
}

func readSockstat() (sockstat, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return sockstat{}, err
	}
	var s sockstat
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "inuse":
				s.InUse = v
			case "tw":
				s.TimeWait = v
			case "alloc":
				s.Alloc = v
			case "mem":
				s.MemPages = v
			}
		}
	}
	return s, nil
}

func (s sockstat) String() string {
	return fmt.Sprintf("inuse %d, alloc %d, tw %d, mem %d pages (%s)", s.InUse, s.Alloc, s.TimeWait, s.MemPages, fmtBytes(s.MemPages*int64(os.Getpagesize())))
}

// rssReading is the result of sampling RSS until it is stable.
type rssReading struct {
	Samples  []int64 // VmRSS sums, in order
	Interval time.Duration
	Stable   bool // the last stableCount samples are within the tolerance
	Status   procStatus
}

// Value is the reading used for figures: the last sample.
func (r rssReading) Value() int64 { return r.Samples[len(r.Samples)-1] }

// Min is the smallest sample.
func (r rssReading) Min() int64 {
	m := r.Samples[0]
	for _, s := range r.Samples {
		m = min(m, s)
	}
	return m
}

func (r rssReading) Describe() string {
	how := "stable: the last 3 within 1%"
	if !r.Stable {
		how = "NOT stable within the settle time"
	}
	return fmt.Sprintf("last of %d samples %s apart, %s; min %s", len(r.Samples), r.Interval, how, fmtBytes(r.Min()))
}

const (
	stableCount = 3
	stableTol   = 0.01
)

// isStable reports whether the last stableCount samples lie within
// stableTol of their largest.
func isStable(samples []int64) bool {
	if len(samples) < stableCount {
		return false
	}
	last := samples[len(samples)-stableCount:]
	lo, hi := last[0], last[0]
	for _, s := range last {
		lo, hi = min(lo, s), max(hi, s)
	}
	return float64(hi-lo) <= stableTol*float64(hi)
}

// settleRSS samples the summed VmRSS of pids every interval until the
// last three samples agree within 1% or settle has passed (at least three
// samples are taken either way). The figure to use is the last sample.
func settleRSS(ctx context.Context, pids []int, interval, settle time.Duration) (rssReading, error) {
	r := rssReading{Interval: interval}
	deadline := time.Now().Add(settle)
	for {
		s, err := sumStatus(pids)
		if err != nil {
			return r, err
		}
		r.Samples = append(r.Samples, s.VmRSS)
		r.Status = s
		r.Stable = isStable(r.Samples)
		if r.Stable || (len(r.Samples) >= stableCount && !time.Now().Before(deadline)) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// systemCPU returns the busy and total CPU time of the whole machine from
// the first line of /proc/stat (busy excludes idle and iowait).
func systemCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("malformed /proc/stat")
	}
	var sum, idle int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed /proc/stat: %w", err)
		}
		if i == 8 || i == 9 {
			continue // guest and guest_nice are already in user and nice
		}
		sum += v
		if i == 3 || i == 4 || i == 7 {
			idle += v // idle, iowait and steal: not available to processes here
		}
	}
	tick := time.Second / userHZ
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// netCounters reads the TCP counters of /proc/net/snmp and
// /proc/net/netstat, keyed "Tcp.RetransSegs", "TcpExt.ListenOverflows".
func netCounters() map[string]int64 {
	m := make(map[string]int64)
	for _, path := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) != len(values) || len(names) == 0 || names[0] != values[0] {
				continue
			}
			prefix := strings.TrimSuffix(names[0], ":")
			for j := 1; j < len(names); j++ {
				v, err := strconv.ParseInt(values[j], 10, 64)
				if err == nil {
					m[prefix+"."+names[j]] = v
				}
			}
		}
	}
	return m
}

// counterDeltas lists the named counters that changed between a and b.
func counterDeltas(a, b map[string]int64, names ...string) string {
	var parts []string
	for _, n := range names {
		if d := b[n] - a[n]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s +%d", n, d))
		}
	}
	if len(parts) == 0 {
		return "no change in " + strings.Join(names, ", ")
	}
	return strings.Join(parts, ", ")
}
