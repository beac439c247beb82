// Package suggest finds the known name nearest to a mistyped one, for the
// "did you mean" of configuration and format errors.
package suggest

// maxLen bounds the work on input from outside: names longer than this are
// never close to anything.
const maxLen = 64

// Distance returns the Levenshtein distance between a and b; when either is
// longer than 64 bytes it returns the longer length.
func Distance(a, b string) int {
	if len(a) > maxLen || len(b) > maxLen {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Nearest returns the first of names whose distance to name is the
// smallest and below limit, or "" when none is.
func Nearest(name string, names []string, limit int) string {
	best, dist := "", limit
	for _, n := range names {
		if d := Distance(name, n); d < dist {
			best, dist = n, d
		}
	}
	return best
}
