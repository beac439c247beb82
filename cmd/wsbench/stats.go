//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample that at least p percent of the
// samples are less than or equal to. p <= 0 gives the minimum. It returns 0
// for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// latencySummary is the distribution of a set of latency samples.
type latencySummary struct {
	N                        int
	Min, P50, P90, P99, P999 time.Duration
	Max, Mean                time.Duration
}

// summarize sorts samples in place and returns their distribution.
func summarize(samples []time.Duration) latencySummary {
	slices.Sort(samples)
	s := latencySummary{N: len(samples)}
	if s.N == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	s.Min = samples[0]
	s.P50 = percentile(samples, 50)
	s.P90 = percentile(samples, 90)
	s.P99 = percentile(samples, 99)
	s.P999 = percentile(samples, 99.9)
	s.Max = samples[s.N-1]
	s.Mean = sum / time.Duration(s.N)
	return s
}

func (s latencySummary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s, %d samples)",
		fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), fmtDur(s.P999), fmtDur(s.Max), fmtDur(s.Min), fmtDur(s.Mean), s.N)
}

// fmtDur prints d with three significant digits in a unit that suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

// statusError is a handshake answered with a status other than 101.
type statusError struct{ code int }

func (e *statusError) Error() string {
	return fmt.Sprintf("handshake answered with status %d, want 101", e.code)
}

// errBadHandshake is a 101 answer that is not a valid WebSocket handshake.
var errBadHandshake = errors.New("invalid handshake response")

// Failure causes reported by classify, besides "status NNN".
const (
	causeAddrNotAvail = "EADDRNOTAVAIL"
	causeMFile        = "EMFILE"
	causeNFile        = "ENFILE"
	causeRefused      = "ECONNREFUSED"
	causeReset        = "ECONNRESET"
	causePipe         = "EPIPE"
	causeTimeout      = "timeout"
	causeEOF          = "EOF before 101"
	causeBadHandshake = "bad handshake"
	causeCanceled     = "canceled"
	causeOther        = "other"
)

// classify names the cause of a failed connection attempt: an errno, a
// timeout, a non-101 status ("status 503") or a malformed handshake.
func classify(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.code)
	case errors.Is(err, errBadHandshake):
		return causeBadHandshake
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return causeAddrNotAvail
	case errors.Is(err, syscall.EMFILE):
		return causeMFile
	case errors.Is(err, syscall.ENFILE):
		return causeNFile
	case errors.Is(err, syscall.ECONNREFUSED):
		return causeRefused
	case errors.Is(err, syscall.ECONNRESET):
		return causeReset
	case errors.Is(err, syscall.EPIPE):
		return causePipe
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return causeTimeout
	case errors.Is(err, context.Canceled):
		return causeCanceled
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return causeEOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return causeTimeout
	}
	return causeOther
}

// failures counts failed attempts by cause and keeps the first error
// message of each cause as an example.
type failures struct {
	Count   map[string]int    `json:"count,omitempty"`
	Example map[string]string `json:"example,omitempty"`
}

func (f *failures) add(err error) {
	f.addCause(classify(err), err.Error(), 1)
}

func (f *failures) addCause(cause, example string, n int) {
	if f.Count == nil {
		f.Count = make(map[string]int)
		f.Example = make(map[string]string)
	}
	f.Count[cause] += n
	if _, ok := f.Example[cause]; !ok && example != "" {
		f.Example[cause] = example
	}
}

func (f *failures) merge(g failures) {
	for cause, n := range g.Count {
		f.addCause(cause, g.Example[cause], n)
	}
}

func (f *failures) total() int {
	n := 0
	for _, c := range f.Count {
		n += c
	}
	return n
}

// String lists the causes, most frequent first, each with its example.
func (f *failures) String() string {
	if f.total() == 0 {
		return "none"
	}
	causes := make([]string, 0, len(f.Count))
	for c := range f.Count {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		if f.Count[causes[i]] != f.Count[causes[j]] {
			return f.Count[causes[i]] > f.Count[causes[j]]
		}
		return causes[i] < causes[j]
	})
	var b strings.Builder
	for i, c := range causes {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %d", c, f.Count[c])
		if ex := f.Example[c]; ex != "" {
			fmt.Fprintf(&b, " (e.g. %q)", ex)
		}
	}
	return b.String()
}

// fmtBytes prints n bytes in MiB with one decimal, or KiB below 1 MiB.
func fmtBytes(n int64) string {
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	if n < 1<<20 {
		return fmt.Sprintf("%s%.1f KiB", neg, float64(n)/1024)
	}
	return fmt.Sprintf("%s%.1f MiB", neg, float64(n)/(1<<20))
}
