//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"time"
)

// profileOptions are the -cpuprofile flags of the modes that profile
// gateway 0 over a window of -profile-seconds (echo, connect).
type profileOptions struct {
	cpuprofile     string
	profileSeconds int

	mgmtToken string // the management API's bearer token, once enabled
}

// registerProfile adds the flags; from says where the window starts.
func (p *profileOptions) registerProfile(fs *flag.FlagSet, from string) {
	fs.StringVar(&p.cpuprofile, "cpuprofile", "", "write a CPU profile of gateway 0 to `file`, taken over -profile-seconds from "+from+" (management.pprof is turned on)")
	fs.IntVar(&p.profileSeconds, "profile-seconds", 10, "length of the -cpuprofile profile, 1 to 300")
}

func (p *profileOptions) validateProfile() error {
	if p.profileSeconds < 1 || p.profileSeconds > 300 {
		return fmt.Errorf("-profile-seconds %d: must be 1 to 300", p.profileSeconds)
	}
	return nil
}

// enableProfile, with -cpuprofile, turns management.pprof on in the configs
// o writes, behind a random bearer token the gateways get in their
// environment (a gateway running local functions requires authentication
// there).
func (p *profileOptions) enableProfile(o *commonOptions) {
	if p.cpuprofile == "" {
		return
	}
	o.pprof = true
	p.mgmtToken = rand.Text()
	o.env = append(o.env, mgmtTokenEnv+"="+p.mgmtToken)
}

// startProfile, with -cpuprofile, starts fetching gateway 0's profile from
// its management port; the returned function waits for it and says where
// it went. Without -cpuprofile both do nothing.
func (p *profileOptions) startProfile(ctx context.Context, mgmtPort int, printf func(string, ...any), from string) (wait func()) {
	if p.cpuprofile == "" {
		return func() {}
	}
	done := make(chan error, 1)
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", mgmtPort, p.profileSeconds)
	go func() { done <- fetchProfile(ctx, url, p.mgmtToken, p.cpuprofile) }()
	return func() {
		if err := <-done; err != nil {
			printf("CPU profile: %v\n", err)
		} else {
			printf("CPU profile of gateway 0 over %ds from %s: %s (go tool pprof %s)\n", p.profileSeconds, from, p.cpuprofile, p.cpuprofile)
		}
	}
}

// startReported starts o's gateways (startGateways), prints a line for
// each, and returns them, their pids, and a function that stops them and
// prints how each exited and the warnings in its log.
func startReported(ctx context.Context, o *commonOptions, workdir string, printf func(string, ...any)) ([]*gatewayProc, []int, func(), error) {
	gws, err := startGateways(ctx, o, workdir)
	if err != nil {
		return nil, nil, nil, err
	}
	var pids []int
	for _, g := range gws {
		pids = append(pids, g.pid())
		printf("gateway %d: pid %d, ws://%s/, config %s, log %s\n", g.index, g.pid(), g.addr, g.config, g.log)
	}
	stop := func() {
		res := stopGateways(gws, 30*time.Second)
		for i, g := range gws {
			n, lines, _ := g.logProblems(5)
			printf("gateway %d: %s after SIGTERM (%s); %d warning/error log lines %q\n",
				g.index, exitText(res[i].Err), fmtDur(res[i].Took), n, lines)
		}
	}
	return gws, pids, stop, nil
}
